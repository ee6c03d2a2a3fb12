"""GNN.layerwise_inference: chunked layer-by-layer full-graph outputs equal the plain forward pass."""
from __future__ import annotations

from functools import partial

import pytest
import torch
from torch_geometric.data import Data

from gnnlab.models import build_gnn
from gnnlab.nn.conv import GATConv, GCNConv, GINConv, SAGEConv
from gnnlab.nn.encoders import LinearEncoder
from gnnlab.nn.layers import ConvLayer


def random_graph(num_nodes=80, num_edges=500, channels=6, seed=0) -> Data:
    g = torch.Generator().manual_seed(seed)
    edge_index = torch.randint(0, num_nodes, (2, num_edges), generator=g)
    return Data(x=torch.randn(num_nodes, channels, generator=g), edge_index=edge_index)


def model_with(conv, readout="last", seed=0, **layer):
    torch.manual_seed(seed)
    model = build_gnn(layer=partial(ConvLayer, conv=conv, **layer), node_encoder=partial(LinearEncoder, in_channels=6),
                      out_channels=4, hidden_channels=16, num_layers=3, readout=readout)
    # Train a few steps so batch-norm statistics are not the identity.
    data = random_graph(seed=seed + 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    for _ in range(3):
        opt.zero_grad()
        model(data).pow(2).mean().backward()
        opt.step()
    return model.eval()


CONVS = {
    "sage": SAGEConv,
    "sage-max": partial(SAGEConv, aggr="max"),
    "gin": GINConv,
    "gat": partial(GATConv, heads=2),
}


@pytest.mark.parametrize("name", sorted(CONVS))
@pytest.mark.parametrize("batch_size", [13, 1000])
def test_matches_forward(op_backend, name, batch_size):
    model = model_with(CONVS[name])
    data = random_graph(seed=3)
    with torch.no_grad():
        expected = model(data)
    got = model.layerwise_inference(data, batch_size=batch_size)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


def test_every_layer_readout_and_isolated_nodes(op_backend):
    model = model_with(SAGEConv, readout="every_layer")
    data = random_graph(num_nodes=150, num_edges=200, seed=5)  # many nodes without in-edges
    with torch.no_grad():
        expected = model(data)
    torch.testing.assert_close(model.layerwise_inference(data, batch_size=32), expected, rtol=1e-4, atol=1e-5)


def test_refuses_training_mode_and_non_local_layers():
    model = model_with(SAGEConv).train()
    with pytest.raises(RuntimeError, match="eval mode"):
        model.layerwise_inference(random_graph())
    gcn = model_with(GCNConv)
    with pytest.raises(ValueError, match=r"layers 0 \(GCNConv\), 1 \(GCNConv\), 2 \(GCNConv\)"):
        gcn.layerwise_inference(random_graph())
