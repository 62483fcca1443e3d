"""Rule families, one module each; importing this package registers every rule."""

from resource_agent.analysis.rules import cache, gpu, gpu_health, host

__all__ = ["cache", "gpu", "gpu_health", "host"]
