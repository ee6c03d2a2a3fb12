"""Mini-batch training with neighbour sampling on a generated graph of 1M nodes and 10M edges.

    OMP_NUM_THREADS=2 python benchmarks/sampled_training.py [--num-nodes 1000000] [--num-edges 10000000]
        [--fanouts 10 5] [--batch-size 1024] [--out results/sampled_training_1m.md]

The graph: a planted-partition graph with degree skew, ``--classes`` classes of equal expected size.
Each of the ``--num-edges`` directed edges ``j -> i`` picks its target ``i`` with probability
proportional to ``(rank + 1) ** -0.5`` of a random node ranking (skewed in-degrees: hubs with thousands
of in-edges, which the fan-outs cap) and its source ``j`` in the class of ``i`` with probability
``--homophily``, else uniformly. Features (``--channels`` wide) are a class centroid plus noise (weak
alone, so the neighbourhood helps). Splits: ``--train-fraction`` of the nodes for training, 5% for
validation, 5% for test. Generated in a child process (so its peak memory is not counted) and cached
under ``<data root>/generated/`` (``datasets/`` by default, gitignored).

The run: a 2-layer GraphSAGE (gnnlab's ``build_gnn`` with ``ConvLayer(SAGEConv)``, mean aggregation,
no batch norm) trained for ``--epochs`` epoch(s) with Adam on PyG's ``NeighborLoader`` batches drawn by
gnnlab's sampler (``gnnlab.data.SampledNodeDataModule``); each batch is trimmed per layer (``GNN(trim_sampled=...)``,
``--trim``, default ``auto``: layer ``l`` computes only the nodes within ``L - 1 - l`` hops of the seeds), and one
training step trimmed and untrimmed is compared on the same batches. Reported: peak resident memory
(``ru_maxrss``) after each stage, time per epoch split into the loader (sampling op + PyG's feature
filtering) and the model step (forward, backward, optimiser). Then the trained model's whole-graph
inference, each variant in a fresh process (its own peak memory): layer-wise batched propagation
(``GNN.layerwise_inference``) for every ``--eval-chunks`` size, and, as the peer, one ``model(data)``
forward on the whole graph. Also the sampling op alone: the compiled kernel against its plain-torch
reference (and PyG's samplers when installed). It writes a markdown table to ``--out`` with the
command that produced it.
"""
from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))


def peak_rss_gib() -> float:
    """Peak resident memory of this process so far (``ru_maxrss``, KiB on Linux) in GiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def current_rss_gib() -> float:
    """Resident memory now, in GiB."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**30


def generate(num_nodes: int, num_edges: int, channels: int, classes: int, homophily: float, train_fraction: float,
             seed: int):
    """The planted-partition graph described in the module docstring, as a PyG ``Data`` (vectorised, O(N + E))."""
    from torch_geometric.data import Data

    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, classes, (num_nodes,), generator=g)
    # Nodes grouped by class, to draw a uniform member of a class by one index.
    by_class = torch.argsort(y, stable=True)
    class_size = torch.bincount(y, minlength=classes)
    class_start = torch.cumsum(class_size, 0) - class_size
    # Targets with skewed probability: weight (rank + 1)^-0.5 over a random ranking of the nodes.
    ranking = torch.randperm(num_nodes, generator=g)
    weight = (ranking.double() + 1).pow(-0.5)
    cdf = torch.cumsum(weight, 0)
    cdf /= cdf[-1].clone()
    dst = torch.empty(num_edges, dtype=torch.long)
    src = torch.empty(num_edges, dtype=torch.long)
    step = 1 << 22
    for s in range(0, num_edges, step):  # in slices: bounded temporaries
        n = min(step, num_edges - s)
        d = torch.searchsorted(cdf, torch.rand(n, generator=g, dtype=torch.float64)).clamp_(max=num_nodes - 1)
        same = torch.rand(n, generator=g) < homophily
        c = y[d]
        member = class_start[c] + (torch.rand(n, generator=g, dtype=torch.float64) * class_size[c]).long()
        anywhere = torch.randint(0, num_nodes, (n,), generator=g)
        dst[s:s + n] = d
        src[s:s + n] = torch.where(same, by_class[member], anywhere)
        del d, same, c, member, anywhere
    centroids = torch.randn(classes, channels, generator=g)
    x = 0.35 * centroids[y] + torch.randn(num_nodes, channels, generator=g)
    split = torch.rand(num_nodes, generator=g)
    return Data(x=x, y=y, edge_index=torch.stack([src, dst]), train_mask=split < train_fraction,
                val_mask=(split >= train_fraction) & (split < train_fraction + 0.05),
                test_mask=(split >= train_fraction + 0.05) & (split < train_fraction + 0.10))


