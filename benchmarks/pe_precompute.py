"""LapPE and RWSE precompute on one large graph: gnnlab's sparse paths vs dense per-graph computation.

    python benchmarks/pe_precompute.py [--nodes 10000] [--m 5] [--lap-k 16] [--rw-k 20] [--out PREFIX]

The graph is a Barabási–Albert graph (networkx, seed 0; ``--m`` edges per new node). Timed, in this
process, each once (these take seconds to minutes; the dense ones dominate):

- LapPE, k smallest non-trivial eigenpairs of ``I - D^-1/2 A D^-1/2``:
  gnnlab (:func:`gnnlab.transforms.laplacian_eigenpairs`, sparse ``eigsh`` above ``dense_max_nodes``),
  dense (``numpy.linalg.eigh`` on the dense Laplacian, as per-graph LapPE code does), and PyG's
  ``AddLaplacianEigenvectorPE`` (``eigsh`` with ``which='SA'``).
- RWSE, diagonals of ``P^1..P^k``: gnnlab (:func:`gnnlab.transforms.random_walk_diagonals`, blocked
  sparse products) and dense (``P`` as a dense float64 matrix, ``k`` dense products, read the diagonal).

Results are checked against each other (eigenvalues, RWSE values) before the times are printed.
"""
from __future__ import annotations

import argparse
import time

import networkx as nx
import numpy as np
import torch
from torch_geometric.data import Data
from _report import report, write_csv
from torch_geometric.transforms import AddLaplacianEigenvectorPE

from gnnlab.transforms import laplacian_eigenpairs, random_walk_diagonals


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def dense_laplacian(edge_index: torch.Tensor, n: int) -> np.ndarray:
    a = np.zeros((n, n))
    a[edge_index[0].numpy(), edge_index[1].numpy()] = 1.0
    deg = a.sum(1)
    inv = np.where(deg > 0, deg ** -0.5, 0.0)
    return np.eye(n) - inv[:, None] * a * inv[None, :]


def dense_lappe(edge_index: torch.Tensor, n: int, k: int) -> np.ndarray:
    lam, _ = np.linalg.eigh(dense_laplacian(edge_index, n))
    return lam[1 : k + 1]  # connected graph: one trivial pair


def dense_rwse(edge_index: torch.Tensor, n: int, k: int) -> np.ndarray:
    a = torch.zeros(n, n, dtype=torch.float64)
    a[edge_index[0], edge_index[1]] = 1.0
    p = a / a.sum(1, keepdim=True).clamp(min=1)
    out, pk = [], p
    for step in range(k):
        out.append(torch.diagonal(pk).clone())
        if step < k - 1:
            pk = pk @ p
    return torch.stack(out, 1).numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=10000)
    parser.add_argument("--m", type=int, default=5)
    parser.add_argument("--lap-k", type=int, default=16)
    parser.add_argument("--rw-k", type=int, default=20)
    parser.add_argument("--skip-dense", action="store_true", help="time only the sparse paths")
    parser.add_argument("--out", default=None, help="path prefix: writes PREFIX.txt (what is printed) and PREFIX.csv")
    args = parser.parse_args()
    with report(args.out):
        rows, edges = run(args)
    k = {"LapPE": args.lap_k, "RWSE": args.rw_k}
    write_csv(args.out, ["encoding", "implementation", "seconds", "ratio_vs_gnnlab", "nodes", "edges", "k"],
              [[kind, name, f"{sec:.3f}", f"{ratio:.2f}", args.nodes, edges, k[kind]]
               for kind, name, sec, ratio in rows])


def run(args) -> tuple[list[tuple], int]:
    """Time every implementation and print the table; return (encoding, name, seconds, ratio) rows and edge count."""
    g = nx.barabasi_albert_graph(args.nodes, args.m, seed=0)
    edges = torch.tensor(list(g.edges()), dtype=torch.long).t()
    edge_index = torch.cat([edges, edges.flip(0)], 1)
    n = args.nodes
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; BA graph: {n} nodes, "
          f"{edge_index.size(1)} directed edges; LapPE k={args.lap_k}, RWSE k={args.rw_k}")
    rows = []

    (val, _vec), t_lap = timed(lambda: laplacian_eigenpairs(edge_index, n, args.lap_k))
    rows.append(("LapPE", "gnnlab (sparse eigsh)", t_lap))
    pyg = AddLaplacianEigenvectorPE(args.lap_k, attr_name="pe", is_undirected=True)
    _, t_pyg = timed(lambda: pyg(Data(edge_index=edge_index, num_nodes=n)))
    rows.append(("LapPE", "PyG AddLaplacianEigenvectorPE", t_pyg))
    (rw, t_rw) = timed(lambda: random_walk_diagonals(edge_index, n, args.rw_k))
    rows.append(("RWSE", "gnnlab (blocked sparse)", t_rw))
    if not args.skip_dense:
        lam_dense, t = timed(lambda: dense_lappe(edge_index, n, args.lap_k))
        err = float(np.abs(lam_dense - val[0].numpy() if val.dim() == 2 else lam_dense - val.numpy()).max())
        print(f"LapPE: max |eigenvalue difference| gnnlab vs dense = {err:.2e}")
        rows.append(("LapPE", "dense numpy.linalg.eigh", t))
        rw_dense, t = timed(lambda: dense_rwse(edge_index, n, args.rw_k))
        print(f"RWSE: max |difference| gnnlab vs dense = {float(np.abs(rw_dense - rw.numpy()).max()):.2e}")
        rows.append(("RWSE", "dense P^k (float64 matmul)", t))
    print(f"\n{'encoding':8s} {'implementation':34s} {'seconds':>9s} {'vs gnnlab':>10s}")
    base = {kind: sec for kind, name, sec in rows if name.startswith("gnnlab")}
    for kind, name, sec in rows:
        print(f"{kind:8s} {name:34s} {sec:9.2f} {sec / base[kind]:9.1f}x")
    return [(kind, name, sec, sec / base[kind]) for kind, name, sec in rows], edge_index.size(1)


if __name__ == "__main__":
    main()
