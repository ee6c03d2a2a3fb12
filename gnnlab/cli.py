"""Command-line entry points.

``gnnlab-train`` (also ``python -m gnnlab.train``): Hydra app over the configs in ``conf/``.
``gnnlab-table``: run a benchmark table (``conf/table``) or one experiment over several seeds and write
markdown tables beside the published numbers.
``gnnlab-tc``: Topological Concentration vs per-node performance of a trained link-prediction run.
"""
from __future__ import annotations

import argparse
import logging
import os
import platform
import shlex
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Callable, Iterable

import hydra
from hydra.errors import InstantiationException
from omegaconf import DictConfig

from gnnlab.config_schema import validate_config
from gnnlab.errors import GnnlabError
from gnnlab.files import config_dir


# Errors in a user's input (config values, datasets, paths), reported as one line; any other exception
# is a bug in code and keeps its full traceback (see gnnlab.errors).
USER_ERRORS = (GnnlabError, FileNotFoundError, PermissionError)

# gnnlab-tc and gnnlab-curves check their command-line arguments (a run folder, a metric name) with
# ValueError: one line as well.
ARGUMENT_ERRORS = (*USER_ERRORS, ValueError)


def _unwrap(err: BaseException) -> BaseException:
    """The error that Hydra's ``InstantiationException`` wrappers around ``err`` hold (``err`` when unwrapped).

    Hydra wraps whatever a ``_target_`` raises in an ``InstantiationException``; the wrapped error
    decides whether the user made a mistake or the code has a bug.
    """
    seen = set()
    while isinstance(err, InstantiationException) and err.__cause__ is not None and id(err) not in seen:
        seen.add(id(err))
        err = err.__cause__
    return err


# glibc serves every allocation above its mmap threshold (at most 32 MB when set at run time) with a
# fresh mmap and returns it on free, so each E x F message tensor of a big batch is page-faulted in
# again: on 2 CPU cores a GatedGCN step on 128 CLUSTER graphs spent ~2/3 of its time in the kernel.
# These settings, read by glibc only at process start, keep freed memory for reuse.
_MALLOC_ENV = {
    "MALLOC_MMAP_THRESHOLD_": str(2**32),
    "MALLOC_TRIM_THRESHOLD_": str(2**32),
    "MALLOC_TOP_PAD_": str(2**30),
}


class ReleaseFreeMemory:
    """A :class:`~gnnlab.train.Trainer` batch callback: every ``every`` batches, give freed heap pages back to
    the operating system (glibc ``malloc_trim(0)``; a no-op elsewhere).

    The thresholds above trade the page faults for fragmentation: batches of varying size leave free
    holes the heap never gives back, and the resident size creeps up by hundreds of MB per epoch
    (measured: 0.8 GB to 2.0 GB over 300 GCN steps on Peptides-sized batches). ``malloc_trim(0)``
    hands every whole free page back (the heap keeps its layout, so later allocations reuse the
    addresses); called every few dozen steps it holds the resident size flat (0.40 to 0.48 GB in the
    same loop) at the cost of re-faulting those pages once. ``conf/trainer/default.yaml`` adds it.
    """

    def __init__(self, every: int = 50):
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"ReleaseFreeMemory: every must be a positive int, got {every!r}")
        self.every = every
        self._trim = None  # resolved on first use

    def release(self) -> bool:
        """Trim now; ``False`` where glibc's ``malloc_trim`` is unavailable."""
        if self._trim is None:
            self._trim = False
            if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
                import ctypes
                import ctypes.util

                try:
                    self._trim = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
                except (OSError, AttributeError):
                    self._trim = False
        if not self._trim:
            return False
        self._trim(0)
        return True

    def __call__(self, index: int) -> None:
        if index % self.every == 0:
            self.release()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(every={self.every})"


