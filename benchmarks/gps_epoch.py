"""A GPS (GatedGCN + Transformer) training epoch on generated PATTERN: gnnlab vs PyG's ``GPSConv``.

    python benchmarks/gps_epoch.py [--graphs 320] [--layers 6] [--dim 64] [--heads 4] [--repeat 3] [--out PREFIX]

Both models are built in this process with the same sizes (GraphGPS's PATTERN row: 6 layers x 64,
4 heads, batch 32, attention dropout 0.5), the same embeddings and readout, and train on the same
batches; the epoch is ``--graphs`` PATTERN graphs at the published size distribution.

- gnnlab: :func:`gnnlab.nn.layers.gps_layer` with :class:`~gnnlab.nn.conv.GatedGCNConv` (fused
  gate/message reduction, edge features updated) and
  :class:`~gnnlab.nn.mixer.MultiheadAttentionMixer` (dense batching +
  ``scaled_dot_product_attention``), once with the compiled ops and once with the plain-torch
  reference ops.
- PyG: ``torch_geometric.nn.GPSConv`` with ``ResGatedGraphConv(edge_dim=dim)`` (PyG's gated
  graph conv; it reads the edge features but does not update them, so it does *less* work than
  GatedGCN) and ``attn_type='multihead'`` (``torch.nn.MultiheadAttention``).

Prints parameters, median seconds per epoch, and the ratio PyG / gnnlab.
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
from torch_geometric.nn import GPSConv, ResGatedGraphConv

import gnnlab.ops
from gnnlab.data import DataModule, load_sbm
from gnnlab.models import build_gnn
from gnnlab.models import MLPReadout
from gnnlab.nn.conv import GatedGCNConv
from gnnlab.nn.encoders import EmbeddingEncoder
from gnnlab.nn.layers import gps_layer
from gnnlab.nn.mixer import MultiheadAttentionMixer


class PyGGPS(torch.nn.Module):
    """The same network from PyG parts: embeddings → GPSConv × L → MLP readout."""

    def __init__(self, dim: int, layers: int, heads: int, attn_dropout: float, num_tokens: int, num_classes: int):
        super().__init__()
        self.node_emb = torch.nn.Embedding(num_tokens, dim)
        self.edge_emb = torch.nn.Embedding(1, dim)
        self.convs = torch.nn.ModuleList(
            GPSConv(dim, ResGatedGraphConv(dim, dim, edge_dim=dim), heads=heads, norm="batch_norm",
                    attn_type="multihead", attn_kwargs={"dropout": attn_dropout})
            for _ in range(layers)
        )
        self.head = MLPReadout(dim, num_classes)

    def forward(self, data):
        h = self.node_emb(data.x.view(-1))
        e = self.edge_emb(data.edge_index.new_zeros(data.edge_index.size(1)))
        for conv in self.convs:
            h = conv(h, data.edge_index, data.batch, edge_attr=e)
        return self.head(h)


def gnnlab_gps(dim: int, layers: int, heads: int, attn_dropout: float, num_tokens: int, num_classes: int):
    return build_gnn(
        layer=partial(gps_layer, conv=partial(GatedGCNConv), local_residual=False,
                      mixer=partial(MultiheadAttentionMixer, num_heads=heads, dropout=attn_dropout)),
        node_encoder=partial(EmbeddingEncoder, num_tokens),
        edge_encoder=partial(EmbeddingEncoder, 1),
        out_channels=num_classes,
        hidden_channels=dim,
        num_layers=layers,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--graphs", type=int, default=320)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--attn-dropout", type=float, default=0.5)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--root", default=None, help="data root (default: a temporary folder)")
    parser.add_argument("--out", default=None, help="path prefix: also writes what is printed to PREFIX.txt")
    args = parser.parse_args()
    with report(args.out):
        run(args)


def run(args) -> None:
    """Time one epoch of each model and print the times and the ratios to PyG's."""
    root = args.root or tempfile.mkdtemp()
    splits = load_sbm(root, "PATTERN", num_train=args.graphs, num_val=1, num_test=1, progress=False)
    train = splits["train"]
    nodes = sum(g.num_nodes for g in train) / len(train)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; PATTERN {len(train)} graphs, "
          f"{nodes:.1f} nodes/graph; {args.layers} layers x {args.dim}, {args.heads} heads, batch {args.batch_size}")
    sizes = (args.dim, args.layers, args.heads, args.attn_dropout, 3, 2)
    runs = {"gnnlab (compiled ops)": ("extension", gnnlab_gps), "gnnlab (plain-torch ops)": ("torch", gnnlab_gps),
            "PyG GPSConv": (None, PyGGPS)}
    if not gnnlab.ops.extension_available():
        del runs["gnnlab (compiled ops)"]
    results = {}
    for name, (backend, build) in runs.items():
        torch.manual_seed(0)
        model = build(*sizes)
        optimizer = torch.optim.Adam(model.parameters(), lr=5e-4)
        loader = DataModule(splits, batch_size=args.batch_size, seed=0).loader("train")
        params = sum(p.numel() for p in model.parameters())
        with gnnlab.ops.backend_scope(backend or gnnlab.ops.backend()):
            train_epoch_seconds(model, loader, optimizer, F.cross_entropy)  # warm-up
            results[name] = statistics.median(train_epoch_seconds(model, loader, optimizer, F.cross_entropy) for _ in range(args.repeat))
        print(f"{name:26s} {params:>9,d} params  {results[name]:8.2f} s / epoch of {len(train)} graphs")
    pyg = results["PyG GPSConv"]
    for name, seconds in results.items():
        if name != "PyG GPSConv":
            print(f"PyG / {name}: {pyg / seconds:.2f}x")


if __name__ == "__main__":
    main()
