"""Resource Agent: GPU, host and KV-cache resource analysis for LLM-serving Kubernetes clusters."""

__version__ = "0.1.0"
