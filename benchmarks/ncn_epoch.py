"""NCN / NCNC epoch time on Cora: the compiled common-neighbour and aggregation kernels vs the plain-torch path.

    python benchmarks/ncn_epoch.py [--experiment linkpred/ncn_cora] [--repeat 5] [--root DATA_DIR]

Runs the experiment's model, split (seed 0) and batches in this process, once with the compiled
ops (``gnnlab._C``) and once with their plain-torch reference (``gnnlab.ops.backend_scope("torch")``:
common-neighbour sets by sorted keys and ``searchsorted``, aggregation by ``index_add_``), and
prints the median time of one training epoch and of one evaluation (validation + test), and the
ratios reference / kernels. Needs the Cora data (offline copy or download).
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch
from _report import report
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

import gnnlab.ops
from gnnlab.cli import config_dir
from gnnlab.train import Trainer
from gnnlab.train.run import add_facts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--experiment", nargs="+", default=["linkpred/ncn_cora"])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--root", default="datasets", help="data root (default: ./datasets)")
    parser.add_argument("--out", default=None, help="write PREFIX.txt (what is printed)")
    args = parser.parse_args()
    if not gnnlab.ops.extension_available():
        raise SystemExit(f"gnnlab._C is not built ({gnnlab.ops.extension_error()}): nothing to compare")
    with report(args.out):
        for experiment in args.experiment:
            run(experiment, args)


def run(experiment: str, args) -> None:
    out = tempfile.mkdtemp()
    with initialize_config_dir(str(config_dir()), version_base="1.3"):
        cfg = compose("train", overrides=[f"experiment={experiment}", f"paths.data_dir={args.root}",
                                          f"paths.output_dir={out}", "seed=0"])
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, experiment {experiment}")
    datamodule = instantiate(cfg.data.module)
    add_facts(cfg, datamodule.facts)  # in_channels, num_nodes for the model config
    task = instantiate(cfg.task)
    print(datamodule.split)
    trainer = Trainer(output_dir=out, progress=False)
    results = {}
    for backend in ("extension", "torch"):
        torch.manual_seed(0)
        model = instantiate(cfg.model)
        optimizer = torch.optim.Adam(model.optimizer_groups())
        train_s, eval_s = [], []
        with gnnlab.ops.backend_scope(backend):
            for i in range(args.repeat + 1):  # the first epoch warms up
                t0 = time.perf_counter()
                trainer._run_split(model, task, datamodule.loader("train"), "train", optimizer)
                t1 = time.perf_counter()
                trainer._run_split(model, task, datamodule.loader("val"), "val")
                trainer._run_split(model, task, datamodule.loader("test"), "test")
                t2 = time.perf_counter()
                if i:
                    train_s.append(t1 - t0)
                    eval_s.append(t2 - t1)
        results[backend] = (statistics.median(train_s), statistics.median(eval_s))
        print(f"{backend:10s} train epoch {results[backend][0] * 1e3:8.1f} ms   evaluation {results[backend][1] * 1e3:8.1f} ms")
    (kt, ke), (rt, re_) = results["extension"], results["torch"]
    print(f"plain torch / kernels: train epoch ×{rt / kt:.2f}, evaluation ×{re_ / ke:.2f}")


if __name__ == "__main__":
    main()
