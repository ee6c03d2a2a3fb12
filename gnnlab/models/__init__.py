"""Whole models for graph-, node- and link-level tasks (see also :mod:`gnnlab.models.link`)."""
from gnnlab.models.gmn import GMN, build_gmn
from gnnlab.models.gnn import GNN, ConvStack, LayerSumReadout, MLPHead, MLPReadout, build_gnn

__all__ = ["GMN", "GNN", "ConvStack", "LayerSumReadout", "MLPHead", "MLPReadout", "build_gmn", "build_gnn"]
