"""Generated client of the kubelet pod-resources API v1 (see api.proto's header and scripts/gen-podresources)."""
