"""Neighbour-sampled loaders (PyG's NeighborLoader / LinkNeighborLoader with gnnlab's sampler) and the data module."""
from __future__ import annotations

import pytest
import torch
from torch_geometric.data import Data, HeteroData

from gnnlab.data import SampledNodeDataModule, link_neighbor_loader, make_neighbor_sampler, node_neighbor_loader
from gnnlab.data.sampled import LayerwiseBatch
from gnnlab.data.sampling import GnnlabNeighborSampler, pyg_sampler_available
from gnnlab.errors import ConfigError


def random_data(num_nodes=200, num_edges=1500, seed=0) -> Data:
    g = torch.Generator().manual_seed(seed)
    edge_index = torch.randint(0, num_nodes, (2, num_edges), generator=g)
    masks = torch.rand(3, num_nodes, generator=g)
    return Data(x=torch.randn(num_nodes, 5, generator=g), edge_index=edge_index, y=torch.randint(0, 3, (num_nodes,), generator=g),
                edge_attr=torch.randn(num_edges, 2, generator=g),
                train_mask=masks[0] < 0.5, val_mask=masks[1] < 0.3, test_mask=masks[2] < 0.3)


def check_batch_against_graph(batch, data: Data, fanouts: list[int]) -> None:
    """PyG's contract for a sampled batch, checked against the full graph."""
    n_id, e_id = batch.n_id, batch.e_id
    assert batch.num_nodes == n_id.numel() and batch.edge_index.size(1) == e_id.numel()
    assert n_id.unique().numel() == n_id.numel()  # distinct nodes (distinct seeds)
    # Node and edge features are the full graph's, filtered.
    assert torch.equal(batch.x, data.x[n_id]) and torch.equal(batch.y, data.y[n_id])
    assert torch.equal(batch.edge_attr, data.edge_attr[e_id])
    # Every edge of the batch is the edge e_id of the full graph, between sampled nodes (local -> global ids).
    assert torch.equal(n_id[batch.edge_index], data.edge_index[:, e_id])
    # Hop structure: edges point towards the seed side; per-hop counts add up.
    assert sum(batch.num_sampled_nodes) == n_id.numel() and sum(batch.num_sampled_edges) == e_id.numel()
    assert len(batch.num_sampled_nodes) == len(fanouts) + 1
    deg = torch.bincount(data.edge_index[1], minlength=data.num_nodes)
    seeds = n_id[: batch.num_sampled_nodes[0]]
    hop1 = batch.edge_index[:, : batch.num_sampled_edges[0]]
    per_seed = torch.bincount(hop1[1], minlength=seeds.numel())[: seeds.numel()]
    k = fanouts[0]
    assert torch.equal(per_seed, deg[seeds] if k < 0 else torch.clamp(deg[seeds], max=k))


@pytest.mark.parametrize("engine", ["gnnlab"] + (["pyg"] if pyg_sampler_available() else []))
def test_node_loader_batches_follow_pyg_contract(op_backend, engine):
    data = random_data()
    seeds = data.train_mask.nonzero().view(-1)
    loader = node_neighbor_loader(data, [4, 3], data.train_mask, batch_size=16, shuffle=True, engine=engine,
                                  generator=torch.Generator().manual_seed(0))
    seen = []
    for batch in loader:
        assert batch.batch_size == batch.input_id.numel() <= 16
        # Seeds first (for a mask PyG's input_id is the seed's node id).
        assert torch.equal(batch.n_id[: batch.batch_size], batch.input_id)
        assert bool(data.train_mask[batch.n_id[: batch.batch_size]].all())
        check_batch_against_graph(batch, data, [4, 3])
        seen.append(batch.n_id[: batch.batch_size])
    assert torch.equal(torch.cat(seen).sort().values, seeds)  # one epoch visits every seed once


def test_fixed_seed_gives_the_same_batches(op_backend):
    data = random_data(seed=1)

    def epoch(seed):
        loader = node_neighbor_loader(data, [5, 5], data.train_mask, batch_size=32, shuffle=True, engine="gnnlab",
                                      generator=torch.Generator().manual_seed(seed))
        return [(b.n_id.clone(), b.e_id.clone()) for b in loader]

    a, b, c = epoch(3), epoch(3), epoch(4)
    assert all(torch.equal(x[0], y[0]) and torch.equal(x[1], y[1]) for x, y in zip(a, b))
    assert not all(torch.equal(x[1], y[1]) for x, y in zip(a, c))


def test_all_neighbours_batch_is_the_in_edges(op_backend):
    data = random_data(seed=2)
    batch = next(iter(node_neighbor_loader(data, [-1], None, batch_size=10, engine="gnnlab")))
    check_batch_against_graph(batch, data, [-1])
    into = torch.isin(data.edge_index[1], batch.n_id[:10]).nonzero().view(-1)
    assert torch.equal(batch.e_id.sort().values, into)


