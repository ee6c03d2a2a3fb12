"""Whole models for graph-, node- and link-level tasks (see also :mod:`gnnlab.models.link`)."""
from gnnlab.models.gnn import GNN, ConvStack, LayerSumReadout, MLPHead, MLPReadout, build_gnn
from gnnlab.models.gsmpp import GSMPlusPlus, build_gsmpp

__all__ = ["GNN", "ConvStack", "LayerSumReadout", "MLPHead", "MLPReadout", "build_gnn", "GSMPlusPlus", "build_gsmpp"]
