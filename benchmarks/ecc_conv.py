"""Edge-conditioned convolution on PROTEINS batches: gnnlab's ``ECConv`` vs PyG's ``NNConv``.

    python benchmarks/ecc_conv.py [--batch-size 32] [--channels 32 64] [--repeat 3] [--out PREFIX]

Both layers hold the same parameters (``ECConv``'s state dict loads into ``NNConv`` with the same filter
network: Linear(1, 16) -> ReLU -> Linear(16, F_in * F_out), sum aggregation, root weight, bias), on the
training graphs of PROTEINS fold 0 in batches as ECC trains on them, the edge feature a scalar weight
drawn per edge. ``NNConv`` forms an ``F_in x F_out`` matrix for every edge; ``ECConv`` takes the products
of the nodes with the filter network's last layer once per node and weights them per edge. Each layer's
outputs and input gradients are checked against the other's first; then the median wall time of a
forward and of a forward + backward over all batches (one epoch of the layer) is printed with the ratio.
Needs the PROTEINS files under ``$GNNLAB_DATA_DIR`` (default ``./datasets``): copied from the offline
copy ``$GNNLAB_SHARED_DATA`` when set, otherwise downloaded.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

import torch
from torch_geometric.loader import DataLoader
from torch_geometric.nn import NNConv
from _report import report, write_csv
from _timing import median_ms

from gnnlab.data import load_tu
from gnnlab.nn.conv import ECConv
from gnnlab.ops import Graph

ROOT = Path(__file__).resolve().parents[1]


def batches(batch_size: int) -> list:
    # load_tu copies the raw files from $GNNLAB_SHARED_DATA when set, otherwise PyG downloads them
    train = load_tu(os.environ.get("GNNLAB_DATA_DIR", ROOT / "datasets"), "PROTEINS", fold=0)["train"]
    g = torch.Generator().manual_seed(0)
    out = []
    for data in DataLoader(train, batch_size=batch_size, shuffle=False):
        weight = torch.rand(data.edge_index.size(1), 1, generator=g)
        out.append((data.x.float(), data.edge_index, Graph.from_data(data), weight))
    return out


def run(args) -> list[list]:
    torch.manual_seed(0)
    data = batches(args.batch_size)
    edges = sum(b[1].size(1) for b in data)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; PROTEINS fold 0 training graphs: "
          f"{len(data)} batches of {args.batch_size}, {edges} directed edges in all")
    rows = []
    for channels in args.channels:
        ours = ECConv(channels, channels, edge_dim=1)
        peer = NNConv(channels, channels, torch.nn.Sequential(
            torch.nn.Linear(1, 16), torch.nn.ReLU(), torch.nn.Linear(16, channels * channels)), aggr="add")
        peer.load_state_dict(ours.state_dict())
        inputs = [(torch.randn(x.size(0), channels), ei, graph, w) for x, ei, graph, w in data]

        def forward_ours(x, ei, graph, w):
            return ours(x, graph, w)[0]

        def forward_peer(x, ei, graph, w):
            return peer(x, ei, w)

        worst = 0.0
        for x, ei, graph, w in inputs[:5]:
            xs = [x.clone().requires_grad_() for _ in range(2)]
            a, b = forward_ours(xs[0], ei, graph, w), forward_peer(xs[1], ei, graph, w)
            a.square().sum().backward()
            b.square().sum().backward()
            for ours_t, peer_t in ((a.detach(), b.detach()), (xs[0].grad, xs[1].grad)):
                worst = max(worst, float((ours_t - peer_t).abs().max() / peer_t.abs().max()))
        print(f"F_in = F_out = {channels}: max |difference| of outputs and input gradients, relative to the "
              f"largest |value| = {worst:.1e}")

        def epoch(forward, backward):
            def go():
                for x, ei, graph, w in inputs:
                    if backward:
                        x = x.requires_grad_()
                    out = forward(x, ei, graph, w)
                    if backward:
                        out.sum().backward()
                        x.grad = None
            return go

        for mode, backward in (("forward", False), ("forward+backward", True)):
            t_ours = median_ms(epoch(forward_ours, backward), args.repeat)
            t_peer = median_ms(epoch(forward_peer, backward), args.repeat)
            rows.append([channels, mode, f"{t_ours:.1f}", f"{t_peer:.1f}", f"{t_peer / t_ours:.2f}"])
    print(f"\n{'F':>4s} {'mode':18s} {'gnnlab ECConv ms':>17s} {'PyG NNConv ms':>14s} {'ratio':>6s}")
    for channels, mode, ours_ms, peer_ms, ratio in rows:
        print(f"{channels:>4} {mode:18s} {ours_ms:>17s} {peer_ms:>14s} {ratio:>5s}x")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--channels", type=int, nargs="+", default=[32, 64])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", default=None, help="path prefix: writes PREFIX.txt (what is printed) and PREFIX.csv")
    args = parser.parse_args()
    with report(args.out):
        rows = run(args)
    write_csv(args.out, ["channels", "mode", "gnnlab_ms", "pyg_nnconv_ms", "ratio"], rows)


if __name__ == "__main__":
    main()
