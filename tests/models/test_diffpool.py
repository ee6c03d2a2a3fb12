"""DiffPool (Ying et al.): batching and padding, invariance, its auxiliary loss, and the task adding it."""
from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close
from torch_geometric.data import Batch, Data
from torch_geometric.nn import dense_diff_pool
from torch_geometric.utils import to_dense_adj, to_dense_batch

from gnnlab.models import DenseSAGEStack, DiffPool, WithAuxLoss
from gnnlab.train.tasks import GraphClassification

SIZES = (7, 3, 12, 5)


def _graph(n: int, g: torch.Generator) -> Data:
    upper = torch.triu(torch.rand(n, n, generator=g) < 0.4, diagonal=1)
    src, dst = upper.nonzero().t()
    return Data(x=torch.randn(n, 3, generator=g, dtype=torch.float64),
                edge_index=torch.cat([torch.stack([src, dst]), torch.stack([dst, src])], 1))


def _batch(seed: int = 0, sizes=SIZES) -> Batch:
    g = torch.Generator().manual_seed(seed)
    data = Batch.from_data_list([_graph(n, g) for n in sizes])
    data.y = torch.tensor([0, 1, 1, 0][: len(sizes)])
    return data


def _model(levels: int = 2, seed: int = 0) -> DiffPool:
    torch.manual_seed(seed)
    model = DiffPool(3, 2, max_num_nodes=12, num_levels=levels, hidden_channels=8, embedding_channels=6,
                     mlp_channels=5).double()
    for m in model.modules():  # non-trivial batch-norm statistics and affine parameters
        if isinstance(m, torch.nn.BatchNorm1d):
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.normal_()
            m.bias.data.normal_()
    return model.eval()


@pytest.mark.parametrize("levels", [1, 2])
def test_a_batch_is_its_graphs_one_by_one(levels):
    """Padding to the largest graph changes nothing: each graph of a batch scores as it does alone."""
    model, batch = _model(levels), _batch()
    out = model(batch)
    assert isinstance(out, WithAuxLoss) and out.out.shape == (len(SIZES), 2)
    assert model.clusters == ([2] if levels == 1 else [3, 1])  # ceil(0.1 * 12) / ceil(0.25 * 12), ceil(3 * 0.25)
    alone = torch.cat([model(Batch.from_data_list([g])).out for g in batch.to_data_list()])
    assert_close(out.out, alone)


def test_node_order_does_not_matter():
    model, batch = _model(), _batch(1)
    perm = torch.cat([torch.randperm(n) + off for n, off in zip(SIZES, batch.ptr[:-1].tolist())])
    inverse = torch.empty_like(perm)
    inverse[perm] = torch.arange(perm.numel())
    shuffled = batch.clone()
    shuffled.x, shuffled.edge_index = batch.x[perm], inverse[batch.edge_index]
    assert_close(model(shuffled).out, model(batch).out)
    assert_close(model(shuffled).aux_loss, model(batch).aux_loss)


def test_aux_loss_is_the_link_and_entropy_terms_of_one_level():
    """One graph, one level: ||A - S S^T||_F / n^2 and the mean entropy of the rows of S, by hand."""
    model, batch = _model(levels=1, seed=3), _batch(2, sizes=(9,))
    adj = torch.zeros(9, 9, dtype=torch.float64)
    adj[batch.edge_index[0], batch.edge_index[1]] = 1.0
    s = torch.softmax(model.pools[0](batch.x.unsqueeze(0), adj.unsqueeze(0)), dim=-1)[0]
    link = torch.linalg.norm(adj - s @ s.T) / adj.numel()
    entropy = (-s * torch.log(s + 1e-15)).sum(-1).mean()
    assert_close(model(batch).aux_loss, link + entropy)


