"""Whole models for graph-, node- and link-level tasks (see also :mod:`gnnlab.models.link`)."""
from gnnlab.models.conv_stack import ConvStack
from gnnlab.models.dagnn import DAGNN
from gnnlab.models.dgcnn import DGCNN, sort_pool
from gnnlab.models.diffpool import DenseSAGEStack, DiffPool
from gnnlab.models.ecc import ECC
from gnnlab.models.fingerprint import MolecularFingerprint
from gnnlab.models.gmn import GMN, build_gmn
from gnnlab.models.gnn import GNN, build_gnn
from gnnlab.models.gsmpp import GSMPlusPlus, build_gsmpp
from gnnlab.models.outputs import WithAuxLoss
from gnnlab.models.readout import ConcatReadout, LayerSumReadout, MLPHead, MLPReadout

__all__ = [
    "DAGNN",
    "DGCNN",
    "DenseSAGEStack",
    "DiffPool",
    "ECC",
    "GMN",
    "GNN",
    "GSMPlusPlus",
    "ConcatReadout",
    "ConvStack",
    "LayerSumReadout",
    "MLPHead",
    "MLPReadout",
    "MolecularFingerprint",
    "WithAuxLoss",
    "build_gmn",
    "build_gnn",
    "build_gsmpp",
    "sort_pool",
]
