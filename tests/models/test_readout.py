"""GIN's every-depth readout (build_gnn(readout="every_layer")) against a hand-written reference."""
from __future__ import annotations

from functools import partial

import pytest
import torch
from torch.testing import assert_close
from torch_geometric.data import Batch, Data
from torch_geometric.nn import global_add_pool

from gnnlab.models import GNN, LayerSumReadout, MLPReadout, build_gnn
from gnnlab.nn.conv import GINConv
from gnnlab.nn.encoders import EmbeddingEncoder
from gnnlab.nn.layers import ConvLayer
from gnnlab.ops import Graph


def graph(n: int, seed: int) -> Data:
    g = torch.Generator().manual_seed(seed)
    upper = torch.triu(torch.rand(n, n, generator=g) < 0.3, diagonal=1)
    src, dst = upper.nonzero().t()
    return Data(x=torch.randint(0, 7, (n,), generator=g), edge_index=torch.cat([torch.stack([src, dst]), torch.stack([dst, src])], 1))


def gin(pool, out=3, layers=3, dim=16) -> GNN:
    torch.manual_seed(0)
    model = build_gnn(
        layer=partial(ConvLayer, conv=partial(GINConv, train_eps=True), batch_norm=True, residual=True),
        node_encoder=partial(EmbeddingEncoder, num_embeddings=7),
        out_channels=out, hidden_channels=dim, num_layers=layers, pool=pool, readout="every_layer",
    )
    for p in model.parameters():  # eps and biases start at zero: randomise so every term matters
        torch.nn.init.normal_(p, std=0.3)
    return model.eval()


def reference(model: GNN, data) -> torch.Tensor:
    """Xu et al.'s readout written out: Σ_k W_k · pool(h_k) + b_k over the input and every layer."""
    h = model.node_encoder(data.x)
    hs = [h]
    graph = Graph.from_data(data)
    for layer in model.layers:
        h, _ = layer(h, graph, None)
        hs.append(h)
    if model.pool is not None:
        hs = [model.pool(x, data.batch) for x in hs]
    return sum(x @ lin.weight.t() + lin.bias for x, lin in zip(hs, model.head.lins))


@pytest.mark.parametrize("pool", [global_add_pool, None], ids=["graph", "node"])
def test_every_layer_readout_matches_reference(pool):
    model = gin(pool)
    assert isinstance(model.head, LayerSumReadout) and len(model.head.lins) == 4
    batch = Batch.from_data_list([graph(9, 1), graph(5, 2), graph(12, 3)])
    out = model(batch)
    assert out.shape == ((3, 3) if pool is not None else (26, 3))
    assert_close(out, reference(model, batch))
    # Dropping any depth's map changes the output: every depth contributes.
    with torch.no_grad():
        model.head.lins[1].weight.zero_()
        model.head.lins[1].bias.zero_()
    assert not torch.allclose(model(batch), out)


def test_every_layer_readout_is_permutation_invariant():
    model = gin(global_add_pool)
    data = graph(11, 4)
    perm = torch.randperm(11, generator=torch.Generator().manual_seed(5))
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(11)
    permuted = Data(x=data.x[perm], edge_index=inv[data.edge_index])
    assert_close(model(Batch.from_data_list([data])), model(Batch.from_data_list([permuted])), rtol=1e-5, atol=1e-5)


def test_parameter_count_is_the_reference_formula():
    """Embedding + L GIN layers + (L + 1) linear maps (Benchmarking-GNNs' GIN counts, e.g. ZINC 500k = 509,549)."""
    model = gin(global_add_pool, out=1, layers=4, dim=16)
    per_layer = 2 * (16 * 16 + 16) + 2 * 2 * 16 + 1  # MLP, its inner BN and the layer BN, eps
    assert sum(p.numel() for p in model.parameters()) == 7 * 16 + 4 * per_layer + 5 * (16 + 1)


def test_last_readout_is_unchanged_and_bad_readout_is_an_error():
    model = build_gnn(layer=partial(ConvLayer, conv=GINConv), node_encoder=partial(EmbeddingEncoder, num_embeddings=7),
                      out_channels=2, hidden_channels=8, num_layers=2)
    assert isinstance(model.head, MLPReadout) and model.readout == "last"
    with pytest.raises(ValueError, match="readout"):
        build_gnn(layer=partial(ConvLayer, conv=GINConv), node_encoder=partial(EmbeddingEncoder, num_embeddings=7),
                  out_channels=2, hidden_channels=8, num_layers=2, readout="concat")
    with pytest.raises(ValueError, match="representations"):
        LayerSumReadout([4, 4], 1)([torch.randn(2, 4)])


def test_mlp_head_is_constant_width():
    """GraphGym's post-MP head: num_layers linear maps, hidden width = input width, ReLU between."""
    from gnnlab.models import MLPHead

    torch.manual_seed(0)
    head = MLPHead(12, 5, num_layers=3)
    assert [(lin.in_features, lin.out_features) for lin in head.lins] == [(12, 12), (12, 12)]
    x = torch.randn(7, 12)
    ref = x
    for lin in head.lins:
        ref = torch.relu(ref @ lin.weight.t() + lin.bias)
    assert_close(head(x), ref @ head.out.weight.t() + head.out.bias)
    assert sum(p.numel() for p in MLPHead(48, 6).parameters()) == 2 * (48 * 48 + 48) + 48 * 6 + 6
    assert len(MLPHead(4, 2, num_layers=1).lins) == 0
    with pytest.raises(ValueError, match="num_layers"):
        MLPHead(4, 2, num_layers=0)


@pytest.mark.parametrize("include_input", [False, True])
def test_concat_readout_is_errica_graphsage(include_input):
    """Errica et al.'s GraphSAGE: plain SAGE layers, [h_1..h_L] max-pooled, Linear -> ReLU -> Linear."""
    from torch_geometric.nn import global_max_pool

    from gnnlab.models import ConcatReadout
    from gnnlab.nn.conv import SAGEConv

    torch.manual_seed(3)
    model = build_gnn(
        layer=partial(ConvLayer, conv=partial(SAGEConv, aggr="sum"), batch_norm=False, residual=False, act=None),
        node_encoder=partial(EmbeddingEncoder, num_embeddings=7), out_channels=2, hidden_channels=6, num_layers=3,
        pool=global_max_pool, readout="every_layer",
        head=partial(ConcatReadout, hidden_channels=5, include_input=include_input),
    ).eval()
    assert model.head.hidden.in_features == 6 * (4 if include_input else 3)
    batch = Batch.from_data_list([graph(9, 1), graph(5, 2), graph(12, 3)])
    h = model.node_encoder(batch.x)
    hs, g = [h], Graph.from_data(batch)
    for layer in model.layers:
        h = layer.conv(h, g)[0]  # no normalisation, activation or residual between the convolutions
        hs.append(h)
    joined = torch.cat(hs if include_input else hs[1:], dim=1)
    pooled = torch.stack([joined[batch.batch == b].amax(0) for b in range(3)])
    expected = model.head.out(torch.relu(model.head.hidden(pooled)))
    assert_close(model(batch), expected)
    with pytest.raises(ValueError, match="representations"):
        model.head([torch.randn(3, 6)] * 2)
