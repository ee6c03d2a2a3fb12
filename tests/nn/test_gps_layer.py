"""GPS layer: the composition against a plain-torch reference, equivariance, padding, bad input."""
from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close
from torch_geometric.data import Batch, Data

from gnnlab.nn.conv import GatedGCNConv, GCNConv, GINEConv
from gnnlab.nn.layers import GPSLayer, gps_layer
from gnnlab.nn.mixer import MultiheadAttentionMixer, PerformerMixer
from gnnlab.ops import Graph


def random_graph(n: int, p: float, seed: int, dim: int):
    g = torch.Generator().manual_seed(seed)
    upper = torch.triu(torch.rand(n, n, generator=g) < p, diagonal=1)
    src, dst = upper.nonzero().t()
    ei = torch.cat([torch.stack([src, dst]), torch.stack([dst, src])], dim=1)
    return Data(x=torch.randn(n, dim, generator=g), edge_index=ei, edge_attr=torch.randn(ei.size(1), dim, generator=g))


def test_matches_plain_torch_composition():
    torch.manual_seed(0)
    d = 12
    layer = GPSLayer(d, conv=GINEConv(d, d), mixer=MultiheadAttentionMixer(d, 3), norm="layer").eval()
    data = Batch.from_data_list([random_graph(7, 0.4, 1, d), random_graph(5, 0.5, 2, d)])
    graph = Graph.from_data(data)
    assert graph.num_graphs == 2
    out, e = layer(data.x, graph, data.edge_attr)
    x = data.x
    # Reference: each branch as a black box, the composition written out; the mixer sees the graph's batch.
    h_local = layer.norm_local(x + layer.conv(x, graph, data.edge_attr)[0])
    h_attn = layer.norm_mixer(x + layer.mixer(x, data.batch))
    h = h_local + h_attn
    ffn = layer.ffn2(torch.relu(layer.ffn1(h)))
    assert_close(out, layer.norm_out(h + ffn))
    assert e is data.edge_attr  # GINE does not update edges


def test_gated_gcn_updates_edges_and_is_not_added_twice():
    torch.manual_seed(1)
    d = 8
    conv = GatedGCNConv(d, d)
    layer = GPSLayer(d, conv=conv, mixer=None, norm="none", local_residual=False).eval()
    data = random_graph(9, 0.4, 3, d)
    graph = Graph.from_edge_index(data.edge_index, data.num_nodes)
    out, e = layer(data.x, graph, data.edge_attr)
    h_conv, e_conv = conv(data.x, graph, data.edge_attr)
    assert_close(e, e_conv)
    ffn = layer.ffn2(torch.relu(layer.ffn1(h_conv)))
    assert_close(out, h_conv + ffn)


@pytest.mark.parametrize(
    "conv,mixer",
    [("gated_gcn", "attention"), ("gated_gcn", "performer"), ("gated_gcn", None), (None, "attention"), (None, "performer")],
)
def test_node_permutation_equivariance_and_padding(conv, mixer):
    torch.manual_seed(2)
    d = 16
    layer = gps_layer(
        d,
        d,
        conv=(lambda a, b: GatedGCNConv(a, b)) if conv else None,
        mixer={"attention": lambda dim: MultiheadAttentionMixer(dim, 4), "performer": lambda dim: PerformerMixer(dim, 4),
               None: None}[mixer],
        local_residual=False,
    ).eval()
    small, big = random_graph(6, 0.5, 4, d), random_graph(30, 0.2, 5, d)
    alone = layer(small.x, Graph.from_edge_index(small.edge_index, 6), small.edge_attr)[0]  # one graph, batch None
    # Padding: batched next to a much larger graph, the small graph's outputs do not change.
    batch = Batch.from_data_list([small, big])
    graph = Graph.from_edge_index(batch.edge_index, 36, batch=batch.batch)
    together = layer(batch.x, graph, batch.edge_attr)[0]
    assert_close(together[:6], alone, atol=1e-5, rtol=1e-5)
    # Reordering the nodes inside each graph reorders the outputs (a PyG batch keeps graphs contiguous).
    perm = torch.cat([torch.randperm(6), 6 + torch.randperm(30)])
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(perm.numel())
    graph_p = Graph.from_edge_index(inv[batch.edge_index], 36, batch=batch.batch[perm])
    out_p = layer(batch.x[perm], graph_p, batch.edge_attr)[0]
    assert_close(out_p, together[perm], atol=1e-5, rtol=1e-5)


def test_edge_features_are_carried_past_a_conv_without_them():
    """A conv without edge features (GCN rejects them) gets none; the layer hands the given ones on."""
    torch.manual_seed(3)
    d = 8
    layer = GPSLayer(d, conv=GCNConv(d, d), mixer=MultiheadAttentionMixer(d, 2), norm="none").eval()
    data = random_graph(9, 0.4, 6, d)
    graph = Graph.from_edge_index(data.edge_index, 9)
    out, e = layer(data.x, graph, data.edge_attr)
    assert e is data.edge_attr
    assert_close(out, layer(data.x, graph)[0])


def test_bad_input():
    with pytest.raises(ValueError, match="local conv, a global mixer, or both"):
        GPSLayer(8)
    with pytest.raises(ValueError, match="norm must be one of"):
        GPSLayer(8, mixer=MultiheadAttentionMixer(8, 2), norm="group")
    with pytest.raises(ValueError, match="keep their width"):
        gps_layer(8, 16, mixer=lambda d: MultiheadAttentionMixer(d, 2))
    layer = GPSLayer(8, mixer=MultiheadAttentionMixer(8, 2))
    with pytest.raises(ValueError, match=r"expected x of shape \[N, 8\]"):
        layer(torch.randn(4, 6), Graph.from_edge_index(torch.zeros(2, 0, dtype=torch.long), 4))


def test_local_dropout_replaces_the_branch_dropout():
    """local_dropout=0 leaves the local branch undropped in training (GraphGPS's GatedGCN drops inside)."""
    torch.manual_seed(4)
    d = 10
    data = random_graph(12, 0.4, 5, d)
    graph = Graph.from_edge_index(data.edge_index, 12)

    def layer(local_dropout):
        torch.manual_seed(6)
        gps = GPSLayer(d, conv=GINEConv(d, d), mixer=None, dropout=0.5, norm="none", local_dropout=local_dropout)
        torch.nn.init.zeros_(gps.ffn2.weight)  # FFN output = its bias = 0: out is the local branch alone
        torch.nn.init.zeros_(gps.ffn2.bias)
        return gps.train()

    plain = layer(0.0)
    out, _ = plain(data.x, graph, data.edge_attr)
    assert_close(out, data.x + plain.conv(data.x, graph, data.edge_attr)[0])
    dropped = layer(None)  # default: the layer's dropout 0.5 on the branch
    out, _ = dropped(data.x, graph, data.edge_attr)
    reference = data.x + dropped.conv(data.x, graph, data.edge_attr)[0]
    assert not torch.allclose(out, reference)
    with pytest.raises(ValueError, match="local_dropout"):
        GPSLayer(d, conv=GINEConv(d, d), local_dropout=1.0)
