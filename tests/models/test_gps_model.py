"""GPS / GT models built by build_gnn: PE concatenation, graph-level invariance, node-level equivariance."""
from __future__ import annotations

from functools import partial

import pytest
import torch
from torch.testing import assert_close
from torch_geometric.data import Batch, Data
from torch_geometric.nn import global_add_pool

from gnnlab.models import build_gnn
from gnnlab.errors import ConfigError
from gnnlab.nn.conv import GATConv, GatedGCNConv, GINConv
from gnnlab.nn.encoders import EmbeddingEncoder
from gnnlab.nn.layers import ConvLayer, GraphTransformerLayer, gps_layer
from gnnlab.nn.mixer import MultiheadAttentionMixer, PerformerMixer
from gnnlab.nn.pe import MLPPEEncoder


def molecule(n: int, seed: int) -> Data:
    g = torch.Generator().manual_seed(seed)
    upper = torch.triu(torch.rand(n, n, generator=g) < 0.3, diagonal=1)
    src, dst = upper.nonzero().t()
    ei = torch.cat([torch.stack([src, dst]), torch.stack([dst, src])], dim=1)
    return Data(
        x=torch.randint(0, 5, (n,), generator=g),
        edge_index=ei,
        edge_attr=torch.randint(0, 3, (ei.size(1),), generator=g),
        rwse=torch.rand(n, 6, generator=g),
    )


def permute(data: Data, perm: torch.Tensor) -> Data:
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(perm.numel())
    return Data(x=data.x[perm], edge_index=inv[data.edge_index], edge_attr=data.edge_attr, rwse=data.rwse[perm])


LAYERS = {
    "gps-attention": partial(gps_layer, conv=lambda a, b: GatedGCNConv(a, b), mixer=lambda d: MultiheadAttentionMixer(d, 4),
                             local_residual=False),
    "gps-performer": partial(gps_layer, conv=lambda a, b: GatedGCNConv(a, b), mixer=lambda d: PerformerMixer(d, 4),
                             local_residual=False),
    "gt": partial(GraphTransformerLayer, num_heads=4),
}


def model(layer: str, pool, out: int = 3):
    return build_gnn(
        layer=LAYERS[layer],
        node_encoder=partial(EmbeddingEncoder, 5),
        edge_encoder=partial(EmbeddingEncoder, 3),
        out_channels=out,
        hidden_channels=32,
        num_layers=2,
        pool=pool,
        pe={"rwse": partial(MLPPEEncoder, 6, 8)},
    ).eval()