def test_link_loader_batches(op_backend):
    data = random_data(seed=4)
    pairs = data.edge_index[:, :100]
    torch.manual_seed(0)  # PyG draws the negatives from torch's default generator
    loader = link_neighbor_loader(data, [3, 2], pairs, batch_size=25, neg_sampling="binary", engine="gnnlab",
                                  generator=torch.Generator().manual_seed(0))
    count = 0
    for batch in loader:
        check_batch_against_graph(batch, data, [3, 2])
        label_index, label = batch.edge_label_index, batch.edge_label
        assert label_index.size(1) == label.numel() == 2 * batch.input_id.numel()
        num_pos = batch.input_id.numel()
        assert bool((label[:num_pos] == 1).all()) and bool((label[num_pos:] == 0).all())
        # The positives are the requested pairs, in local ids of the sampled nodes.
        assert torch.equal(batch.n_id[label_index[:, :num_pos]], pairs[:, batch.input_id])
        # Both ends of every pair (positives and negatives) are among the sampled nodes' seeds.
        assert int(label_index.max()) < batch.num_sampled_nodes[0]
        count += num_pos
    assert count == 100


def test_triplet_negatives(op_backend):
    data = random_data(seed=5)
    loader = link_neighbor_loader(data, [2], data.edge_index[:, :40], batch_size=20,
                                  neg_sampling=dict(mode="triplet", amount=2), engine="gnnlab")
    batch = next(iter(loader))
    assert batch.src_index.numel() == 20 and batch.dst_neg_index.shape == (20, 2)
    check_batch_against_graph(batch, data, [2])


def test_unsupported_sampling_raises():
    data = random_data()
    hetero = HeteroData()
    hetero["a"].x = torch.randn(3, 2)
    with pytest.raises(NotImplementedError, match="homogeneous"):
        GnnlabNeighborSampler(hetero, [2])
    with pytest.raises(NotImplementedError, match="temporal"):
        GnnlabNeighborSampler(data, [2], time_attr="time")
    with pytest.raises(NotImplementedError, match="weighted"):
        GnnlabNeighborSampler(data, [2], weight_attr="edge_attr")
    with pytest.raises(NotImplementedError, match="disjoint"):
        GnnlabNeighborSampler(data, [2], disjoint=True)
    with pytest.raises(NotImplementedError, match="induced"):
        GnnlabNeighborSampler(data, [2], subgraph_type="induced")
    with pytest.raises(ValueError, match=r"num_neighbors\[0\] must be -1"):
        GnnlabNeighborSampler(data, [-3])
    with pytest.raises(ConfigError, match="engine"):
        make_neighbor_sampler(data, [2], engine="fast")
    if not pyg_sampler_available():
        with pytest.raises(ImportError, match="pyg-lib or torch-sparse"):
            make_neighbor_sampler(data, [2], engine="pyg")
        assert isinstance(make_neighbor_sampler(data, [2], engine="auto"), GnnlabNeighborSampler)


def test_bidirectional_subgraph(op_backend):
    data = random_data(seed=6)
    loader = node_neighbor_loader(data, [3, 2], None, batch_size=8, engine="gnnlab", sampler=GnnlabNeighborSampler(
        data, [3, 2], subgraph_type="bidirectional"))
    batch = next(iter(loader))
    ei = batch.edge_index
    forward = set(map(tuple, ei.t().tolist()))
    assert all((j, i) in forward for i, j in forward)


