"""Whole models for graph-, node- and link-level tasks (see also :mod:`gnnlab.models.link`)."""
from gnnlab.models.dagnn import DAGNN
from gnnlab.models.dgcnn import DGCNN, sort_pool
from gnnlab.models.fingerprint import MolecularFingerprint
from gnnlab.models.gmn import GMN, build_gmn
from gnnlab.models.gnn import GNN, ConcatReadout, ConvStack, LayerSumReadout, MLPHead, MLPReadout, build_gnn
from gnnlab.models.gsmpp import GSMPlusPlus, build_gsmpp

__all__ = [
    "DAGNN",
    "DGCNN",
    "GMN",
    "GNN",
    "GSMPlusPlus",
    "ConcatReadout",
    "ConvStack",
    "LayerSumReadout",
    "MLPHead",
    "MLPReadout",
    "MolecularFingerprint",
    "build_gmn",
    "build_gnn",
    "build_gsmpp",
    "sort_pool",
]
