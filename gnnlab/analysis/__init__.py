"""Post-hoc analyses of trained models and of the graphs they are trained on.

This package sits beside the training stack, not on top of it: it may use ``gnnlab.ops`` and
torch/numpy/scipy (and matplotlib for plots), never ``gnnlab.models``, ``gnnlab.train`` or
``gnnlab.cli``, so an analysis can run on scores saved by any model.

- :mod:`gnnlab.analysis.topological_concentration`: Topological Concentration (TC) and its
  random-projection approximation (ATC) from Wang et al. (ICLR 2024).
- :mod:`gnnlab.analysis.per_node`: per-node Hits@K and the performance-vs-TC report.
- :mod:`gnnlab.analysis.curves`: learning curves of training runs (``gnnlab-curves``).
"""
from gnnlab.analysis.curves import plot_learning_curves, read_metrics
from gnnlab.analysis.per_node import TCReport, per_node_hits, tc_report
from gnnlab.analysis.topological_concentration import approximate_topological_concentration, topological_concentration

__all__ = [
    "TCReport",
    "plot_learning_curves",
    "read_metrics",
    "approximate_topological_concentration",
    "per_node_hits",
    "tc_report",
    "topological_concentration",
]
