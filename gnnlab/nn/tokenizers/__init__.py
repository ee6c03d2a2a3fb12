"""Graph → token-sequence tokenizers: which sequences a sequence model reads off a graph.

- :mod:`~gnnlab.nn.tokenizers.hac`: the hierarchical affinity clustering tree of GSM++ (a node-level
  sequence per graph in depth-first tree order, and one root-to-node sequence of clusters per node);
- :mod:`~gnnlab.nn.tokenizers.hop`: one sequence of k-hop neighbourhood summaries per node.
"""
from gnnlab.nn.tokenizers.hac import HACTokens, hac_tokens, hierarchical_sequences, node_sequence
from gnnlab.nn.tokenizers.hop import hop_sequences

__all__ = ["HACTokens", "hac_tokens", "hierarchical_sequences", "node_sequence", "hop_sequences"]