def _reexec_with_malloc_settings() -> None:
    """Restart the process once with :data:`_MALLOC_ENV` (glibc Linux only; opt out: GNNLAB_MALLOC_TUNING=0)."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return
    if os.environ.get("GNNLAB_MALLOC_TUNING", "1") == "0" or all(k in os.environ for k in _MALLOC_ENV):
        return
    env = {**_MALLOC_ENV, **os.environ, "GNNLAB_MALLOC_TUNING": "0"}
    argv = [sys.executable, "-m", "gnnlab.train", *sys.argv[1:]]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, argv, env)


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="train")
def _hydra_train(cfg: DictConfig) -> float:
    """Train one model; returns the best monitored validation metric (for Hydra sweepers).

    Typed config values are checked first (:func:`gnnlab.config_schema.validate_config`; the model's
    once the data is loaded). Errors in the user's input end the run with one line and exit status 1;
    any other error is printed with its full traceback (also when Hydra's instantiation wrapped it)
    and exits with status 1.
    """
    try:
        validate_config(cfg, model=False)  # the model is checked once the data has given its facts
        from gnnlab.train.run import train

        return train(cfg)
    except Exception as err:
        if logging.getLogger().isEnabledFor(logging.DEBUG):
            raise
        cause = _unwrap(err)
        if isinstance(cause, USER_ERRORS):
            print(f"gnnlab-train: error: {type(cause).__name__}: {cause}", file=sys.stderr)
            raise SystemExit(1) from None
        if cause is not err:
            # Hydra would print only the wrapper's summary: show where in the code it failed.
            traceback.print_exception(cause)
            print(str(err), file=sys.stderr)
            raise SystemExit(1) from None
        raise


def train_main() -> None:
    """Entry point of ``gnnlab-train`` and ``python -m gnnlab.train``: Hydra app over ``conf/train.yaml``."""
    _reexec_with_malloc_settings()
    from gnnlab.train.rundir import register_resolvers

    register_resolvers()  # hydra.run.dir / hydra.sweep.dir (conf/hydra/default.yaml) use them
    _check_resume_argument(sys.argv[1:])
    _hydra_train()


def _check_resume_argument(args: list[str]) -> None:
    """Exit with one line when ``trainer.resume=`` names no folder.

    Hydra resolves the run folder (the resumed one) before any gnnlab code runs, and would print the
    resolver's error with its own traceback; this check comes first.
    """
    for arg in args:
        key, sep, value = arg.partition("=")
        if sep and key.lstrip("+~") == "trainer.resume" and value not in ("", "null", "None"):
            if not Path(value).expanduser().is_dir():
                print(f"gnnlab-train: error: ConfigError: trainer.resume={value}: no such run folder",
                      file=sys.stderr)
                raise SystemExit(1)


def topological_concentration_report(run_dir, out_dir=None, k: int = 1, hits_k: int | None = None,
                                     approximate: bool = False, bins: int = 10, split: str = "test"):
    """Per-node TC, degree and per-node Hits@K of a trained link-prediction run, as files.

    Rebuilds the run's data split and model from ``<run_dir>/config_resolved.yaml``, loads
    ``checkpoints/best.ckpt``, scores ``split`` (``"test"`` or ``"val"``) as the link task evaluates it
    and writes, through :func:`gnnlab.analysis.tc_report`, ``per_node.csv``, ``tc_bins.csv`` and
    ``performance_vs_tc.png`` to ``out_dir`` (default ``<run_dir>/topological_concentration``).
    TC is computed on the training graph (exactly for any ``k``, or with ATC when ``approximate``).

    Args:
        hits_k: K of the per-node Hits (default: the K of the run's first ``hits@K`` metric, else 100).

    Returns:
        The :class:`gnnlab.analysis.TCReport` of the written paths.
    """
    import torch
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from gnnlab.analysis import (approximate_topological_concentration, per_node_hits, tc_report,
                                 topological_concentration)
    from gnnlab.train.checkpoint import load_checkpoint
    from gnnlab.train.tasks import LinkPrediction

    run_dir = Path(run_dir)
    config, ckpt = run_dir / "config_resolved.yaml", run_dir / "checkpoints" / "best.ckpt"
    for path in (config, ckpt):
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: is {run_dir} the folder of a finished gnnlab-train run?")
    cfg = OmegaConf.load(config)
    target = cfg.data.module.get("_target_")
    if target not in ("gnnlab.data.linkpred.LinkDataModule", "gnnlab.data.LinkDataModule"):
        raise ValueError(f"{run_dir} is not a link-prediction run (data module {target})")
    if hits_k is None:
        named = [m for m in cfg.task.get("metrics", []) if str(m).startswith("hits@")]
        hits_k = int(str(named[0])[5:]) if named else 100
    datamodule = instantiate(cfg.data.module)
    model = instantiate(cfg.model)
    model.load_state_dict(load_checkpoint(ckpt)["model"])
    model.eval()
    (batch,) = datamodule.loader(split)
    with torch.no_grad():
        pos, neg = LinkPrediction().step(model, batch, split).outputs
    n = datamodule.split.num_nodes
    nodes, hits = per_node_hits(batch.pos, pos, neg, hits_k, num_nodes=n)
    tc_fn = approximate_topological_concentration if approximate else topological_concentration
    tc = tc_fn(datamodule.split.train_edge_index(), n, k=k)
    label = f"{'ATC' if approximate else 'TC'}^{k} (training graph)"
    return tc_report(tc, datamodule.graph.in_degree(), (nodes, hits),
                     Path(out_dir) if out_dir else run_dir / "topological_concentration",
                     bins=bins, metric=f"Hits@{hits_k} ({split})", title=f"{cfg.get('name', run_dir.name)}: {label}")


def _print_written(prog: str, write: Callable[[], Iterable[Path]]) -> int:
    """Run ``write()`` and print the paths it wrote (exit status 0), or an :data:`ARGUMENT_ERRORS` in one line (1)."""
    try:
        paths = write()
    except ARGUMENT_ERRORS as err:
        print(f"{prog}: error: {type(err).__name__}: {err}", file=sys.stderr)
        return 1
    for path in paths:
        print(f"written: {path}")
    return 0


def tc_main(argv: list[str] | None = None) -> int:
    """Entry point of ``gnnlab-tc``: Topological Concentration vs per-node performance of a link-prediction run."""
    parser = argparse.ArgumentParser(
        prog="gnnlab-tc",
        description="Write per-node Topological Concentration, degree and Hits@K of a trained link-prediction "
                    "run (per_node.csv, tc_bins.csv, performance_vs_tc.png).",
    )
    parser.add_argument("run_dir", help="folder of a finished gnnlab-train link-prediction run")
    parser.add_argument("--out", default=None, help="output folder (default <run_dir>/topological_concentration)")
    parser.add_argument("--k", type=int, default=1, help="hops of TC (default 1)")
    parser.add_argument("--hits-k", type=int, default=None, help="K of the per-node Hits (default: the run's metric)")
    parser.add_argument("--approximate", action="store_true", help="ATC (random projections) instead of exact TC")
    parser.add_argument("--bins", type=int, default=10, help="number of equal-width TC bins")
    parser.add_argument("--split", choices=["test", "val"], default="test")
    args = parser.parse_args(argv)
    return _print_written("gnnlab-tc", lambda: topological_concentration_report(
        args.run_dir, args.out, args.k, args.hits_k, args.approximate, args.bins, args.split))


def curves_main(argv: list[str] | None = None) -> int:
    """Entry point of ``gnnlab-curves``: learning curves (PNG + markdown) of one or more run folders."""
    parser = argparse.ArgumentParser(
        prog="gnnlab-curves",
        description="Plot metrics against the epoch from the metrics.csv of gnnlab-train runs (finished or "
                    "still running) and write a markdown summary next to the PNG.",
    )
    parser.add_argument("run_dirs", nargs="+", help="gnnlab-train run folders")
    parser.add_argument("--metrics", nargs="+", default=None,
                        help="columns of metrics.csv (default: the losses and each run's monitored metric)")
    parser.add_argument("--labels", nargs="+", default=None, help="one legend label per run")
    parser.add_argument("--title", default=None)
    parser.add_argument("--out", required=True, help="PNG path; the summary goes to the same path with .md")
    args = parser.parse_args(argv)
    from gnnlab.analysis.curves import plot_learning_curves

    return _print_written("gnnlab-curves", lambda: plot_learning_curves(
        args.run_dirs, args.metrics, args.out, args.labels, args.title))


def table_main(argv: list[str] | None = None) -> int:
    """Entry point of ``gnnlab-table`` (:mod:`gnnlab.table`): a benchmark name runs its table
    (:mod:`gnnlab.benchmark_table`); an experiment runs its seeds (unless ``--from-dir`` or ``--runs``) and
    writes the table."""
    from gnnlab import table
    from gnnlab.benchmark_table import main as benchmark_main
    from gnnlab.train.rundir import unique_dir

    parser = argparse.ArgumentParser(prog="gnnlab-table", description=table.__doc__.split("\n\n")[0])
    parser.add_argument("overrides", nargs="*",
                        help="a benchmark (conf/table/<name>.yaml, e.g. benchgnn_aqsol) or an experiment "
                             "(experiment=planetoid/gcn_cora), then Hydra overrides for every run")
    parser.add_argument("--seeds", type=int, default=None,
                        help="number of seeds 0..N-1 (default: the benchmark's, or 10 for one experiment)")
    parser.add_argument("--collect", action="store_true",
                        help="with a benchmark: tabulate the finished runs only, run nothing")
    parser.add_argument("--rows", nargs="+", default=None, metavar="EXPERIMENT",
                        help="with a benchmark: run only these rows (their experiments); the table shows every row")
    parser.add_argument("--out", type=Path, default=None, help="markdown file to write")
    parser.add_argument("--metric", default=None, help="metric key in results.json (default: benchmark.metric)")
    parser.add_argument("--from-dir", type=Path, nargs="+", default=None,
                        help="aggregate existing sweep folder(s) instead of running; several folders give one "
                             "summary row per folder")
    parser.add_argument("--runs", type=Path, nargs="+", default=None,
                        help="tabulate these single run folders, one row each, instead of running")
    parser.add_argument("--labels", nargs="+", default=None, help="with --runs: one row label per run")
    parser.add_argument("--sweep-dir", type=Path, default=None, help="where the runs go (default outputs/tables/<time>)")
    args = parser.parse_intermixed_args(argv)

    if args.seeds is not None and args.seeds < 1:
        parser.error(f"--seeds must be >= 1, got {args.seeds}")
    if args.runs is not None and args.from_dir is not None:
        parser.error("--runs and --from-dir are alternatives")
    if args.labels is not None and args.runs is None:
        parser.error("--labels goes with --runs")
    command = shlex.join(["gnnlab-table", *(argv if argv is not None else sys.argv[1:])])
    if args.overrides and "=" not in args.overrides[0]:  # a whole benchmark table
        if args.runs is not None or args.from_dir is not None:
            parser.error("a benchmark name goes without --runs and --from-dir")
        try:
            return benchmark_main(args.overrides[0], args.overrides[1:], args.seeds, args.sweep_dir, args.out,
                                  args.collect, command, args.rows)
        except (FileNotFoundError, KeyError, ValueError, RuntimeError) as err:
            print(f"gnnlab-table: error: {err}", file=sys.stderr)
            return 2
    if args.collect:
        parser.error("--collect goes with a benchmark name")
    if args.rows is not None:
        parser.error("--rows goes with a benchmark name")
    args.seeds = args.seeds or 10
    summary = args.from_dir is not None and len(args.from_dir) > 1
    if args.from_dir is not None:
        sweep_dir = args.from_dir[0]
    elif args.runs is None:
        if not any(o.startswith("experiment=") for o in args.overrides):
            parser.error("name an experiment, e.g. experiment=planetoid/gcn_cora")
        # A table started in the same second as another gets its own folder (-1, -2, ...).
        sweep_dir = args.sweep_dir or unique_dir(Path("outputs") / "tables" / time.strftime("%Y-%m-%d_%H-%M-%S"))
        seeds = ",".join(str(s) for s in range(args.seeds))
        cmd = [sys.executable, "-m", "gnnlab.train", "-m", *args.overrides, f"seed={seeds}",
               f"hydra.sweep.dir={sweep_dir}", "hydra.sweep.subdir=${hydra.job.num}"]
        print("running:", " ".join(cmd), flush=True)
        proc = subprocess.run(cmd)
        if proc.returncode != 0:
            print(f"gnnlab-table: the runs failed (exit code {proc.returncode})", file=sys.stderr)
            return proc.returncode
    try:
        if args.runs is not None:  # one row per single run
            out = args.out or Path("runs.md")
            text = table.write_runs(args.runs, out, args.labels, args.metric, command)
        elif summary:  # one row per sweep
            out = args.out or Path("summary.md")
            text = table.write_summary([table._collect(d) for d in args.from_dir], out, command)
        else:
            runs, benchmark = table._collect(sweep_dir)
            out = args.out or sweep_dir / "table.md"
            text = table.write_table(runs, benchmark, out, args.metric, command)
    except (FileNotFoundError, KeyError, ValueError) as err:
        print(f"gnnlab-table: error: {err}", file=sys.stderr)
        return 2
    print(text)
    print(f"written: {out} and {out.with_suffix('.csv')}")
    return 0
