"""Message-passing convolutions, all following one layer contract (:mod:`gnnlab.nn.conv.base`).

Every convolution is built as ``Conv(in_channels, out_channels, **options)`` and called as
``x_out, edge_out = conv(x, graph, edge_attr=None)`` with ``graph`` the batch's
:class:`gnnlab.ops.Graph`, messages flowing from ``graph.edge_index[0]`` (source) to
``graph.edge_index[1]`` (target). ``supports_edge_attr`` tells whether a convolution reads edge
features; :class:`GatedGCNConv` and :class:`GraphTransformerAttention` also update them.
"""
from gnnlab.nn.conv.dagnn import DAGNNConv
from gnnlab.nn.conv.dgcnn import DGCNNConv
from gnnlab.nn.conv.ecc import ECConv
from gnnlab.nn.conv.gat import GATConv
from gnnlab.nn.conv.gated_gcn import GatedGCNConv
from gnnlab.nn.conv.gcn import GCNConv
from gnnlab.nn.conv.gin import GINConv
from gnnlab.nn.conv.gine import GINEConv
from gnnlab.nn.conv.graph_transformer import GraphTransformerAttention
from gnnlab.nn.conv.pna import PNAConv
from gnnlab.nn.conv.sage import SAGEConv

__all__ = [
    "DAGNNConv", "DGCNNConv", "ECConv", "GATConv", "GCNConv", "GINConv", "GINEConv", "GatedGCNConv", "GraphTransformerAttention", "PNAConv",
    "SAGEConv",
]
