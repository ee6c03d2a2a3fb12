"""State-space sequence blocks (Mamba) and the helpers that read a graph's nodes as a sequence."""
from gnnlab.nn.ssm.mamba import BiMamba, Mamba, positions_in_sequence
from gnnlab.nn.ssm.sequence import node_degree, order_within_graphs, sequence_offsets, unpermute

__all__ = [
    "BiMamba",
    "Mamba",
    "node_degree",
    "order_within_graphs",
    "positions_in_sequence",
    "sequence_offsets",
    "unpermute",
]
