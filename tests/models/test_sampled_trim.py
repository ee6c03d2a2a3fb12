"""Per-layer trimming of neighbour-sampled batches (GNN(trim_sampled=...)): the seeds' outputs (and gradients)
equal the first batch_size rows of the untrimmed forward, each layer computes only what later layers read,
and every case where that would not be exact is refused."""
from __future__ import annotations

from functools import partial

import pytest
import torch
from torch_geometric.data import Data

from gnnlab.data import node_neighbor_loader
from gnnlab.models import build_gnn
from gnnlab.models.hops import sampled_hops
from gnnlab.nn.conv import GATConv, GCNConv, GINConv, SAGEConv
from gnnlab.nn.encoders import LinearEncoder
from gnnlab.nn.layers import ConvLayer
from gnnlab.nn.mlp import mlp
from gnnlab.train.tasks import NodeClassification


def random_data(num_nodes=300, num_edges=2400, channels=6, seed=0) -> Data:
    g = torch.Generator().manual_seed(seed)
    edge_index = torch.randint(0, num_nodes, (2, num_edges), generator=g)
    # A few self loops and duplicate edges: both must be treated as in the untrimmed forward.
    edge_index[:, :10] = edge_index[0, :10].repeat(2, 1)
    edge_index[:, 10:20] = edge_index[:, 20:30]
    return Data(x=torch.randn(num_nodes, channels, generator=g), edge_index=edge_index,
                y=torch.randint(0, 4, (num_nodes,), generator=g), train_mask=torch.rand(num_nodes, generator=g) < 0.5)


def batches(data, fanouts, batch_size=16, count=3, seed=0):
    loader = node_neighbor_loader(data, fanouts, data.train_mask, batch_size=batch_size, shuffle=True,
                                  engine="gnnlab", generator=torch.Generator().manual_seed(seed))
    out = []
    for batch in loader:
        out.append(batch)
        if len(out) == count:
            break
    return out


def gin_without_bn(i, o):
    return GINConv(i, o, mlp=mlp([i, o, o]))


CONVS = {
    "sage": SAGEConv,
    "sage-max": partial(SAGEConv, aggr="max"),
    "sage-narrow": SAGEConv,  # last layer narrower than its input: SAGE transforms before aggregating
    "gin": gin_without_bn,
    "gin-bn": GINConv,  # batch norm inside the GIN MLP
    "gat": partial(GATConv, heads=2),
}


def model_with(conv, num_layers=2, readout="last", batch_norm=False, residual=True, dropout=0.0, seed=0, **kw):
    torch.manual_seed(seed)
    return build_gnn(layer=partial(ConvLayer, conv=conv, batch_norm=batch_norm, residual=residual, dropout=dropout),
                     node_encoder=partial(LinearEncoder, in_channels=6), out_channels=4, hidden_channels=16,
                     num_layers=num_layers, readout=readout, **kw)


def untrimmed_and_trimmed(model, batch):
    """(first batch_size rows of the untrimmed forward, the trimmed forward) of ``model`` on ``batch``."""
    model.trim_sampled = "never"
    full = model(batch)
    model.trim_sampled = "always"
    trimmed = model(batch)
    return full[: batch.batch_size], trimmed


def trained(model, data):
    """A few steps of full-graph training, so batch-norm running statistics are not the identity."""
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    for _ in range(3):
        opt.zero_grad()
        model(data).pow(2).mean().backward()
        opt.step()
    return model


