"""One training epoch of GatedGCN on generated CLUSTER: fused ops (extension) vs the reference path.

    python benchmarks/gated_gcn_epoch.py [--graphs 500] [--batch-size 32] [--repeat 3] [--out PREFIX]

Both paths run the same model, data and batches in this process; the ratio is reference / fused.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
from functools import partial

import torch
import torch.nn.functional as F
from _report import report
from _timing import train_epoch_seconds

import gnnlab.ops
from gnnlab.data import DataModule, load_sbm
from gnnlab.models import build_gnn
from gnnlab.nn.conv import GatedGCNConv
from gnnlab.nn.encoders import EmbeddingEncoder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--graphs", type=int, default=500)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--root", default=None, help="data root (default: a temporary folder)")
    parser.add_argument("--out", default=None, help="path prefix: also writes what is printed to PREFIX.txt")
    args = parser.parse_args()
    with report(args.out):
        run(args)


def run(args) -> None:
    """Time one epoch on each ops backend and print the times and their ratio."""
    root = args.root or tempfile.mkdtemp()
    splits = load_sbm(root, "CLUSTER", num_train=args.graphs, num_val=1, num_test=1, progress=False)
    backends = ["torch"] + (["extension"] if gnnlab.ops.extension_available() else [])
    results = {}
    for backend in backends:
        torch.manual_seed(0)
        model = build_gnn(layer=GatedGCNConv, node_encoder=partial(EmbeddingEncoder, 7),
                          edge_encoder=partial(EmbeddingEncoder, 1), out_channels=6, hidden_channels=70, num_layers=4)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        loader = DataModule(splits, batch_size=args.batch_size).loader("train")
        with gnnlab.ops.backend_scope(backend):
            train_epoch_seconds(model, loader, optimizer, F.cross_entropy)  # warm-up
            results[backend] = statistics.median(train_epoch_seconds(model, loader, optimizer, F.cross_entropy) for _ in range(args.repeat))
        print(f"{backend:10s} {results[backend]:8.2f} s / epoch ({args.graphs} graphs, batch {args.batch_size})")
    if len(results) == 2:
        print(f"reference / fused = {results['torch'] / results['extension']:.2f}x")


if __name__ == "__main__":
    main()
