"""Layers composed from convolutions: normalisation, activation, dropout and residual around a conv."""
from gnnlab.nn.layers.conv_layer import ConvLayer, accepts_graph

__all__ = ["ConvLayer", "accepts_graph"]
