"""Neural-network building blocks: convolutions (``conv``), composed layers (``layers``), encoders, norms and
MLPs (``mlp``)."""
from gnnlab.nn.mlp import NORMS, FeedForward, feed_forward, norm_layer

__all__ = ["NORMS", "FeedForward", "feed_forward", "norm_layer"]
