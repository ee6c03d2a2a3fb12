"""Message-passing convolutions with a uniform interface.

Every layer is built as ``Conv(in_channels, out_channels, **options)`` and called as
``conv(x, edge_index, edge_attr=None)``, with messages flowing from ``edge_index[0]`` (source)
to ``edge_index[1]`` (target). ``supports_edge_attr`` tells whether a layer uses edge features.
:class:`GatedGCNConv` is a complete layer and returns ``(h, e)``; :class:`GraphTransformerAttention`
also returns ``(h_hat, e_hat)`` (its layer is :class:`gnnlab.nn.layers.GraphTransformerLayer`); the
others return node features.
"""
from gnnlab.nn.conv.gat import GATConv
from gnnlab.nn.conv.gated_gcn import GatedGCNConv
from gnnlab.nn.conv.gcn import GCNConv
from gnnlab.nn.conv.gin import GINConv
from gnnlab.nn.conv.gine import GINEConv
from gnnlab.nn.conv.graph_transformer import GraphTransformerAttention
from gnnlab.nn.conv.pna import PNAConv
from gnnlab.nn.conv.sage import SAGEConv

__all__ = ["GATConv", "GCNConv", "GINConv", "GINEConv", "GatedGCNConv", "GraphTransformerAttention", "PNAConv", "SAGEConv"]
