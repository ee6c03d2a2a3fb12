"""One training epoch of GatedGCN on generated CLUSTER: the fused gating against gnnlab's unfused paths and PyG.

    python benchmarks/gated_gcn_epoch.py [--graphs 500] [--batch-size 32] [--repeat 3] [--out PREFIX]

Rows, all on the same data and batches in this process, alternating round by round:

- ``reference``: gnnlab's GatedGCN with every op on the plain-torch path (``backend_scope("torch")``);
- ``unfused``: the compiled gathers and CSR reductions, the gates formed as ``[E, F]`` tensors (the
  layer before :func:`gnnlab.ops.gated_aggregate`);
- ``fused``: the layer as it is, :func:`gnnlab.ops.gated_aggregate` (gates never stored);
- ``free_gating``: the layer with the gating replaced by a stand-in of the same shapes and gradient paths
  that costs next to nothing (``free_gated_aggregate``); every other op of the epoch, forward and backward,
  is unchanged, so ``unfused / free_gating`` bounds what any gating kernel can gain on the epoch;
- ``pyg``: a model of PyG's ``ResGatedGraphConv`` (sum of ``σ(K h_i + Q h_j) ⊙ V h_j`` plus a root
  weight) in the same residual / batch-norm / ReLU block, same width and depth. It has no edge
  features and no gate normalisation, so it does less work per layer than GatedGCN;
- ``pyg_edge``: the same with ``edge_dim``: K, Q and V read ``[h, e_ij]`` per edge (three ``[E, 2F]``
  linear maps; the edge features are embedded once and not updated).

Prints the median seconds per epoch of each and the ratios to ``fused``, then the gating alone
(forward + backward of ``unfused_gated_aggregate`` against :func:`gnnlab.ops.gated_aggregate`) on the
first batch, where the ``[E, F]`` tensors are the whole cost.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
from functools import partial

import torch
import torch.nn.functional as F
from _report import report, write_csv
from _timing import median_ms, train_epoch_seconds

import gnnlab.nn.conv.gated_gcn as gated_gcn
import gnnlab.ops
from gnnlab.data import DataModule, load_sbm
from gnnlab.models import build_gnn
from gnnlab.nn.conv import GatedGCNConv
from gnnlab.nn.encoders import EmbeddingEncoder
from gnnlab.ops import Graph, gather_dst, gather_src, reduce_messages


def unfused_gated_aggregate(edge_in, x_dst, x_src, values, graph):
    """The gating as ``[E, F]`` tensors: gathers, sigmoid, product, one CSR reduction of numerator and denominator."""
    e_hat = edge_in + gather_dst(x_dst, graph) + gather_src(x_src, graph)
    gate = torch.sigmoid(e_hat)
    sums = reduce_messages(torch.stack([gate * gather_src(values, graph), gate], dim=1), graph)
    return e_hat, sums[:, 0], sums[:, 1]


def free_gated_aggregate(edge_in, x_dst, x_src, values, graph):
    """The gating's outputs at next to no cost, with the gradient paths of the real op, so every backward of
    the layer runs as it does there: ``e_hat = edge_in``; numerator ``values + x_dst + x_src`` plus the mean
    edge input (the node outputs depend on the edge stream, as through the gates: without it the edge maps and
    batch norms would get no gradient), denominator ones; ``[N, F]`` each (these graphs have as many sources
    as targets). Its cost: two ``[E, F]`` passes (the mean and its gradient) and a few ``[N, F]`` ones."""
    weighted = values + x_dst + x_src + edge_in.mean(0)
    return edge_in, weighted, torch.ones_like(weighted)


class PyGResGated(torch.nn.Module):
    """Embedding, ``layers`` blocks ``h + ReLU(BN(ResGatedGraphConv(h[, e])))``, linear readout."""

    def __init__(self, num_tokens: int, dim: int, layers: int, num_classes: int, edge_features: bool = False):
        super().__init__()
        from torch_geometric.nn import ResGatedGraphConv

        self.embed = torch.nn.Embedding(num_tokens, dim)
        self.embed_edge = torch.nn.Embedding(1, dim) if edge_features else None
        edge_dim = dim if edge_features else None
        self.convs = torch.nn.ModuleList(ResGatedGraphConv(dim, dim, edge_dim=edge_dim) for _ in range(layers))
        self.norms = torch.nn.ModuleList(torch.nn.BatchNorm1d(dim) for _ in range(layers))
        self.head = torch.nn.Linear(dim, num_classes)

    def forward(self, data):
        h = self.embed(data.x.view(-1).long())
        e = self.embed_edge(data.edge_attr.view(-1).long()) if self.embed_edge is not None else None
        for conv, norm in zip(self.convs, self.norms):
            h = h + F.relu(norm(conv(h, data.edge_index, e)))
        return self.head(h)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--graphs", type=int, default=500)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=3, help="rounds; each round times every row once")
    parser.add_argument("--root", default=None, help="data root (default: a temporary folder)")
    parser.add_argument("--out", default=None, help="path prefix: also writes PREFIX.txt and PREFIX.csv")
    args = parser.parse_args()
    with report(args.out):
        run(args)


def run(args) -> None:
    """Time one epoch of every row, round by round, and print the medians and their ratios to ``fused``."""
    if not gnnlab.ops.extension_available():
        raise SystemExit(f"gnnlab._C is not built ({gnnlab.ops.extension_error()}): nothing fused to compare")
    root = args.root or tempfile.mkdtemp()
    splits = load_sbm(root, "CLUSTER", num_train=args.graphs, num_val=1, num_test=1, progress=False)
    loader = DataModule(splits, batch_size=args.batch_size).loader("train")
    edges = sum(g.num_edges for g in splits["train"]) / len(splits["train"])
    print(f"CLUSTER (generated): {args.graphs} training graphs, {edges:.0f} directed edges per graph, batch "
          f"{args.batch_size}; 4 layers of width 70; {torch.get_num_threads()} threads")

    def gnnlab_model():
        torch.manual_seed(0)
        return build_gnn(layer=GatedGCNConv, node_encoder=partial(EmbeddingEncoder, 7),
                         edge_encoder=partial(EmbeddingEncoder, 1), out_channels=6, hidden_channels=70, num_layers=4)

    fused_op = gated_gcn.gated_aggregate
    rows = {  # name: (model, op path, gating function of the layer)
        "reference": (gnnlab_model(), "torch", fused_op),
        "unfused": (gnnlab_model(), "extension", unfused_gated_aggregate),
        "fused": (gnnlab_model(), "extension", fused_op),
        "free_gating": (gnnlab_model(), "extension", free_gated_aggregate),
        "pyg": (PyGResGated(7, 70, 4, 6), "extension", fused_op),
        "pyg_edge": (PyGResGated(7, 70, 4, 6, edge_features=True), "extension", fused_op),
    }
    optimizers = {name: torch.optim.Adam(model.parameters(), lr=1e-3) for name, (model, _, _) in rows.items()}
    times: dict[str, list[float]] = {name: [] for name in rows}
    try:
        for round_ in range(args.repeat + 1):  # round 0 warms up
            for name, (model, path, gating) in rows.items():
                gated_gcn.gated_aggregate = gating
                with gnnlab.ops.backend_scope(path):
                    seconds = train_epoch_seconds(model, loader, optimizers[name], F.cross_entropy)
                if round_ > 0:
                    times[name].append(seconds)
    finally:
        gated_gcn.gated_aggregate = fused_op
    medians = {name: statistics.median(t) for name, t in times.items()}
    table = []
    for name, median in medians.items():
        ratio = median / medians["fused"]
        print(f"{name:10s} {median:8.2f} s / epoch   {ratio:5.2f}x the fused epoch   (rounds: "
              + ", ".join(f"{t:.2f}" for t in times[name]) + ")")
        table.append([name, f"{median:.3f}", f"{ratio:.3f}"])
    bound = medians["unfused"] / medians["free_gating"]
    print(f"any gating kernel: the unfused epoch at most {bound:.2f}x faster (unfused / free_gating; the fused "
          f"gating gives {medians['unfused'] / medians['fused']:.2f}x)")
    table += gating_alone(next(iter(loader)), args.repeat)
    write_csv(args.out, ["row", "seconds_per_epoch", "ratio_to_fused"], table)


def gating_alone(batch, repeat: int) -> list[list[str]]:
    """Forward + backward of the gating on one batch (width 70, random inputs), both on the compiled ops."""
    graph = Graph.from_data(batch)
    g = torch.Generator().manual_seed(0)
    shapes = [(graph.num_edges, 70)] + [(graph.num_nodes, 70)] * 3
    inputs = [torch.randn(*shape, generator=g).requires_grad_() for shape in shapes]

    def step(fn):
        outs = fn(*inputs, graph)
        torch.autograd.backward(outs, [torch.ones_like(o) for o in outs])

    rows, times = [], {}
    with gnnlab.ops.backend_scope("extension"):
        for name, fn in (("unfused", unfused_gated_aggregate), ("fused", gated_gcn.gated_aggregate)):
            times[name] = median_ms(lambda: step(fn), max(repeat, 5) * 4)
    print(f"gating alone, forward + backward, one batch ({graph.num_nodes} nodes, {graph.num_edges} edges, width 70):")
    for name, ms in times.items():
        print(f"  {name:8s} {ms:8.2f} ms   {ms / times['fused']:5.2f}x the fused op")
        rows.append([f"gating_{name}", f"{ms / 1e3:.4f}", f"{ms / times['fused']:.3f}"])
    return rows


if __name__ == "__main__":
    main()
