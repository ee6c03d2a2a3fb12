"""Layers composed from convolutions: normalisation, activation, dropout and residual around a conv."""
from gnnlab.nn.layers.conv_layer import ConvLayer

__all__ = ["ConvLayer"]
