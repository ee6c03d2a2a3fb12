"""COO → CSR conversion: gnnlab's counting-sort kernel vs the plain-torch path and PyG's sort.

    python benchmarks/coo_to_csr.py [--nodes 100000] [--edges 1000000] [--repeat 10]

Prints the median time of each and the ratios against gnnlab, all measured in the same run.
"""
from __future__ import annotations

import argparse

import torch

from _timing import median_ms

import gnnlab.ops
from gnnlab.ops import _reference


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=100_000)
    parser.add_argument("--edges", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    g = torch.Generator().manual_seed(0)
    edge_index = torch.randint(0, args.nodes, (2, args.edges), generator=g)
    print(f"random graph: N={args.nodes:,} E={args.edges:,}, torch threads={torch.get_num_threads()}")

    rows = []
    if gnnlab.ops.extension_available():
        rows.append(("gnnlab extension (counting sort)", lambda: torch.ops.gnnlab.coo_to_csr(edge_index, args.nodes)))
    rows.append(("plain torch (stable sort + bincount)", lambda: _reference.coo_to_csr(edge_index, args.nodes)))
    try:
        from torch_geometric.utils import index_sort

        rows.append(("PyG index_sort (unstable) + bincount",
                     lambda: (index_sort(edge_index[0], max_value=args.nodes),
                              torch.bincount(edge_index[0], minlength=args.nodes).cumsum(0))))
    except ImportError:
        pass
    results = [(name, median_ms(fn, args.repeat)) for name, fn in rows]
    base = results[0][1]
    print(f"{'path':42s} {'median ms':>10s} {'× gnnlab':>10s}")
    for name, ms in results:
        print(f"{name:42s} {ms:10.2f} {ms / base:10.2f}")


if __name__ == "__main__":
    main()
