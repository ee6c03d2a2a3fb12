"""Fused aggregation vs PyG's default path, torch.sparse.mm (CSR), torch_scatter and torch_sparse.

    python benchmarks/aggregate.py                 # all shapes, sum/mean/max, forward and forward+backward
    python benchmarks/aggregate.py --quick         # one shape
    python benchmarks/aggregate.py --out results/aggregate_cpu   # also write results/aggregate_cpu.{txt,csv}

Graphs: uniform random with edges sorted by destination (the shapes below) and a Barabási–Albert
power-law graph. The "floor" is the time to stream the bytes the op must touch at the copy
bandwidth measured in this run: perfect reuse (each feature row read once) and no reuse (one
feature row per edge). The forward reads x and the edge indices and writes out. The backward of
sum/mean is the same aggregation over the transposed graph (grad_out in, grad_x out). Max/min
also move the recorded winners (arg, int32 [N, F]): written by the forward, read by the backward.
The fwd+bwd floor is the sum of the two, and its line also gives the backward alone (fwd+bwd
minus fwd) against the backward's floor.
Every figure is a median over --repeat runs measured in this process; ratios are peer / gnnlab.
"""
from __future__ import annotations

import argparse

import torch

from _report import report, write_csv
from _timing import median_ms

import gnnlab.ops
from gnnlab.ops import Graph, aggregate

SHAPES = [(100_000, 1_000_000, 64), (100_000, 2_000_000, 128), (20_000, 200_000, 64)]


