"""Common-neighbour kernels vs NCN's plain-torch approach, torch_sparse and scipy.

    python benchmarks/common_neighbors.py                  # BA N=235k m=5, B=32,768 pairs, F=256
    python benchmarks/common_neighbors.py --csv out.csv    # also write the table
    python benchmarks/common_neighbors.py --nodes 20000    # a smaller graph

The batch is half true edges and half random pairs, as a link-prediction batch with one negative
per positive. Compared, for the fused common-neighbour aggregate ``out[p] = Σ_{k ∈ N(i)∩N(j)} h[k]``:

- gnnlab: ``common_neighbor_aggregate`` (sets by merge/galloping, then the fused aggregation);
- NCN's approach in plain torch: gather both neighbour rows, pack (pair, node) into int64 keys,
  ``searchsorted`` one list in the other, mask, then a sparse-dense product with ``h``;
- torch_sparse (when installed): NCN's own path, ``adj[i] * adj[j]`` as ``SparseTensor``s and ``@ h``.

and, for the heuristics, gnnlab's counts / Adamic–Adar / resource allocation vs scipy's
``A[src].multiply(A[dst]).sum(1)``. Every figure is a median over --repeat runs in this process;
ratios are peer / gnnlab.
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

from _report import report as tee_report, write_csv
from _timing import median_ms

import gnnlab.ops
from gnnlab.ops import Graph, adamic_adar, common_neighbor_aggregate, common_neighbor_count, resource_allocation


def ba_graph(n: int, m: int, seed: int = 0) -> torch.Tensor:
    # networkx's generator is linear in the edges (PyG's re-concatenates per node: quadratic at 235k).
    import networkx as nx

    edges = np.asarray(nx.barabasi_albert_graph(n, m, seed=seed).edges(), dtype=np.int64)
    return torch.from_numpy(edges.T.copy())


def query_batch(graph: Graph, batch: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    ei = graph.edge_index
    true = ei[:, torch.randint(0, ei.size(1), (batch // 2,), generator=g)]
    rand = torch.randint(0, graph.num_nodes, (2, batch - batch // 2), generator=g)
    pairs = torch.cat([true, rand], dim=1)
    return pairs[0].contiguous(), pairs[1].contiguous()


def ncn_plain_torch(graph: Graph, src: torch.Tensor, dst: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """NCN's common-neighbour product with plain torch ops (see the module docstring)."""
    n, b = graph.num_nodes, src.numel()
    rowptr, col = graph.rowptr, graph.col

    def gather(nodes):
        start, deg = rowptr[nodes], rowptr[nodes + 1] - rowptr[nodes]
        pair = torch.repeat_interleave(torch.arange(b), deg)
        offset = torch.arange(pair.numel()) - torch.repeat_interleave(torch.cumsum(deg, 0) - deg, deg)
        return pair, col[start[pair] + offset]

    pa, na = gather(src)
    pb, nb = gather(dst)
    keys_a = pa * n + na  # sorted: pairs ascending, neighbours ascending within a pair
    keys_b = pb * n + nb
    pos = torch.searchsorted(keys_b, keys_a).clamp(max=max(keys_b.numel() - 1, 0))
    hit = keys_b[pos] == keys_a if keys_b.numel() else torch.zeros_like(keys_a, dtype=torch.bool)
    index = torch.stack([pa[hit], na[hit]])
    cn = torch.sparse_coo_tensor(index, torch.ones(index.size(1)), (b, n)).to_sparse_csr()
    return cn @ h


def peer_version() -> str:
    """torch_sparse's version, or that it is absent."""
    try:
        import torch_sparse
    except ImportError:
        return "not installed"
    return torch_sparse.__version__


