"""Developer tooling: the local control plane, the demo, simulators and fake servers, docs generators.

Not part of the wheel or the image; it needs a source checkout.
"""
