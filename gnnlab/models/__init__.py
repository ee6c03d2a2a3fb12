"""Whole models for graph-, node- and link-level tasks (see also :mod:`gnnlab.models.link`)."""
from gnnlab.models.dagnn import DAGNN
from gnnlab.models.fingerprint import MolecularFingerprint
from gnnlab.models.gmn import GMN, build_gmn
from gnnlab.models.gnn import GNN, ConvStack, LayerSumReadout, MLPHead, MLPReadout, build_gnn
from gnnlab.models.gsmpp import GSMPlusPlus, build_gsmpp

__all__ = [
    "DAGNN",
    "GMN",
    "GNN",
    "GSMPlusPlus",
    "ConvStack",
    "LayerSumReadout",
    "MLPHead",
    "MLPReadout",
    "MolecularFingerprint",
    "build_gmn",
    "build_gnn",
    "build_gsmpp",
]
