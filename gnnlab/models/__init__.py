"""Whole models for graph-, node- and (later) link-level tasks."""
from gnnlab.models.gnn import GNN, ConvStack, MLPReadout, build_gnn

__all__ = ["GNN", "ConvStack", "MLPReadout", "build_gnn"]
