"""GPU -> pod -> workload attribution and long-horizon usage per workload.

- `kubelet`: the kubelet pod-resources API client (edge: gRPC on the kubelet's socket).
- `attribution`: which pod and container hold each GPU of a sample (pure).
- `owners`: a pod's owning workload through owner references, with a bounded cache (pure).
- `histogram`: VPA-style exponentially decaying histograms with bounded buckets (pure).
- `usage`: per-workload usage over the horizon, checkpoints, and right-sizing findings (pure).

Keep this file free of imports: the pure modules are imported by the window and the operator.
"""