@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_graph_level_invariance_and_batching(layer):
    torch.manual_seed(0)
    net = model(layer, global_add_pool)
    graphs = [molecule(9, 1), molecule(14, 2), molecule(5, 3)]
    alone = torch.cat([net(Batch.from_data_list([g])) for g in graphs])
    together = net(Batch.from_data_list(graphs))
    assert_close(together, alone, atol=1e-5, rtol=1e-5)
    permuted = [permute(g, torch.randperm(g.num_nodes)) for g in graphs]
    assert_close(net(Batch.from_data_list(permuted)), together, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_node_level_equivariance(layer):
    torch.manual_seed(1)
    net = model(layer, None)
    g = molecule(12, 4)
    perm = torch.randperm(12)
    assert_close(net(Batch.from_data_list([permute(g, perm)])), net(Batch.from_data_list([g]))[perm], atol=1e-5, rtol=1e-5)


def test_pe_takes_its_width_from_the_node_encoder():
    net = model("gps-attention", global_add_pool)
    assert net.node_encoder.out_channels == 32 - 8
    assert list(net.pe_encoders) == ["rwse"]
    with pytest.raises(ValueError, match="positional encodings take 32 of hidden_channels=32"):
        build_gnn(
            layer=LAYERS["gt"], node_encoder=partial(EmbeddingEncoder, 5), out_channels=1, hidden_channels=32,
            pe={"rwse": partial(MLPPEEncoder, 6, 32)},
        )


def test_pe_combine_add_sums_the_encodings_onto_the_node_embedding():
    """pe_combine='add': h_0 = node_encoder(x) + Σ pe(data) (GT's and GatedGCN-PE's LapPE), checked through the
    first layer's input."""
    torch.manual_seed(3)
    pe = {"a": partial(MLPPEEncoder, 6, 32), "b": partial(MLPPEEncoder, 6, 32)}
    net = build_gnn(layer=LAYERS["gt"], node_encoder=partial(EmbeddingEncoder, 5), edge_encoder=partial(EmbeddingEncoder, 3),
                    out_channels=2, hidden_channels=32, num_layers=1, pool=global_add_pool, pe=pe,
                    pe_combine="add").eval()
    assert net.node_encoder.out_channels == 32
    seen = {}
    net.layers[0].register_forward_pre_hook(lambda mod, args: seen.update(h0=args[0]))  # returns None: args kept
    g = Batch.from_data_list([molecule(8, 6)])
    net(g)
    expected = net.node_encoder(g.x) + net.pe_encoders["a"](g) + net.pe_encoders["b"](g)
    assert_close(seen["h0"], expected)
    with pytest.raises(ValueError, match="pe_combine='add' needs every PE encoder 32 wide"):
        build_gnn(layer=LAYERS["gt"], node_encoder=partial(EmbeddingEncoder, 5), out_channels=1, hidden_channels=32,
                  pe={"rwse": partial(MLPPEEncoder, 6, 8)}, pe_combine="add")
    with pytest.raises(ValueError, match="pe_combine"):
        build_gnn(layer=LAYERS["gt"], node_encoder=partial(EmbeddingEncoder, 5), out_channels=1, hidden_channels=32,
                  pe_combine="mean")


def test_missing_pe_attribute_is_a_clear_error():
    net = model("gt", global_add_pool)
    g = molecule(6, 5)
    del g.rwse
    with pytest.raises(ValueError, match="no attribute 'rwse'.*RandomWalkSE"):
        net(Batch.from_data_list([g]))


def test_link_level_gps_excludes_masked_edges():
    from gnnlab.models.link import GNNLinkEncoder, LinkPredictionModel
    from gnnlab.nn.link import HadamardMLPPredictor
    from gnnlab.ops import Graph

    torch.manual_seed(3)
    n = 15
    g = molecule(n, 6)
    gnn = build_gnn(
        layer=LAYERS["gps-attention"], node_encoder=partial(EmbeddingEncoder, n), out_channels=1,
        edge_encoder=partial(EmbeddingEncoder, 1), hidden_channels=16, num_layers=2,
    )
    link = LinkPredictionModel(HadamardMLPPredictor(16, 16), GNNLinkEncoder(gnn)).eval()
    assert not any("head" in name for name, _ in link.named_parameters())
    graph = Graph.undirected(g.edge_index, n)
    pairs = torch.tensor([[0, 1, 2], [3, 4, 5]])
    mask = torch.ones(graph.num_edges, dtype=torch.bool)
    mask[:4] = False
    masked = link(None, graph, pairs, mask)
    reference = link(None, Graph.from_edge_index(graph.edge_index[:, mask], n), pairs)
    assert_close(masked, reference)
    assert not torch.allclose(masked, link(None, graph, pairs))
    masked.sum().backward()
    # (The last layer's edge outputs are unused, so only its edge batch norm gets no gradient.)
    missing = [n for n, p in link.encoder.named_parameters() if p.grad is None]
    assert missing and all("layers.1.conv.bn_edge" in n for n in missing), missing


@pytest.mark.parametrize("layer", ["gps-attention", "gt"])
def test_a_layer_that_reads_edges_without_an_edge_encoder_is_refused_at_build(layer):
    # A dataset without edge features (data.edge_encoder: null) under a conv that needs them: the build
    # names the layer and the override, instead of a ValueError deep inside the first forward.
    with pytest.raises(ConfigError, match=r"layer 0 \((GatedGCNConv|GraphTransformerAttention)\) reads edge features.*"
                                          r"ConstantEncoder"):
        build_gnn(layer=LAYERS[layer], node_encoder=partial(EmbeddingEncoder, 5), out_channels=3,
                  hidden_channels=32, num_layers=2)
    # A conv that reads no edges builds without one.
    gin = partial(gps_layer, conv=lambda a, b: GINConv(a, b), mixer=lambda d: MultiheadAttentionMixer(d, 4))
    build_gnn(layer=gin, node_encoder=partial(EmbeddingEncoder, 5), out_channels=3, hidden_channels=32,
              num_layers=2)


def test_last_layer_replaces_only_the_last_layer():
    """Benchmarking-GNNs' GAT ends in one single-head layer of the same width as the 8-head layers."""
    def gat(heads):
        return partial(ConvLayer, conv=partial(GATConv, heads=heads))

    net = build_gnn(layer=gat(8), last_layer=gat(1), node_encoder=partial(EmbeddingEncoder, 5), out_channels=1,
                    hidden_channels=16, num_layers=3, pool=global_add_pool)
    assert [layer.conv.heads for layer in net.layers] == [8, 8, 1]
    plain = build_gnn(layer=gat(8), node_encoder=partial(EmbeddingEncoder, 5), out_channels=1, hidden_channels=16,
                      num_layers=3, pool=global_add_pool)
    assert [layer.conv.heads for layer in plain.layers] == [8, 8, 8]
    # same width, same parameter count: only the split into heads differs
    assert sum(p.numel() for p in net.parameters()) == sum(p.numel() for p in plain.parameters())
    data = Data(x=torch.tensor([1, 2, 3, 4]), edge_index=torch.tensor([[0, 1, 2, 3], [1, 2, 3, 0]]))
    assert net.eval()(Batch.from_data_list([data])).shape == (1, 1)
