"""NCN on Cora: gnnlab vs the NCN authors' reference code, epoch times measured side by side.

    python benchmarks/ncn_reference.py --reference-dir <NeuralCommonNeighbor checkout> \
        --reference-python <python of an environment with torch_sparse, torch_scatter, torch_geometric, ogb,
                            tensorboard, scikit-learn> [--epochs 12] [--rounds 3] [--out results/ncn_vs_reference_cpu]

The reference is Wang, Yang, Zhang's code (GraphPKU/NeuralCommonNeighbor, `NeighborOverlap.py`) run with the
hyperparameters its README gives for NCN on Cora (`--predictor cn1`, batch 1152, hidden 256, ...), for
``--epochs`` epochs and one run; it prints the time of each training epoch and of each evaluation. gnnlab runs
`experiment=linkpred/ncn_cora` (the same hyperparameters) in a child process of this script, timing the training
epoch and the evaluation (validation + test) the same way. The two alternate, ``--rounds`` times each, with the
same thread count; the first epoch of every process is a warm-up and is not counted. Reported: the median over
all counted epochs of each, and reference / gnnlab.

Neither the reference code nor its environment is part of gnnlab: name a checkout and an interpreter. The Cora
files are copied from ``GNNLAB_SHARED_DATA`` (``Planetoid/Cora/raw``) when set; otherwise PyG downloads them.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _report import report, write_csv

# The README's Cora command, NCN row (predictor cn1); --epochs and --runs are set by this script.
REFERENCE_ARGS = ["--xdp", "0.7", "--tdp", "0.3", "--pt", "0.75", "--gnnedp", "0.0", "--preedp", "0.4", "--predp", "0.05",
                  "--gnndp", "0.05", "--probscale", "4.3", "--proboffset", "2.8", "--alpha", "1.0", "--gnnlr", "0.0043",
                  "--prelr", "0.0024", "--batch_size", "1152", "--ln", "--lnnn", "--predictor", "cn1", "--dataset", "Cora",
                  "--model", "puregcn", "--hiddim", "256", "--mplayers", "1", "--testbs", "8192", "--maskinput", "--jk",
                  "--use_xlin", "--tailact"]


def reference_epochs(args, workdir: Path) -> tuple[list[float], list[float]]:
    """Run the authors' script once; its per-epoch training and evaluation seconds."""
    cmd = [args.reference_python, "NeighborOverlap.py", *REFERENCE_ARGS, "--epochs", str(args.epochs), "--runs", "1"]
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, env=_env())
    if proc.returncode != 0:
        raise SystemExit(f"the reference code failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    train = [float(v) for v in re.findall(r"^trn time ([0-9.]+) s", proc.stdout, re.M)]
    test = [float(v) for v in re.findall(r"^test time ([0-9.]+) s", proc.stdout, re.M)]
    if len(train) != args.epochs or len(test) != args.epochs:
        raise SystemExit(f"expected {args.epochs} epoch times from the reference, got {len(train)}/{len(test)}")
    return train, test


def gnnlab_epochs(args) -> tuple[list[float], list[float]]:
    """Run gnnlab's NCN in a child process (this script with --worker); its per-epoch seconds."""
    cmd = [sys.executable, __file__, "--worker", "--epochs", str(args.epochs), "--root", args.root]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_env(), cwd=Path(__file__).resolve().parents[1])
    if proc.returncode != 0:
        raise SystemExit(f"gnnlab's run failed:\n{proc.stderr[-4000:]}")
    times = json.loads(proc.stdout.strip().splitlines()[-1])
    return times["train"], times["eval"]


def worker(args) -> None:
    """gnnlab's side: the experiment's model, split and batches, timed per epoch (train; val + test)."""
    import torch
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    from gnnlab.cli import config_dir
    from gnnlab.train import Trainer
    from gnnlab.train.run import add_facts

    out = tempfile.mkdtemp()
    with initialize_config_dir(str(config_dir()), version_base="1.3"):
        cfg = compose("train", overrides=["experiment=linkpred/ncn_cora", f"paths.data_dir={args.root}",
                                          f"paths.output_dir={out}", "seed=0"])
    datamodule = instantiate(cfg.data.module)
    add_facts(cfg, datamodule.facts)
    task = instantiate(cfg.task)
    torch.manual_seed(0)
    model = instantiate(cfg.model)
    optimizer = instantiate(cfg.optim)(params=model.optimizer_groups())
    trainer = Trainer(output_dir=out, progress=False)
    train, evaluation = [], []
    for _ in range(args.epochs):
        t0 = time.perf_counter()
        trainer._run_split(model, task, datamodule.loader("train"), "train", optimizer)
        t1 = time.perf_counter()
        trainer._run_split(model, task, datamodule.loader("val"), "val")
        trainer._run_split(model, task, datamodule.loader("test"), "test")
        evaluation.append(time.perf_counter() - t1)
        train.append(t1 - t0)
    print(json.dumps({"train": train, "eval": evaluation}))