def torch_sparse_peer(graph: Graph):
    try:
        from torch_sparse import SparseTensor
    except ImportError:
        return None
    A = SparseTensor(rowptr=graph.rowptr, col=graph.col, value=torch.ones(graph.num_edges),
                     sparse_sizes=(graph.num_nodes,) * 2)

    def run(src, dst, h):
        return (A[src] * A[dst]) @ h  # NCN's adjoverlap + spmm

    return run


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=235_000)
    parser.add_argument("--m", type=int, default=5)
    parser.add_argument("--batch", type=int, default=32_768)
    parser.add_argument("--features", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--out", default=None, help="write PREFIX.txt (what is printed) and PREFIX.csv")
    args = parser.parse_args()
    with tee_report(args.out):
        rows = run(args)
    write_csv(args.out, ["task", "impl", "median_ms", "ratio_vs_gnnlab"], rows)


def run(args) -> list:
    if not gnnlab.ops.extension_available():
        print("warning: gnnlab._C is not built; 'gnnlab' below is the plain-torch reference path")
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, ops backend {gnnlab.ops.backend()}, "
          f"torch_sparse {peer_version()}")
    graph = Graph.undirected(ba_graph(args.nodes, args.m), args.nodes)
    src, dst = query_batch(graph, args.batch)
    h = torch.randn(args.nodes, args.features)
    deg = graph.in_degree().float()
    print(f"BA graph: {args.nodes} nodes, {graph.num_edges} directed edges, max degree {int(deg.max())}; "
          f"batch {args.batch} pairs (half edges), F={args.features}")
    count = common_neighbor_count(graph, src, dst)
    print(f"common neighbours per pair: mean {count.float().mean():.2f}, max {int(count.max())}")

    ours = common_neighbor_aggregate(h, graph, src, dst)
    torch.testing.assert_close(ncn_plain_torch(graph, src, dst, h), ours, rtol=1e-4, atol=1e-4)
    rows = []

    def report(task, name, ms, base):
        ratio = ms / base
        rows.append([task, name, f"{ms:.2f}", f"{ratio:.2f}"])
        tag = "" if name.startswith("gnnlab") else f"  ×{ratio:6.2f} slower than gnnlab"
        print(f"{task:28s} {name:44s} {ms:9.2f} ms{tag}")

    task = "CN aggregate forward"
    t_ours = median_ms(lambda: common_neighbor_aggregate(h, graph, src, dst), args.repeat)
    report(task, "gnnlab common_neighbor_aggregate", t_ours, t_ours)
    report(task, "NCN approach, plain torch", median_ms(lambda: ncn_plain_torch(graph, src, dst, h), args.repeat), t_ours)
    peer = torch_sparse_peer(graph)
    if peer is not None:
        torch.testing.assert_close(peer(src, dst, h), ours, rtol=1e-4, atol=1e-4)
        report(task, "torch_sparse (NCN's own path)", median_ms(lambda: peer(src, dst, h), args.repeat), t_ours)
    else:
        print(f"{task:28s} torch_sparse not installed: skipped")

    task = "CN aggregate fwd+bwd"
    hg = h.clone().requires_grad_()

    def ours_fb():
        common_neighbor_aggregate(hg, graph, src, dst).sum().backward()

    def plain_fb():
        ncn_plain_torch(graph, src, dst, hg).sum().backward()

    t_ours = median_ms(ours_fb, args.repeat)
    report(task, "gnnlab common_neighbor_aggregate", t_ours, t_ours)
    report(task, "NCN approach, plain torch", median_ms(plain_fb, args.repeat), t_ours)
    if peer is not None:
        hg.grad = None
        ours_fb()
        expected, hg.grad = hg.grad, None
        peer(src, dst, hg).sum().backward()
        torch.testing.assert_close(hg.grad, expected, rtol=1e-4, atol=1e-3)

        def peer_fb():
            peer(src, dst, hg).sum().backward()

        report(task, "torch_sparse (NCN's own path)", median_ms(peer_fb, args.repeat), t_ours)

    import scipy.sparse as sp

    ei = graph.edge_index.flip(0).numpy()
    A = sp.csr_matrix((np.ones(ei.shape[1]), (ei[0], ei[1])), shape=(args.nodes, args.nodes))
    s_np, d_np = src.numpy(), dst.numpy()
    inv_log = np.where(deg.numpy() > 1, 1.0 / np.log(np.maximum(deg.numpy(), 2)), 0.0)
    inv = np.where(deg.numpy() > 1, 1.0 / np.maximum(deg.numpy(), 1), 0.0)

    def scipy_cn():
        return np.asarray(A[s_np].multiply(A[d_np]).sum(1)).ravel()

    def scipy_weighted(w):
        return np.asarray(A[s_np].multiply(A[d_np]) @ w).ravel()

    assert np.array_equal(scipy_cn().astype(np.int64), count.numpy())
    np.testing.assert_allclose(scipy_weighted(inv_log), adamic_adar(graph, src, dst).numpy(), rtol=1e-6)  # ours: float32
    for task, fn, peer_fn in [
        ("CN count", lambda: common_neighbor_count(graph, src, dst), scipy_cn),
        ("Adamic-Adar", lambda: adamic_adar(graph, src, dst), lambda: scipy_weighted(inv_log)),
        ("resource allocation", lambda: resource_allocation(graph, src, dst), lambda: scipy_weighted(inv)),
    ]:
        t_ours = median_ms(fn, args.repeat)
        report(task, "gnnlab", t_ours, t_ours)
        report(task, "scipy A[src].multiply(A[dst]).sum(1)", median_ms(peer_fn, args.repeat), t_ours)
    return rows


if __name__ == "__main__":
    main()