@pytest.mark.parametrize("name", sorted(CONVS))
@pytest.mark.parametrize("num_layers,fanouts", [(2, [4, 3]), (3, [3, 2, 2]), (3, [4, 3]), (1, [4, 3])])
def test_eval_mode_seeds_equal_untrimmed(op_backend, name, num_layers, fanouts):
    """Eval mode, batch norm and residuals on: more layers than hops, fewer, as many."""
    data = random_data()
    kw = dict(last_layer_out=8) if name == "sage-narrow" else {}
    model = trained(model_with(CONVS[name], num_layers, batch_norm=True, **kw), data).eval()
    for batch in batches(data, fanouts):
        with torch.no_grad():
            full, trimmed = untrimmed_and_trimmed(model, batch)
        assert trimmed.shape == full.shape == (batch.batch_size, 4)
        torch.testing.assert_close(trimmed, full, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", ["sage", "sage-max", "gin", "gat"])
def test_training_mode_outputs_and_gradients_equal_untrimmed(op_backend, name):
    """Training mode without batch norm or dropout: the loss on the seeds and every parameter's gradient agree."""
    data = random_data(seed=1)
    model = model_with(CONVS[name], 2).train()
    task = NodeClassification(transductive=True)
    for batch in batches(data, [5, 3], count=2):
        grads = []
        for mode in ("never", "always"):
            model.trim_sampled = mode
            model.zero_grad()
            out = task.step(model, batch, "train")
            out.loss.backward()
            grads.append((out.loss.detach(), [p.grad.clone() for p in model.parameters()]))
        (loss_full, g_full), (loss_trim, g_trim) = grads
        torch.testing.assert_close(loss_trim, loss_full, rtol=1e-5, atol=1e-6)
        for a, b in zip(g_trim, g_full):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_every_layer_readout(op_backend):
    data = random_data(seed=2)
    model = model_with(SAGEConv, 3, readout="every_layer").eval()
    for batch in batches(data, [4, 3, 2]):
        with torch.no_grad():
            full, trimmed = untrimmed_and_trimmed(model, batch)
        torch.testing.assert_close(trimmed, full, rtol=1e-4, atol=1e-5)


def test_each_layer_computes_only_what_later_layers_read(op_backend):
    data = random_data(seed=3)
    model = model_with(SAGEConv, 2).eval()
    rows = []
    handles = [layer.register_forward_hook(lambda m, inp, out: rows.append((inp[0].size(0), out[0].size(0),
                                                                            inp[1].num_edges)))
               for layer in model.layers]
    (batch,) = batches(data, [4, 3], count=1)
    hops = sampled_hops(batch)[0]
    with torch.no_grad():
        model(batch)  # default "auto": trims
    for h in handles:
        h.remove()
    seeds, within1 = batch.num_sampled_nodes[0], sum(batch.num_sampled_nodes[:2])
    assert rows == [(batch.num_nodes, within1, batch.num_sampled_edges[0] + batch.num_sampled_edges[1]),
                    (within1, seeds, batch.num_sampled_edges[0])]
    assert hops.nodes == [seeds, within1, batch.num_nodes] and hops.num_seeds == seeds
    assert within1 < batch.num_nodes  # the test trims something


def test_sampler_edge_order_is_by_hop(op_backend):
    """The order trimming relies on, on the loader's real batches: the edges of hop k come after those of
    hop k - 1 and go into the nodes new in hop k, from nodes within k + 1 hops; a shuffled batch is refused."""
    data = random_data(seed=4)
    for batch in batches(data, [4, 3, 2]):
        hops, reason = sampled_hops(batch)
        assert hops is not None, reason
        bounds = [0] + hops.nodes
        edge_bounds = [0] + hops.edges
        for k in range(hops.hops):
            src, dst = batch.edge_index[:, edge_bounds[k]:edge_bounds[k + 1]]
            assert bool(((dst >= bounds[k]) & (dst < bounds[k + 1])).all())
            assert bool((src < bounds[k + 2]).all())
        shuffled = batch.clone()
        order = torch.randperm(batch.num_edges, generator=torch.Generator().manual_seed(0))
        shuffled.edge_index = batch.edge_index[:, order]
        hops, reason = sampled_hops(shuffled)
        assert hops is None and "hop order" in reason
        # An edge into a seed from a node two hops out: layer L - 1 would not read that source when trimmed.
        far = batch.clone()
        far.edge_index = batch.edge_index.clone()
        far.edge_index[0, 0] = batch.num_nodes - 1
        hops, reason = sampled_hops(far)
        assert hops is None and "hop 0" in reason and "sources" in reason


def test_refuses_batch_norm_in_training_mode(op_backend):
    data = random_data(seed=5)
    (batch,) = batches(data, [4, 3], count=1)
    for model in (model_with(SAGEConv, 2, batch_norm=True), model_with(GINConv, 2)):  # ConvLayer BN, GIN MLP BN
        model.train()
        assert any("batch norm in training mode" in p for p in model.trim_obstacles())
        model.trim_sampled = "always"
        with pytest.raises(ValueError, match="batch norm in training mode"):
            model(batch)
        model.trim_sampled = "auto"  # the untrimmed forward: every sampled node's row
        assert model(batch).size(0) == batch.num_nodes
        model.eval()  # running statistics act row by row: trimmed
        assert model.trim_obstacles() == [] and model(batch).size(0) == batch.batch_size


def test_refuses_gcn_and_falls_back_under_auto(op_backend):
    data = random_data(seed=6)
    (batch,) = batches(data, [4, 3], count=1)
    model = model_with(GCNConv, 2).eval()
    with torch.no_grad():
        assert model(batch).size(0) == batch.num_nodes  # auto: untrimmed
        model.trim_sampled = "always"
        with pytest.raises(ValueError, match=r"layers 0 \(GCNConv\), 1 \(GCNConv\)"):
            model(batch)


def test_broken_hop_order_warns_under_auto_and_raises_under_always(op_backend):
    data = random_data(seed=7)
    (batch,) = batches(data, [4, 3], count=1)
    batch.edge_index = batch.edge_index.flip(1)  # last hop first
    model = model_with(SAGEConv, 2).eval()
    with torch.no_grad(), pytest.warns(UserWarning, match="untrimmed.*hop order"):
        assert model(batch).size(0) == batch.num_nodes
    model.trim_sampled = True
    with pytest.raises(ValueError, match="hop order"):
        model(batch)
    batch.num_sampled_edges = [1, 2]
    with pytest.raises(ValueError, match="do not add up"):
        model(batch)


def test_plain_batches_are_untouched_and_modes_are_checked():
    data = random_data(seed=8)
    model = model_with(SAGEConv, 2).eval()
    assert model(data).size(0) == data.num_nodes  # no per-hop counts: the plain forward, no warning
    model.trim_sampled = False
    assert model.trim_sampled == "never"
    with pytest.raises(ValueError, match="trim_sampled must be one of"):
        model.trim_sampled = "sometimes"
    with pytest.raises(ValueError, match="trim_sampled must be one of"):
        model_with(SAGEConv, 2, trim_sampled="yes")
    model.trim_sampled = "always"
    with pytest.raises(ValueError, match="no per-hop counts"):
        model(data)


def test_prefix_target_graph_in_convs(op_backend):
    """The conv contract trimming uses: a graph whose targets are the first rows of x gives those rows."""
    from gnnlab.ops import Graph

    g = torch.Generator().manual_seed(9)
    x = torch.randn(30, 8, generator=g)
    edge_index = torch.stack([torch.randint(0, 30, (120,), generator=g), torch.randint(0, 12, (120,), generator=g)])
    square, prefix = Graph.from_edge_index(edge_index, 30), Graph.from_edge_index(edge_index, 30, num_dst=12)
    for conv in (SAGEConv(8, 8), SAGEConv(8, 4), GINConv(8, 8), GATConv(8, 8, heads=2),
                 ConvLayer(8, 8, conv=SAGEConv, batch_norm=True)):
        conv.eval()
        with torch.no_grad():
            torch.testing.assert_close(conv(x, prefix)[0], conv(x, square)[0][:12], rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="the graph has 30/12"):  # square graphs only
        GCNConv(8, 8)(x, prefix)


@pytest.mark.parametrize("value,expected", [(None, "auto"), ("never", "never"), ("always", "always")])
def test_config_flag(tmp_path, value, expected):
    """`model.trim_sampled=...` of a build_gnn model config reaches the model (default auto)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.utils import instantiate

    from tests.conf.test_configs import compose_cfg

    overrides = ["data=cora_sampled", "model=sage", "model.num_layers=2"]
    try:
        cfg = compose_cfg(overrides + ([f"model.trim_sampled={value}"] if value else []), tmp_path)
        model = instantiate(cfg.model)
    finally:
        HydraConfig.instance().cfg = None
    assert model.trim_sampled == expected