def _env() -> dict[str, str]:
    return dict(os.environ, GNNLAB_MALLOC_TUNING="0")


def prepare_reference(reference_dir: Path) -> Path:
    """A scratch folder with the authors' scripts and Cora's raw files where their loader looks."""
    workdir = Path(tempfile.mkdtemp(prefix="ncn-reference-"))
    for name in ("NeighborOverlap.py", "model.py", "utils.py", "ogbdataset.py"):
        if not (reference_dir / name).is_file():
            raise SystemExit(f"{reference_dir} is not a NeuralCommonNeighbor checkout (no {name})")
        shutil.copy(reference_dir / name, workdir / name)
    shared = os.environ.get("GNNLAB_SHARED_DATA")
    if shared and (Path(shared) / "Planetoid" / "Cora" / "raw").is_dir():
        shutil.copytree(Path(shared) / "Planetoid" / "Cora" / "raw", workdir / "dataset" / "Cora" / "raw")
    return workdir


def describe_reference(args) -> str:
    """The reference's files (SHA-256 of each ``.py``, a checkout need not be a git clone) and its environment."""
    import hashlib

    files = sorted(Path(args.reference_dir).glob("*.py"))
    digests = ", ".join(f"{f.name} {hashlib.sha256(f.read_bytes()).hexdigest()[:12]}" for f in files)
    probe = ("import importlib.metadata as m; print(', '.join(f'{p} {m.version(p)}' for p in "
             "('torch', 'torch_sparse', 'torch_scatter', 'torch_geometric')))")
    versions = subprocess.run([args.reference_python, "-c", probe], capture_output=True, text=True).stdout.strip()
    return f"reference code: {digests or 'no .py files'}; its environment: {versions or 'versions not readable'}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference-dir", type=Path)
    parser.add_argument("--reference-python")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--root", default="datasets", help="gnnlab's data root (default: ./datasets)")
    parser.add_argument("--out", default=None, help="write PREFIX.txt and PREFIX.csv")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    if args.reference_dir is None or args.reference_python is None:
        parser.error("--reference-dir and --reference-python are required")
    if args.epochs < 2:
        parser.error("--epochs must be >= 2 (the first epoch is a warm-up)")
    workdir = prepare_reference(args.reference_dir)
    runs: dict[str, dict[str, list[float]]] = {"reference": {"train": [], "eval": []}, "gnnlab": {"train": [], "eval": []}}
    with report(args.out):
        print(f"NCN on Cora, {args.epochs} epochs per process ({args.epochs - 1} counted), {args.rounds} alternating "
              f"rounds, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
        print(describe_reference(args))
        print("gnnlab: experiment=linkpred/ncn_cora (its HR@100 over 10 seeds: results/ncn_planetoid.md)")
        for r in range(args.rounds):
            for name, fn in (("reference", lambda: reference_epochs(args, workdir)), ("gnnlab", lambda: gnnlab_epochs(args))):
                train, evaluation = fn()
                runs[name]["train"] += train[1:]
                runs[name]["eval"] += evaluation[1:]
                print(f"round {r + 1} {name:9s} train epoch median {statistics.median(train[1:]):.3f} s, "
                      f"evaluation median {statistics.median(evaluation[1:]):.3f} s", flush=True)
        rows = []
        for part, label in (("train", "training epoch"), ("eval", "evaluation (val + test)")):
            ref, ours = statistics.median(runs["reference"][part]), statistics.median(runs["gnnlab"][part])
            print(f"{label:24s} reference {ref:.3f} s   gnnlab {ours:.3f} s   reference / gnnlab ×{ref / ours:.2f}")
            rows.append([label, f"{ref:.4f}", f"{ours:.4f}", f"{ref / ours:.3f}"])
        if args.out:
            write_csv(args.out, ["what", "reference_s", "gnnlab_s", "ratio"], rows)
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
