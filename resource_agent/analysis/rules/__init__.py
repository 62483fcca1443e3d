"""Rule families, one module each; every module lists its rules in `RULES` (see `analysis.catalog`)."""
