"""Composition blocks: a conv wrapped with norm/activation/residual, the Graph Transformer layer,
the GPS layer (local conv + global mixer + FFN, both passed in as modules) and the GMN layer
(subgraph tokens, a bidirectional Mamba over each node's tokens, an optional MPNN branch)."""
from gnnlab.nn.layers.conv_layer import ConvLayer
from gnnlab.nn.layers.gmn_layer import GMNLayer, TokenEncoder, gmn_layer
from gnnlab.nn.layers.gps import GPSLayer, gps_layer
from gnnlab.nn.layers.gsmpp import GSMPlusPlusLayer, HybridSequenceEncoder, gsmpp_layer
from gnnlab.nn.layers.gt_layer import GraphTransformerLayer

__all__ = [
    "ConvLayer",
    "GMNLayer",
    "GPSLayer",
    "GSMPlusPlusLayer",
    "GraphTransformerLayer",
    "HybridSequenceEncoder",
    "TokenEncoder",
    "gmn_layer",
    "gps_layer",
    "gsmpp_layer",
]