def copy_bandwidth_gbs(repeat=5) -> float:
    """Bytes read + written per second by a large tensor copy."""
    a = torch.empty(64 * 2**20 // 4)
    a.normal_()
    b = torch.empty_like(a)
    ms = median_ms(lambda: b.copy_(a), repeat)
    return 2 * a.numel() * 4 / (ms / 1e3) / 1e9


def random_graph(n, e, seed=0):
    g = torch.Generator().manual_seed(seed)
    ei = torch.randint(0, n, (2, e), generator=g)
    return ei[:, torch.argsort(ei[1], stable=True)]


def ba_graph(n, m, seed=0):
    from torch_geometric.utils import barabasi_albert_graph

    torch.manual_seed(seed)
    ei = barabasi_albert_graph(n, m)
    return ei[:, torch.argsort(ei[1], stable=True)]


def peers(edge_index, n, x, reduce):
    """name -> callable(x) computing the same aggregation (sources edge_index[0] into targets edge_index[1])."""
    from torch_geometric.utils import scatter

    src, dst = edge_index
    out = {"PyG default (index_select + scatter)": lambda x: scatter(x.index_select(0, src), dst, 0, n, reduce=reduce)}
    if reduce in ("sum", "mean"):
        vals = torch.ones(edge_index.size(1))
        if reduce == "mean":
            vals = vals / torch.bincount(dst, minlength=n).clamp(min=1)[dst].float()
        adj = torch.sparse_coo_tensor(torch.stack([dst, src]), vals, (n, n)).coalesce().to_sparse_csr()
        out["torch.sparse.mm (CSR)"] = lambda x: torch.sparse.mm(adj, x)
    try:
        import torch_scatter

        out["torch_scatter"] = lambda x: torch_scatter.scatter(x.index_select(0, src), dst, 0, dim_size=n, reduce=reduce)
    except ImportError:
        pass
    try:
        from torch_sparse import SparseTensor

        adj_t = SparseTensor(row=dst, col=src, sparse_sizes=(n, n))
        out["torch_sparse matmul"] = lambda x: adj_t.matmul(x, reduce=reduce)
    except ImportError:
        pass
    return out


def floor_bytes(n, e, feat, reduce, backward) -> tuple[int, int]:
    """(perfect reuse, no reuse) bytes of the forward, or of forward + backward."""
    rows, indices, per_edge = n * feat * 4, e * 8, e * feat * 4
    winners = rows if reduce in ("max", "min") else 0  # arg: written by the forward, read by the backward
    reuse, noreuse = 2 * rows + indices + winners, per_edge + rows + indices + winners
    passes = 2 if backward else 1
    return passes * reuse, passes * noreuse


def run_case(label, edge_index, n, feat, reduce, backward, repeat, bandwidth, rows, forward_ms=None) -> float:
    """Time gnnlab and the peers on one case, print and append the rows; return gnnlab's median."""
    x = torch.randn(n, feat, requires_grad=backward)
    graph = Graph.from_edge_index(edge_index, n)
    grad = torch.randn(n, feat)

    def timed(f):
        if backward:
            def step():
                x.grad = None
                f(x).backward(grad)
            return step
        return lambda: f(x.detach())

    ours = median_ms(timed(lambda x: aggregate(x, graph, reduce=reduce)), repeat)
    e = edge_index.size(1)
    to_ms = lambda b: b / (bandwidth * 1e9) * 1e3
    floor_lo, floor_hi = (to_ms(b) for b in floor_bytes(n, e, feat, reduce, backward))
    mode = "fwd+bwd" if backward else "fwd"
    rows.append([label, reduce, mode, "gnnlab", f"{ours:.2f}", "1.00", f"{floor_lo:.2f}", f"{floor_hi:.2f}"])
    print(f"{label:24s} {reduce:4s} {mode:7s} {'gnnlab':38s} {ours:9.2f} ms {'':>8s}  floor {floor_lo:.1f}–{floor_hi:.1f} ms"
          f"  (×{ours / floor_hi:.1f} of no-reuse floor)")
    if backward and forward_ms is not None:
        bwd_floor = floor_hi - to_ms(floor_bytes(n, e, feat, reduce, False)[1])
        print(f"{'':24s} {'':4s} {'bwd':7s} {'gnnlab (fwd+bwd minus fwd)':38s} {ours - forward_ms:9.2f} ms {'':>8s}  "
              f"floor {bwd_floor:.1f} ms  (×{(ours - forward_ms) / bwd_floor:.1f} of no-reuse floor)")
    for name, fn in peers(edge_index, n, x, reduce).items():
        ms = median_ms(timed(fn), repeat)
        rows.append([label, reduce, mode, name, f"{ms:.2f}", f"{ms / ours:.2f}", "", ""])
        print(f"{'':24s} {'':4s} {'':7s} {name:38s} {ms:9.2f} ms  ×{ms / ours:5.2f} slower than gnnlab")
    return ours


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default=None, help="path prefix: writes PREFIX.txt (what is printed) and PREFIX.csv")
    parser.add_argument("--reduce", nargs="*", default=["sum", "mean", "max"])
    args = parser.parse_args()
    with report(args.out):
        rows = run(args)
    write_csv(args.out, ["graph", "reduce", "mode", "impl", "median_ms", "ratio_vs_gnnlab", "floor_reuse_ms",
                         "floor_noreuse_ms"], rows)


def run(args) -> list[list]:
    """Time every case, printing a line per implementation; return the CSV rows."""
    if not gnnlab.ops.extension_available():
        print("warning: gnnlab._C is not built; 'gnnlab' below is the plain-torch reference path")
    bandwidth = copy_bandwidth_gbs()
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, ops backend {gnnlab.ops.backend()}, "
          f"copy bandwidth {bandwidth:.1f} GB/s")
    cases = [(f"random {n // 1000}k/{e / 1e6:g}M/{f}", random_graph(n, e), n, f) for n, e, f in SHAPES]
    if args.quick:
        cases = cases[:1]
    else:
        cases.append(("BA 100k m=10 /64", ba_graph(100_000, 10), 100_000, 64))
    rows = []
    for label, ei, n, feat in cases:
        for reduce in args.reduce:
            forward_ms = run_case(label, ei, n, feat, reduce, False, args.repeat, bandwidth, rows)
            run_case(label, ei, n, feat, reduce, True, args.repeat, bandwidth, rows, forward_ms)
    return rows


if __name__ == "__main__":
    main()
