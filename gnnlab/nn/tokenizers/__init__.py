"""Graph → token-sequence tokenizers: which sequences a sequence model reads off a graph.

A tokenizer returns plain index tensors (which nodes, edges or clusters make up each token, and where
each sequence starts in the packed layout ``cu_seqlens``); encoding a token into a vector is left to
the model (e.g. :class:`gnnlab.nn.layers.GMNLayer`, :class:`gnnlab.nn.layers.GSMPlusPlusLayer`).

- :mod:`~gnnlab.nn.tokenizers.random_walk`: GMN's random-walk neighbourhood tokens (and degree-ordered
  node tokens);
- :mod:`~gnnlab.nn.tokenizers.hac`: the hierarchical affinity clustering tree of GSM++ (a node-level
  sequence per graph in depth-first tree order, and one root-to-node sequence of clusters per node);
- :mod:`~gnnlab.nn.tokenizers.hop`: one sequence of k-hop neighbourhood summaries per node.
"""
from gnnlab.nn.tokenizers.hac import HACTokens, hac_tokens, hierarchical_sequences, node_sequence
from gnnlab.nn.tokenizers.hop import hop_sequences
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
    "HACTokens",
    "NeighborhoodTokens",
    "NodeTokens",
    "RandomWalkTokenizer",
    "hac_tokens",
    "hashed_uniform",
    "hierarchical_sequences",
    "hop_sequences",
    "neighborhood_tokens",
    "node_sequence",
    "node_tokens",
    "random_walks",
]
