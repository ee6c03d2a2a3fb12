"""Training step and evaluation time, and peak memory, of the sequence models on real Peptides-func batches.

    GNNLAB_DATA_DIR=datasets python benchmarks/sequence_models_step.py --batches 4 \\
        --out results/sequence_models_step_peptides_func     # writes .txt and .csv

Each row's experiment file (GPS, Graph-Mamba, GMN, GSM++ on Peptides-func) is composed as
``gnnlab-train`` would compose it; the model is built with seed 0 and trained with AdamW for
``--batches`` batches of 128 training graphs (the same batches, in the same order, for every model),
then run in evaluation mode on the same batches. Each model runs in a fresh child process, so its
peak resident memory (``VmHWM``, including the data set and the Python runtime, which every row
shares) is its own. Reported: median seconds per training step (forward, BCE loss, backward,
optimizer step) after one warm-up step, median seconds per evaluation forward, the estimated time of
one training epoch (10,873 graphs) from the median, and the peak memory. Ratios are against GPS.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _report import report, write_csv

ROWS = {
    "GPS": "gps/peptides_func",
    "Graph-Mamba": "graph_mamba/peptides_func",
    "GMN": "gmn/peptides_func",
    "GSM++": "gsmpp/peptides_func",
}
TRAIN_GRAPHS = 10873


def measure(experiment: str, batches: int) -> dict:
    """Run in a child process: time ``batches`` training steps and evaluation forwards of one row."""
    import torch
    from hydra import compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig
    from hydra.utils import instantiate

    from gnnlab.cli import config_dir
    from gnnlab.train.run import add_facts

    root = Path.cwd()
    with initialize_config_dir(str(config_dir()), version_base="1.3"):
        cfg = compose("train", overrides=[f"paths.root_dir={root}", f"paths.output_dir={root / 'outputs' / 'bench'}",
                                          f"experiment={experiment}", "seed=0"], return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    torch.manual_seed(0)
    data = instantiate(cfg.data.module)
    loader = data.train_loader()
    torch.manual_seed(0)
    model = instantiate(add_facts(cfg, data.facts).model)
    params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    taken = []
    for batch in loader:
        taken.append(batch)
        if len(taken) == batches + 1:
            break
    train_s, eval_s = [], []
    model.train()
    for batch in taken:
        start = time.perf_counter()
        out = model(batch)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(out, batch.y.float())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        train_s.append(time.perf_counter() - start)
    model.eval()
    with torch.no_grad():
        for batch in taken:
            start = time.perf_counter()
            model(batch)
            eval_s.append(time.perf_counter() - start)
    with open("/proc/self/status") as fh:
        hwm = next(int(line.split()[1]) for line in fh if line.startswith("VmHWM"))
    nodes = statistics.mean(int(b.num_nodes) for b in taken[1:])
    return dict(experiment=experiment, params=params, nodes_per_batch=nodes,
                train_step_s=statistics.median(train_s[1:]), eval_step_s=statistics.median(eval_s[1:]),
                peak_rss_mib=hwm / 1024)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=4, help="timed batches per model (after one warm-up)")
    parser.add_argument("--only", help="(internal) measure one experiment and print JSON")
    parser.add_argument("--models", nargs="*", default=list(ROWS), choices=list(ROWS))
    parser.add_argument("--out", default=None, help="path prefix: writes PREFIX.txt (what is printed) and PREFIX.csv")
    args = parser.parse_args()
    if args.only:
        print(json.dumps(measure(args.only, args.batches)))
        return
    with report(args.out):
        results = run(args)
    write_csv(args.out, ["model", *next(iter(results.values()), {})],
              [{"model": name, **r} for name, r in results.items()])


def run(args) -> dict[str, dict]:
    """Measure every model in its own child process and print the table; return the rows by model."""
    import torch

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; Peptides-func, batch 128, "
          f"{args.batches} timed batches after one warm-up; one child process per model")
    results = {}
    for name in args.models:
        proc = subprocess.run([sys.executable, __file__, "--only", ROWS[name], "--batches", str(args.batches)],
                              capture_output=True, text=True, env=os.environ.copy())
        if proc.returncode != 0:
            print(f"{name}: failed\n{proc.stderr[-2000:]}")
            continue
        results[name] = json.loads(proc.stdout.strip().splitlines()[-1])
        r = results[name]
        print(f"{name:12s} {r['params']:>9,} params  {r['nodes_per_batch']:>8.0f} nodes/batch  "
              f"train {r['train_step_s']:7.2f} s/step (~{r['train_step_s'] * TRAIN_GRAPHS / 128 / 60:6.1f} min/epoch)  "
              f"eval {r['eval_step_s']:6.2f} s/batch  peak RSS {r['peak_rss_mib']:8.0f} MiB", flush=True)
    base = results.get("GPS")
    if base:
        for name, r in results.items():
            print(f"{name:12s} / GPS: train step {r['train_step_s'] / base['train_step_s']:.2f}x, "
                  f"eval {r['eval_step_s'] / base['eval_step_s']:.2f}x, peak RSS {r['peak_rss_mib'] / base['peak_rss_mib']:.2f}x")
    return results


if __name__ == "__main__":
    main()