def _dense_reference(model: DiffPool, data) -> tuple[torch.Tensor, torch.Tensor]:
    """DiffPool as the authors run it: every level on the dense batch padded to its largest graph."""
    x, mask = to_dense_batch(data.x, data.batch, batch_size=data.num_graphs)
    adj = to_dense_adj(data.edge_index, data.batch, batch_size=data.num_graphs, max_num_nodes=x.size(1)).to(x.dtype)
    reads, aux = [], 0.0
    for pool, embed in zip(model.pools, model.embeds):
        x, adj, link, entropy = dense_diff_pool(embed(x, adj, mask), adj, pool(x, adj, mask), mask)
        mask = None
        reads.append(x.amax(dim=1))
        aux = aux + link + entropy
    reads.append(model.final(x, adj).amax(dim=1))
    return model.lin2(torch.relu(model.lin1(torch.cat(reads, dim=-1)))), aux


@pytest.mark.parametrize("training", [False, True])
def test_the_sparse_first_level_equals_the_dense_batch(training):
    """The first level runs on the sparse graphs; outputs, aux loss and every gradient equal the all-dense
    model's, with a one-way edge (the dense adjacency's rows are the edges' sources), a repeated edge (counted
    twice, as ``to_dense_adj`` sums it) and an isolated node."""
    batch = _batch(6)
    assert not (batch.edge_index == torch.tensor([[0], [5]])).all(0).any()
    extra = torch.cat([torch.tensor([[0], [5]]), batch.edge_index[:, :2]], 1)  # 0 -> 5 one way; two edges repeated
    batch.edge_index = torch.cat([batch.edge_index, extra], 1)
    batch.x = torch.cat([batch.x, torch.randn(1, 3, dtype=torch.float64)])  # node 27: no edges, in graph 3
    batch.batch = torch.cat([batch.batch, torch.tensor([3])])
    batch.ptr[-1] += 1
    model = _model(seed=2).train(training)
    results = []
    for forward in (lambda d: tuple(model(d)), lambda d: _dense_reference(model, d)):
        x = batch.x.clone().requires_grad_()
        data = batch.clone()
        data.x = x
        out, aux = forward(data)
        (out.square().sum() + 3 * aux).backward()
        results.append((out.detach(), aux.detach(), x.grad, [p.grad for p in model.parameters()]))
        model.zero_grad(set_to_none=True)
    (out, aux, gx, gp), (ref_out, ref_aux, ref_gx, ref_gp) = results
    assert_close(out, ref_out)
    assert_close(aux, ref_aux)
    assert_close(gx, ref_gx)
    for g, ref in zip(gp, ref_gp):
        assert_close(g, ref)


def test_masked_batch_norm_reads_real_nodes_only():
    torch.manual_seed(0)
    stack = DenseSAGEStack(3, 4, 2).double().train()
    g = torch.Generator().manual_seed(4)
    x = torch.randn(2, 5, 3, generator=g, dtype=torch.float64)
    adj = (torch.rand(2, 5, 5, generator=g) < 0.5).double()
    mask = torch.tensor([[True] * 5, [True, True, False, False, False]])
    adj[1, 2:, :], adj[1, :, 2:] = 0.0, 0.0  # as to_dense_adj pads
    padded = stack(x, adj, mask)
    # Three more padding rows per graph (a larger graph elsewhere in the batch): the same real-node outputs,
    # which zero rows in the batch-norm statistics would shift.
    wider = stack(torch.nn.functional.pad(x, (0, 0, 0, 3)), torch.nn.functional.pad(adj, (0, 3, 0, 3)),
                  torch.nn.functional.pad(mask, (0, 3)))
    assert_close(wider[:, :5][mask], padded[mask])
    assert stack.out_channels == 2 * 4 + 2


def test_the_task_adds_the_aux_loss_and_training_runs():
    model, batch = _model(), _batch(5)
    task = GraphClassification()
    out = task.step(model, batch, "train")
    plain = torch.nn.functional.cross_entropy(model(batch).out, batch.y)
    assert_close(out.loss, plain + model(batch).aux_loss)
    model.train()
    loss = task.step(model, batch, "train").loss
    loss.backward()
    assert all(p.grad is not None and bool(torch.isfinite(p.grad).all()) for p in model.parameters())


def test_bad_input():
    with pytest.raises(ValueError, match="coarsening"):
        DiffPool(3, 2, 10, coarsening=1.5)
    with pytest.raises(ValueError, match=r"float \[N, 3\]"):
        _model()(Data(x=torch.zeros(4, 2), edge_index=torch.zeros(2, 0, dtype=torch.long)))