def test_data_module_interface(op_backend):
    data = random_data(seed=7)
    dm = SampledNodeDataModule.from_data(data, [4, 4], batch_size=20, eval_batch_size=50, seed=3)
    assert dm.facts["in_channels"] == 5 and dm.facts["num_outputs"] == 3 and dm.facts["num_nodes"] == 200
    assert "neighbour sampling [4, 4]" in dm.describe()
    train = dm.loader("train")
    assert len(train) == -(-int(data.train_mask.sum()) // 20)
    first = [b.n_id for b in train]
    (evaluation,) = dm.loader("val")
    assert isinstance(evaluation, LayerwiseBatch) and evaluation.chunk_size == 50
    # Same seed, same batches; the shared generator moves on, so the next epoch differs.
    again = SampledNodeDataModule.from_data(data, [4, 4], batch_size=20, seed=3)
    assert all(torch.equal(a, b) for a, b in zip(first, [b.n_id for b in again.loader("train")]))
    assert not all(torch.equal(a, b) for a, b in zip(first, [b.n_id for b in dm.loader("train")]))
    sampled = SampledNodeDataModule.from_data(data, [4, 4], batch_size=20, eval_mode="sampled")
    total = sum(b.batch_size for b in sampled.loader("test"))
    assert total == int(data.test_mask.sum())
    with pytest.raises(ConfigError, match="eval_mode"):
        SampledNodeDataModule.from_data(data, [4], eval_mode="exact")
    with pytest.raises(KeyError, match="unknown split"):
        dm.loader("dev")


def test_task_scores_seeds_and_layerwise_batches(op_backend):
    from functools import partial

    from gnnlab.models import build_gnn
    from gnnlab.nn.conv import SAGEConv
    from gnnlab.nn.encoders import LinearEncoder
    from gnnlab.nn.layers import ConvLayer
    from gnnlab.train.tasks import NodeClassification

    data = random_data(seed=8)
    torch.manual_seed(0)
    model = build_gnn(layer=partial(ConvLayer, conv=SAGEConv), node_encoder=partial(LinearEncoder, in_channels=5),
                      out_channels=3, hidden_channels=8, num_layers=2).eval()
    task = NodeClassification(transductive=True)
    dm = SampledNodeDataModule.from_data(data, [3, 3], batch_size=16)
    batch = next(iter(dm.loader("train")))
    out = task.step(model, batch, "train")
    assert out.weight == batch.batch_size
    pred, target = out.outputs
    assert torch.equal(target, data.y[batch.n_id[: batch.batch_size]])
    torch.testing.assert_close(pred, model(batch)[: batch.batch_size])
    (whole,) = dm.loader("test")
    out = task.step(model, whole, "test")
    with torch.no_grad():
        full = model(data)
    torch.testing.assert_close(out.outputs[0], full[data.test_mask], rtol=1e-4, atol=1e-5)
    # A full-graph batch is scored on its mask, as before.
    pred, target = task.select(full, data, "val")
    assert pred.size(0) == int(data.val_mask.sum())


def test_sampled_link_data_module_trains_a_step(op_backend):
    from gnnlab.data import SampledLinkDataModule, ncn_random_split
    from gnnlab.data.linkpred import LinkBatch
    from gnnlab.models.link import GCNEncoder, LinkPredictionModel
    from gnnlab.nn.link import HadamardMLPPredictor
    from gnnlab.train.tasks import LinkPrediction

    g = torch.Generator().manual_seed(9)
    edge_index = torch.randint(0, 150, (2, 900), generator=g)
    split = ncn_random_split(edge_index, 150, seed=0, x=torch.randn(150, 6, generator=g))
    dm = SampledLinkDataModule(split, [3, 3], batch_size=64, seed=1, engine="gnnlab")
    assert "neighbour sampling [3, 3]" in dm.describe()
    epoch = dm.loader("train")
    batches = list(epoch)
    assert len(batches) == len(epoch) == split.train_pos.size(1) // 64  # drop_last
    for batch in batches:
        assert isinstance(batch, LinkBatch)
        assert batch.pos.shape == batch.neg.shape == (2, 64)
        assert batch.x.size(0) == batch.graph.num_nodes
        assert int(torch.cat([batch.pos, batch.neg], 1).max()) < batch.graph.num_nodes
    torch.manual_seed(0)
    model = LinkPredictionModel(HadamardMLPPredictor(8, 8), GCNEncoder(6, 8, 8))
    task = LinkPrediction(metrics=["hits@10"])
    out = task.step(model, batches[0], "train")
    out.loss.backward()
    assert torch.isfinite(out.loss) and all(p.grad is not None for p in model.encoder.parameters())
    # Evaluation is the parent's: every pair on the whole training graph.
    (val,) = dm.loader("val")
    assert val.graph is dm.graph and val.pos.size(1) == split.valid_pos.size(1)


def test_workers_give_reproducible_distinct_streams(op_backend):
    """With loader workers each draws from torch's generator, which the loader seeds from its own per worker."""
    data = random_data(seed=10)

    def epoch(seed):
        loader = node_neighbor_loader(data, [3, 3], data.train_mask, batch_size=8, shuffle=False, engine="gnnlab",
                                      generator=torch.Generator().manual_seed(seed), num_workers=2)
        return [b.e_id.clone() for b in loader]

    a, b = epoch(0), epoch(0)
    assert len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b))
    assert not all(torch.equal(x, y) for x, y in zip(a, epoch(1)))


def test_validation_and_test_share_one_whole_graph_pass_per_model_state(op_backend):
    from functools import partial

    from gnnlab.models import build_gnn
    from gnnlab.nn.conv import SAGEConv
    from gnnlab.nn.encoders import LinearEncoder
    from gnnlab.nn.layers import ConvLayer
    from gnnlab.train.tasks import NodeClassification

    data = random_data(seed=8)
    dm = SampledNodeDataModule.from_data(data, [4, 4], batch_size=20, eval_batch_size=50)
    model = build_gnn(layer=partial(ConvLayer, conv=SAGEConv), node_encoder=partial(LinearEncoder, in_channels=5),
                      out_channels=3, hidden_channels=8, num_layers=2).eval()
    calls = []
    inference = model.layerwise_inference
    model.layerwise_inference = lambda *a, **k: calls.append(1) or inference(*a, **k)
    task = NodeClassification(transductive=True)
    (val,), (test,) = dm.loader("val"), dm.loader("test")
    out_val, out_test = task.step(model, val, "val"), task.step(model, test, "test")
    assert len(calls) == 1 and out_val.weight == int(data.val_mask.sum()) and out_test.weight == int(data.test_mask.sum())
    torch.testing.assert_close(val.outputs(model), model(data))
    with torch.no_grad():  # new weights: computed again
        next(model.parameters()).add_(1.0)
    task.step(model, test, "test")
    assert len(calls) == 2
    torch.testing.assert_close(test.outputs(model), model(data))
