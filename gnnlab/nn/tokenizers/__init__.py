"""Graph → token-sequence tokenizers: each node gets a sequence of tokens for a sequence model to read.

A tokenizer returns plain index tensors (which nodes and edges make up each token, and where each
node's sequence starts in the packed layout ``cu_seqlens``); the encoding of a token into a vector is
left to the model (e.g. :class:`gnnlab.nn.layers.GMNLayer`).
"""
from gnnlab.nn.tokenizers.random_walk import (
    NeighborhoodTokens,
    NodeTokens,
    RandomWalkTokenizer,
    hashed_uniform,
    neighborhood_tokens,
    node_tokens,
    random_walks,
)

__all__ = [
    "NeighborhoodTokens",
    "NodeTokens",
    "RandomWalkTokenizer",
    "hashed_uniform",
    "neighborhood_tokens",
    "node_tokens",
    "random_walks",
]
