"""End-to-end tests and their cluster providers (see conftest.py at the repository root)."""
