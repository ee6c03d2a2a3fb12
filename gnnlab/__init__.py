"""gnnlab: a graph neural network research framework.

Layers (``gnnlab.nn``) are built on ops (``gnnlab.ops``), models (``gnnlab.models``) on layers,
the training loop (``gnnlab.train``) on models, and the Hydra entry points (``gnnlab.cli``) on all.
"""
from gnnlab import ops  # noqa: F401  (``gnnlab.ops.backend()`` is the documented probe)

__version__ = "0.1.0"