def cache_path(args) -> Path:
    """Where the generated graph is cached."""
    root = Path(args.root or os.environ.get("GNNLAB_DATA_DIR", ROOT / "datasets"))
    name = (f"planted_n{args.num_nodes}_e{args.num_edges}_c{args.channels}_k{args.classes}_h{args.homophily}"
            f"_t{args.train_fraction}_s{args.seed}.pt")
    return root / "generated" / name


def ensure_graph(args) -> Path:
    """Generate and cache the graph in a child process unless the cache exists; return the cache path."""
    path = cache_path(args)
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, __file__, *sys.argv[1:], "--generate-only"], check=True)
    return path


def build_model(args):
    """The 2-layer GraphSAGE of the run (weights from torch's generator, seeded by the caller)."""
    from gnnlab.models import build_gnn
    from gnnlab.nn.conv import SAGEConv
    from gnnlab.nn.encoders import LinearEncoder
    from gnnlab.nn.layers import ConvLayer

    return build_gnn(layer=partial(ConvLayer, conv=SAGEConv, batch_norm=False, residual=False),
                     node_encoder=partial(LinearEncoder, in_channels=args.channels), out_channels=args.classes,
                     hidden_channels=args.hidden, num_layers=len(args.fanouts), trim_sampled=args.trim)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num-nodes", type=int, default=1_000_000)
    parser.add_argument("--num-edges", type=int, default=10_000_000)
    parser.add_argument("--channels", type=int, default=64)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--homophily", type=float, default=0.6)
    parser.add_argument("--train-fraction", type=float, default=0.1)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--fanouts", type=int, nargs="+", default=[10, 5])
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--eval-chunks", type=int, nargs="+", default=[100_000, 500_000],
                        help="target nodes per layer-wise chunk (one inference run each)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--trim", default="auto", choices=["auto", "always", "never"],
                        help="per-layer trimming of the sampled batches (GNN trim_sampled)")
    parser.add_argument("--root", default=None, help="data root (default: $GNNLAB_DATA_DIR or ./datasets)")
    parser.add_argument("--out", default=str(ROOT / "results" / "sampled_training_1m.md"))
    parser.add_argument("--no-peers", action="store_true", help="skip the comparisons (sampling op paths, model(data))")
    parser.add_argument("--generate-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--infer-only", default=None, help=argparse.SUPPRESS)  # "full" or a chunk size
    parser.add_argument("--weights", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.generate_only:
        t0 = time.perf_counter()
        data = generate(args.num_nodes, args.num_edges, args.channels, args.classes, args.homophily,
                        args.train_fraction, args.seed)
        torch.save(data.to_dict(), cache_path(args))
        print(f"generated {cache_path(args)} in {time.perf_counter() - t0:.1f} s "
              f"(peak {peak_rss_gib():.2f} GiB in the generator process)", flush=True)
        return
    if args.infer_only is not None:
        infer(args)
        return
    run(args)


def infer(args) -> None:
    """Child process: load the graph and the trained weights, run one whole-graph inference, print its figures."""
    import json

    from torch_geometric.data import Data

    data = Data.from_dict(torch.load(cache_path(args), weights_only=False))
    model = build_model(args)
    model.load_state_dict(torch.load(args.weights))
    model.eval()
    before = current_rss_gib()
    t0 = time.perf_counter()
    with torch.no_grad():
        out = model(data) if args.infer_only == "full" else model.layerwise_inference(data, int(args.infer_only))
    seconds = time.perf_counter() - t0
    accuracy = {s: float((out[data[f"{s}_mask"]].argmax(-1) == data.y[data[f"{s}_mask"]]).float().mean())
                for s in ("val", "test")}
    torch.save(out, f"{args.weights}.{args.infer_only}.out")
    print("RESULT " + json.dumps(dict(seconds=seconds, before=before, peak=peak_rss_gib(), **accuracy)), flush=True)


def infer_in_child(args, mode: str, weights: Path) -> dict:
    """Run :func:`infer` in a fresh process (its own peak memory) and return its figures and logits."""
    import json

    argv = [a for a in sys.argv[1:]]
    proc = subprocess.run([sys.executable, __file__, *argv, "--infer-only", mode, "--weights", str(weights)],
                          check=True, capture_output=True, text=True)
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
    result = json.loads(line[len("RESULT "):])
    result["out"] = torch.load(f"{weights}.{mode}.out")
    return result


def run(args) -> None:
    """Train, evaluate, measure, write the report."""
    import tempfile

    from _report import command_line
    from torch_geometric.data import Data

    import gnnlab.ops
    from gnnlab.data import SampledNodeDataModule
    from gnnlab.data.sampling import pyg_sampler_available
    from gnnlab.train.tasks import NodeClassification

    stages: list[tuple[str, float, float, float]] = []  # (stage, seconds, RSS after, peak RSS so far)

    def stage(name: str, seconds: float) -> None:
        stages.append((name, seconds, current_rss_gib(), peak_rss_gib()))
        print(f"{name}: {seconds:.1f} s, RSS {current_rss_gib():.2f} GiB, peak {peak_rss_gib():.2f} GiB", flush=True)

    t0 = time.perf_counter()
    path = ensure_graph(args)
    data = Data.from_dict(torch.load(path, weights_only=False))
    stage("load graph", time.perf_counter() - t0)

    t0 = time.perf_counter()
    dm = SampledNodeDataModule.from_data(data, args.fanouts, batch_size=args.batch_size, engine="gnnlab",
                                         seed=args.seed, check=False)
    stage("sampler set-up (CSC of the graph, checked once)", time.perf_counter() - t0)

    # Time inside the sampling op, apart from PyG's feature filtering in the loader.
    sampler, sample_time = dm.sampler, [0.0]
    inner = sampler._sample

    def timed_sample(*a, **k):
        s = time.perf_counter()
        try:
            return inner(*a, **k)
        finally:
            sample_time[0] += time.perf_counter() - s

    sampler._sample = timed_sample

    torch.manual_seed(args.seed)
    model = build_model(args)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    task = NodeClassification(transductive=True)

    epochs = []
    for epoch in range(args.epochs):
        model.train()
        sample_time[0] = 0.0
        loader_time = step_time = 0.0
        steps = correct = seen = 0
        nodes = edges = 0
        t_epoch = time.perf_counter()
        iterator = iter(dm.loader("train"))
        while True:
            s = time.perf_counter()
            batch = next(iterator, None)
            loader_time += time.perf_counter() - s
            if batch is None:
                break
            s = time.perf_counter()
            out = task.step(model, batch, "train")
            optimizer.zero_grad(set_to_none=True)
            out.loss.backward()
            optimizer.step()
            step_time += time.perf_counter() - s
            pred, target = out.outputs
            correct += int((pred.argmax(-1) == target).sum())
            seen += target.numel()
            steps += 1
            nodes += batch.num_nodes
            edges += batch.num_edges
        epoch_time = time.perf_counter() - t_epoch
        epochs.append(dict(epoch=epoch + 1, time=epoch_time, loader=loader_time, sample=sample_time[0],
                           step=step_time, steps=steps, train_acc=correct / max(seen, 1),
                           nodes=nodes / max(steps, 1), edges=edges / max(steps, 1)))
        stage(f"training epoch {epoch + 1}", epoch_time)

    peers = [] if args.no_peers else compare_samplers(dm, data, args) + compare_trimming(dm, model, args)
    # Whole-graph inference, each in a fresh process that loads the graph and the trained weights, so
    # that its peak memory is its own.
    weights = Path(tempfile.mkdtemp()) / "model.pt"
    torch.save(model.state_dict(), weights)
    inference = {}
    for mode in [str(c) for c in args.eval_chunks] + ([] if args.no_peers else ["full"]):
        inference[mode] = infer_in_child(args, mode, weights)
        r = inference[mode]
        print(f"inference {mode}: {r['seconds']:.1f} s, peak {r['peak']:.2f} GiB, val {r['val']:.3f}", flush=True)
    if "full" in inference:
        full = inference["full"]
        for mode, r in inference.items():
            if mode != "full":
                difference = float((r["out"] - full["out"]).abs().max())
                peers.append((f"whole-graph inference, layer-wise chunks of {int(mode):,}",
                              f"{r['seconds']:.1f} s, peak {r['peak']:.2f} GiB",
                              f"model(data): {full['seconds']:.1f} s, peak {full['peak']:.2f} GiB",
                              f"time {full['seconds'] / r['seconds']:.2f}, peak {full['peak'] / r['peak']:.2f}",
                              f"max abs difference of the logits {difference:.1e}"))
    write_report(args, data, dm, stages, epochs, inference, command_line(), pyg_sampler_available(),
                 gnnlab.ops.backend(), peers)

def compare_samplers(dm, data, args, batches: int = 10) -> list[tuple[str, ...]]:
    """The sampling op alone on ``batches`` batches of training seeds: the compiled kernel vs the plain-torch
    reference (median seconds per batch); PyG's samplers when installed."""
    import statistics

    import gnnlab.ops
    from gnnlab.data.sampling import pyg_sampler_available

    g = torch.Generator().manual_seed(1)
    train = data.train_mask.nonzero().view(-1)
    seeds = [train[torch.randperm(train.numel(), generator=g)[:args.batch_size]] for _ in range(batches)]
    colptr, row = dm.sampler.colptr, dm.sampler.row
    times = {}
    paths = ["torch"] + (["extension"] if gnnlab.ops.extension_available() else [])
    for path in paths:
        for check in (False, True):
            spent = []
            with gnnlab.ops.backend_scope(path):
                for i, s in enumerate(seeds):
                    t0 = time.perf_counter()
                    gnnlab.ops.neighbor_sample(colptr, row, s, args.fanouts, seed=i, check_graph=check)
                    spent.append(time.perf_counter() - t0)
            times[path, check] = statistics.median(spent)
    rows = []
    note = f"median of {batches} batches of {args.batch_size} seeds"
    if gnnlab.ops.extension_available():
        kernel, reference = times["extension", False], times["torch", False]
        rows.append(("sampling op, one batch (graph checked once, as the sampler calls it)",
                     f"kernel {kernel * 1e3:.1f} ms", f"plain-torch reference {reference * 1e3:.1f} ms",
                     f"{reference / kernel:.1f}", note))
        checked = times["extension", True]
        rows.append(("sampling op, one batch, graph checked on every call (O(N + E))", f"kernel {kernel * 1e3:.1f} ms "
                     "unchecked", f"kernel {checked * 1e3:.1f} ms checked", f"{checked / kernel:.1f}", note))
    else:
        rows.append(("sampling op, one batch", "kernel not built",
                     f"plain-torch reference {times['torch', False] * 1e3:.1f} ms", "-", note))
    if pyg_sampler_available():
        from torch_geometric.sampler import NeighborSampler, NodeSamplerInput

        pyg = NeighborSampler(data, num_neighbors=args.fanouts)
        spent = []
        for i, s in enumerate(seeds):
            t0 = time.perf_counter()
            pyg.sample_from_nodes(NodeSamplerInput(input_id=None, node=s))
            spent.append(time.perf_counter() - t0)
        pyg_time = statistics.median(spent)
        ours = times.get(("extension", False), times["torch", False])
        rows.append(("sampling, one batch", f"gnnlab {ours * 1e3:.1f} ms", f"PyG (pyg-lib/torch-sparse) {pyg_time * 1e3:.1f} ms",
                     f"{pyg_time / ours:.2f}", "PyG's sample_from_nodes"))
    return rows


def compare_trimming(dm, model, args, batches: int = 10) -> list[tuple[str, ...]]:
    """One training step (forward, loss on the seeds, backward) of the trained model on ``batches`` training
    batches, trimmed per layer and untrimmed (median seconds per step), and the largest difference of the
    seeds' logits between the two."""
    import copy
    import statistics

    from gnnlab.train.tasks import NodeClassification

    task = NodeClassification(transductive=True)
    sample = []
    for batch in dm.loader("train"):
        sample.append(batch)
        if len(sample) == batches:
            break
    batches = len(sample)
    times, logits = {}, {}
    for mode in ("never", "always"):
        m = copy.deepcopy(model).train()
        m.trim_sampled = mode
        spent = []
        for b in sample:
            t0 = time.perf_counter()
            out = task.step(m, b, "train")
            out.loss.backward()
            spent.append(time.perf_counter() - t0)
        times[mode] = statistics.median(spent)
        with torch.no_grad():
            logits[mode] = m(sample[0])[: sample[0].batch_size]
    difference = float((logits["always"] - logits["never"]).abs().max())
    return [("training step (forward + backward), trimmed per layer", f"{times['always'] * 1e3:.0f} ms trimmed",
             f"{times['never'] * 1e3:.0f} ms untrimmed", f"{times['never'] / times['always']:.1f}",
             f"median of {batches} batches; max abs difference of the seeds' logits {difference:.1e}")]


def write_report(args, data, dm, stages, epochs, inference, command, pyg_available, backend, peers=()) -> None:
    """Markdown result file (and print it)."""
    if "--out" not in command:  # the command names the file it writes
        command += f" --out {Path(args.out).resolve().relative_to(ROOT) if Path(args.out).resolve().is_relative_to(ROOT) else args.out}"
    lines = [
        f"Command: `{command}`",
        "",
        f"# Neighbour-sampled training on a generated graph of {data.num_nodes:,} nodes",
        "",
        f"Graph: {data.num_nodes:,} nodes, {data.num_edges:,} directed edges (planted partition, {args.classes} "
        f"classes, homophily {args.homophily}, skewed in-degrees: max {int(torch.bincount(data.edge_index[1]).max()):,}), "
        f"{args.channels} float features; train {int(data.train_mask.sum()):,} nodes "
        f"({args.train_fraction:.0%}), val {int(data.val_mask.sum()):,}, test {int(data.test_mask.sum()):,}.",
        f"Model: 2-layer GraphSAGE (mean), hidden {args.hidden}, no batch norm, per-layer trimming of the sampled "
        f"batches `trim_sampled={args.trim}` (layer l computes only the nodes within L - 1 - l hops of the seeds); "
        f"Adam lr {args.lr}; fan-outs "
        f"{args.fanouts}, batch size {args.batch_size}; sampler `{type(dm.sampler).__name__}` "
        f"(gnnlab.ops.neighbor_sample, op backend `{backend}`) inside PyG's `NeighborLoader`, `num_workers=0`; "
        f"torch threads {torch.get_num_threads()}, {os.cpu_count()} CPUs; load average "
        f"{os.getloadavg()[0]:.1f} when the report was written.",
        "",
        "## Training process (memory: resident set after the stage, and peak `ru_maxrss` so far)",
        "",
        "| stage | time (s) | RSS after (GiB) | peak RSS (GiB) |",
        "|---|---:|---:|---:|",
    ]
    for name, seconds, rss, peak in stages:
        lines.append(f"| {name} | {seconds:.1f} | {rss:.2f} | {peak:.2f} |")
    lines += [
        "",
        "## Training epochs",
        "",
        "| epoch | steps | time (s) | loader (s, share) | of which sampling op (s, share) | forward+backward+step (s, share) "
        "| mean nodes / edges per batch | train acc (seeds) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for e in epochs:
        t = e["time"]
        lines.append(
            f"| {e['epoch']} | {e['steps']} | {t:.1f} | {e['loader']:.1f} ({e['loader'] / t:.0%}) | "
            f"{e['sample']:.1f} ({e['sample'] / t:.0%}) | {e['step']:.1f} ({e['step'] / t:.0%}) | "
            f"{e['nodes']:,.0f} / {e['edges']:,.0f} | {e['train_acc']:.3f} |")
    lines += [
        "",
        "## Whole-graph inference of the trained model (each in a fresh process: graph + weights loaded, then "
        "the inference; peak `ru_maxrss` of that process)",
        "",
        "| method | time (s) | RSS before (GiB) | peak RSS (GiB) | val acc | test acc |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for mode, r in inference.items():
        name = "model(data), one full-graph forward" if mode == "full" else f"layer-wise, chunks of {int(mode):,} targets"
        lines.append(f"| {name} | {r['seconds']:.1f} | {r['before']:.2f} | {r['peak']:.2f} | {r['val']:.3f} | "
                     f"{r['test']:.3f} |")
    if peers:
        lines += ["", "## Against peers in the same run", "", "| what | gnnlab | peer | ratio (peer / gnnlab) | note |",
                  "|---|---:|---:|---:|---|"]
        lines += [f"| {' | '.join(row)} |" for row in peers]
    layerwise_peaks = [r["peak"] for m, r in inference.items() if m != "full"]
    peak = max([s[3] for s in stages] + layerwise_peaks)
    lines += [
        "",
        f"Peak resident memory of the sampled-training pipeline (training process; layer-wise inference processes): "
        f"{peak:.2f} GiB ({'within' if peak <= 24 else 'above'} 24 GiB). Chance accuracy: {1 / args.classes:.2f}. "
        "The loader time includes PyG's feature filtering (`x[n_id]`, `y[n_id]`, masks) and collation; the "
        "sampling op is the gnnlab kernel's share of it. Layer-wise inference runs each layer on every chunk's "
        "1-hop subgraph (PyG's `NeighborLoader(num_neighbors=[-1])` recipe): it gathers the previous outputs of "
        "the chunk and all its in-neighbours, but computes the layer for the chunk's targets only (SAGE supports "
        "a graph whose targets are the first rows of its sources); the gathers and the per-chunk subgraphs are "
        "its overhead over the full-graph forward, which it pays for where that forward does not fit, not here.",
        "",
        "PyG's own samplers (pyg-lib, torch-sparse): "
        + ("installed here, compared above." if pyg_available else
           "not installed in this environment, so there is no comparison against them in this file; "
           "`engine='pyg'` in `gnnlab.data.make_neighbor_sampler` selects them where they are installed."),
        "",
    ]
    text = "\n".join(lines)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
