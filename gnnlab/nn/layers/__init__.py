"""Composition blocks: a conv wrapped with norm/activation/residual, the Graph Transformer layer,
and the GPS layer (local conv + global mixer + FFN, both passed in as modules)."""
from gnnlab.nn.layers.conv_layer import ConvLayer, accepts_argument, accepts_graph
from gnnlab.nn.layers.gps import GPSLayer, gps_layer
from gnnlab.nn.layers.gsmpp import GSMPlusPlusLayer, HybridSequenceEncoder, gsmpp_layer
from gnnlab.nn.layers.gt_layer import GraphTransformerLayer

__all__ = ["ConvLayer", "accepts_argument", "GPSLayer", "GraphTransformerLayer", "accepts_graph", "gps_layer", "GSMPlusPlusLayer",
           "HybridSequenceEncoder", "gsmpp_layer"]
