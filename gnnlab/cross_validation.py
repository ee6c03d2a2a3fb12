"""k-fold model selection and assessment: the fair-comparison protocol of Errica, Podda, Bacciu & Micheli,
"A Fair Comparison of Graph Neural Networks for Graph Classification", ICLR 2020.

An experiment opts in with a ``model_selection`` block (``conf/experiment/tu/``)::

    model_selection:
      folds: 10                           # outer folds, set through fold_key
      fold_key: data.module.splits.fold
      metric: val/accuracy                # selection score: this metric at the run's best epoch
      mode: max
      assessment_runs: 3                  # the selected configuration is trained this many times per fold
      grid:                               # axes; a value is one or more space-separated overrides
        - [data.module.batch_size=32, data.module.batch_size=128]
        - ["model.hidden_channels=64 model.num_layers=4", "model.hidden_channels=32 model.num_layers=2"]

For every outer fold ``k`` (its test part never seen during selection), every point of the grid is trained on
the fold's inner training part with early stopping on its inner validation part, and scored by ``metric`` at
its best epoch. The best point is then trained ``assessment_runs`` times (seeds ``0..R-1``) and the fold's
score is the mean of their test metric; a table reports mean ± std over the folds. A benchmark table row
(``conf/table``) may replace the ``grid`` (a reduced search: the cell is then marked reduced budget).

Folders: ``<row>/fold_<k>/select/<i>`` (grid point ``i``) and ``<row>/fold_<k>/assess/<seed>``.
"""
from __future__ import annotations

import itertools
import json
import statistics
import sys
from pathlib import Path

from omegaconf import OmegaConf

from gnnlab import sweeps
from gnnlab.errors import ConfigError
from gnnlab.files import config_dir
from gnnlab.table import _budget_overrides

SPEC_KEYS = {"folds", "fold_key", "metric", "mode", "assessment_runs", "grid"}


def model_selection(experiment: str, replace: dict | None = None) -> dict | None:
    """The experiment's ``model_selection`` block (read from its file, not composed), with ``replace`` merged
    over it, checked; ``None`` when the experiment has none."""
    path = config_dir() / "experiment" / f"{experiment}.yaml"
    block = OmegaConf.to_container(OmegaConf.load(path)).get("model_selection") if path.is_file() else None
    if block is None:
        if replace:
            raise ConfigError(f"a table row replaces the model_selection of {experiment}, which has none")
        return None
    spec = {"metric": "val/accuracy", "mode": "max", "assessment_runs": 3, **block, **(replace or {})}
    if unknown := set(spec) - SPEC_KEYS:
        raise ConfigError(f"{experiment}: unknown model_selection keys {sorted(unknown)} (known: {sorted(SPEC_KEYS)})")
    for key in ("folds", "fold_key", "grid"):
        if not spec.get(key):
            raise ConfigError(f"{experiment}: model_selection.{key} is missing")
    if spec["mode"] not in ("min", "max"):
        raise ConfigError(f"{experiment}: model_selection.mode must be min or max, got {spec['mode']!r}")
    if not all(isinstance(axis, list) and axis for axis in spec["grid"]):
        raise ConfigError(f"{experiment}: model_selection.grid must be a list of non-empty lists of overrides")
    spec["full_grid"] = len(grid_points(block["grid"]))
    return spec


def grid_points(grid: list[list[str]]) -> list[list[str]]:
    """Every combination of one value per axis, as a flat list of overrides."""
    return [[o for value in combo for o in str(value).split()] for combo in itertools.product(*grid)]


def _result(run_dir: Path) -> dict:
    return json.loads((run_dir / "results.json").read_text())


def run_folds(spec: dict, row_dir: Path, overrides: list[str], name: str) -> None:
    """Run what is missing of the protocol under ``row_dir`` (finished runs are reused; see the module doc)."""
    points = grid_points(spec["grid"])
    for k in range(spec["folds"]):
        fold_dir = row_dir / f"fold_{k}"
        fold = [*overrides, f"{spec['fold_key']}={k}"]
        todo = []
        for i, point in enumerate(points):
            run_dir = fold_dir / "select" / str(i)
            if sweeps.run_state(run_dir) == "finished":
                sweeps.check_same_overrides(run_dir, [*fold, *point])
                continue
            if run_dir.exists():  # stopped part-way: kept aside, run again
                sweeps.set_aside(run_dir)
            todo.append(i)
        print(f"{name}: fold {k}: model selection, {len(points) - len(todo)} of {len(points)} grid points done",
              flush=True)
        for i in todo:  # one process per grid point: the points differ in several keys at once
            sweeps.run_command([sys.executable, "-m", "gnnlab.train", *fold, *points[i], "seed=0",
                                f"hydra.run.dir={fold_dir / 'select' / str(i)}"])
        best = select(spec, fold_dir, len(points))
        assess = fold_dir / "assess"
        missing = [s for s in range(spec["assessment_runs"]) if sweeps.run_state(assess / str(s)) != "finished"]
        print(f"{name}: fold {k}: grid point {best} selected ({' '.join(points[best])}); "
              f"{spec['assessment_runs'] - len(missing)} of {spec['assessment_runs']} assessment runs done", flush=True)
        if missing:
            sweeps.run_command([sys.executable, "-m", "gnnlab.train", "-m", *fold, *points[best],
                                f"seed={','.join(map(str, missing))}", f"hydra.sweep.dir={assess}",
                                "hydra.sweep.subdir=${seed}"])


def select(spec: dict, fold_dir: Path, num_points: int) -> int:
    """The grid point with the best selection score (``spec['metric']`` at each run's best epoch)."""
    scores = []
    for i in range(num_points):
        final = _result(fold_dir / "select" / str(i)).get("final", {})
        if spec["metric"] not in final:
            raise KeyError(f"{fold_dir / 'select' / str(i)}/results.json has no {spec['metric']!r} (has {sorted(final)})")
        scores.append(final[spec["metric"]])
    pick = max if spec["mode"] == "max" else min
    return scores.index(pick(scores))


def collect_folds(spec: dict, row_dir: Path, metric: str, key: str) -> list[dict]:
    """One entry per fold whose assessment runs all finished, shaped like a run of :func:`gnnlab.table._collect`:
    the fold's score (``results.json[key][metric]`` averaged over its assessment runs) under ``final``/``last``."""
    folds = []
    for k in range(spec["folds"]):
        assess = row_dir / f"fold_{k}" / "assess"
        runs = [assess / str(s) for s in range(spec["assessment_runs"])]
        if not all((r / "results.json").is_file() for r in runs):
            continue
        results = [_result(r) for r in runs]
        score = statistics.fmean(float(r[key][metric]) for r in results)
        budget = sorted({o for r in runs for o in _budget_overrides(r)})
        if len(grid_points(spec["grid"])) < spec["full_grid"]:
            budget.append(f"grid of {len(grid_points(spec['grid']))} of {spec['full_grid']} points")
        folds.append({"seed": k, "dir": str(assess.parent), "budget": budget, "final": {metric: score},
                      "last": {metric: score}, "best_epoch": round(statistics.fmean(r["best_epoch"] for r in results)),
                      "epochs_run": round(statistics.fmean(r.get("epochs_run", 0) for r in results))})
    return folds
