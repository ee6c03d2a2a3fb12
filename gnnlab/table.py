"""``gnnlab-table``: reproduce published cells over several seeds and write markdown tables.

This module reads finished runs and writes the tables; the command (:func:`gnnlab.cli.table_main`) runs
them. Usage::

    gnnlab-table benchgnn_aqsol --out results/benchgnn_aqsol.md        # every row of a benchmark table
    gnnlab-table experiment=planetoid/gcn_cora --seeds 10 --out t.md   # one cell
    gnnlab-table --from-dir outputs/multiruns/<sweep> --out table.md   # aggregate an existing sweep
    gnnlab-table --from-dir <sweep1> <sweep2> ... --out summary.md     # one row per sweep
    gnnlab-table --runs <run1> <run2> ... --labels A B --out runs.md    # one row per single run

A benchmark name runs a whole table (:mod:`gnnlab.benchmark_table`). Published cells (paper, table, value
and std) live in the benchmark tables, ``conf/table/<benchmark>.yaml``; a run's experiment finds its cell
there (a config of one's own may still put ``published``/``published_std`` in its ``benchmark`` block). The
experiment's ``benchmark`` block names the metric, its scale and the protocol: ``protocol: best`` (the
default) scores the weights of the best validation epoch (``results.json``'s ``final``), ``protocol:
last`` the final epoch's model (``last``; Benchmarking-GNNs and the GT paper report that). Extra
``key=value`` arguments are passed to every run as Hydra overrides. Each run writes ``results.json``; the
table lists every seed's value, then mean ± std (sample standard deviation) beside the published number,
and a CSV with the per-seed values. Each cell gets a status: ``reproduced`` (mean within the paper's std,
or the cell's ``tolerance``), ``not reproduced``, or ``reduced budget`` when a run's overrides changed its
budget (printed under the title). ``--runs`` tabulates single runs (say, reduced-budget or diagnostic
ones): the benchmark metric at the best-validation epoch and of the final epoch. Every table's first line
is the command that wrote it.
"""
from __future__ import annotations

import csv
import json
import math
import statistics
from pathlib import Path

from omegaconf import OmegaConf

from gnnlab.errors import ConfigError
from gnnlab.published import published_cell


def _config(run_dir: Path):
    """The run's composed config: Hydra's ``.hydra/config.yaml`` or the ``config_resolved.yaml`` every run writes."""
    hydra_config = run_dir / ".hydra" / "config.yaml"
    return OmegaConf.load(hydra_config if hydra_config.is_file() else run_dir / "config_resolved.yaml")


#: Overrides that shorten a run (epochs, stopping, schedule, data sizes): a cell run with one is "reduced budget".
BUDGET_KEYS = ("trainer.max_epochs", "trainer.patience", "trainer.min_lr", "trainer.loss_window_stop", "scheduler.",
               "data.module.splits.num_")


def run_overrides(run_dir: Path) -> list[str]:
    """The run's command-line overrides, as Hydra recorded them (``.hydra/overrides.yaml``)."""
    path = run_dir / ".hydra" / "overrides.yaml"
    return OmegaConf.to_container(OmegaConf.load(path)) if path.is_file() else []


def _budget_overrides(run_dir: Path) -> list[str]:
    """The run's overrides that change its budget (:data:`BUDGET_KEYS`)."""
    return [o for o in run_overrides(run_dir) if o.lstrip("+~").startswith(BUDGET_KEYS)]


def _experiment(run_dir: Path) -> str | None:
    """The ``experiment=`` the run was started with, if any."""
    return next((o.split("=", 1)[1] for o in run_overrides(run_dir) if o.startswith("experiment=")), None)


def _collect(sweep_dir: Path) -> tuple[list[dict], dict]:
    """The finished runs under ``sweep_dir`` and their ``benchmark`` block, completed by the published cell of
    their experiment in ``conf/table`` (:func:`gnnlab.published.published_cell`)."""
    runs, benchmark, cells = [], {}, {}
    for result_file in sorted(sweep_dir.glob("*/results.json"), key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0):
        run_dir = result_file.parent
        cfg = _config(run_dir)
        block = OmegaConf.to_container(cfg.get("benchmark") or {}, resolve=False)
        experiment = _experiment(run_dir)
        if experiment and experiment not in cells:
            cells[experiment] = published_cell(experiment)
        benchmark = {**block, **cells.get(experiment, {})} or benchmark
        runs.append({"seed": int(cfg.seed), "dir": str(run_dir), "budget": _budget_overrides(run_dir),
                     **json.loads(result_file.read_text())})
    if not runs:
        raise FileNotFoundError(f"no */results.json under '{sweep_dir}': did the runs finish?")
    return runs, benchmark


# benchmark.protocol -> (results.json key, how the table describes it)
PROTOCOLS = {
    "best": ("final", "at the epoch of best validation score"),
    "last": ("last", "of the final epoch's model"),
}


def _protocol(benchmark: dict) -> str:
    protocol = benchmark.get("protocol") or "best"
    if protocol not in PROTOCOLS:
        raise ConfigError(f"benchmark.protocol must be one of {sorted(PROTOCOLS)}, got {protocol!r}")
    return protocol


def _metric(run: dict, name: str, protocol: str = "best") -> float:
    key = PROTOCOLS[protocol][0]
    values = run.get(key)
    if values is None:
        raise KeyError(f"{run['dir']}/results.json has no {key!r} metrics (protocol {protocol!r}; written by an "
                       "older gnnlab?)")
    if values.get(name) is None:
        raise KeyError(f"metric {name!r} not in {run['dir']}/results.json [{key!r}] (has {sorted(values)})")
    return float(values[name])


def _digits(benchmark: dict) -> int:
    """Decimals to print: as many as the published value has (at least 2)."""
    published = str(benchmark.get("published") or "")
    return max(2, len(published.split(".")[1]) if "." in published else 0)


def _budget(runs: list[dict]) -> list[str]:
    return sorted({o for r in runs for o in r.get("budget", [])})


def _status(mean: float, benchmark: dict, runs: list[dict] = ()) -> str:
    """``reduced budget`` when a run overrode its budget (:data:`BUDGET_KEYS`); else ``reproduced`` when ours
    is within the paper's std of its value, ``not reproduced`` otherwise; ``no published std`` or ``—`` when
    there is nothing to judge by. A stated ``benchmark.tolerance`` replaces the std and the status says so."""
    if _budget(runs):
        return "reduced budget"
    published, tolerance = benchmark.get("published"), benchmark.get("tolerance", benchmark.get("published_std"))
    if published is None:
        return "—"
    if tolerance is None:
        return "no published std"
    status = "reproduced" if abs(mean - float(published)) <= float(tolerance) else "not reproduced"
    return status + (f" (stated tolerance ±{float(tolerance):g})" if "tolerance" in benchmark else "")


def _summary(runs: list[dict], benchmark: dict, metric: str) -> tuple[list[float], float, float, str, str]:
    """Scaled per-seed values, their mean and sample std, and the published value and difference as text."""
    scale = float(benchmark.get("scale", 1) or 1)
    protocol = _protocol(benchmark)
    values = [_metric(r, metric, protocol) * scale for r in runs]
    mean = statistics.fmean(values)
    std = statistics.stdev(values) if len(values) > 1 else float("nan")
    published, published_std = benchmark.get("published"), benchmark.get("published_std")
    digits = _digits(benchmark)
    pub = "—" if published is None else (f"{float(published):.{digits}f}"
                                         + (f" ± {float(published_std):.{digits}f}" if published_std else ""))
    delta = "—" if published is None else f"{mean - float(published):+.{digits}f}"
    return values, mean, std, pub, delta


def mean_std(mean: float, std: float, digits: int) -> str:
    """``mean ± std``, or the mean alone marked as one seed's (a sample std needs two)."""
    if math.isnan(std):
        return f"{mean:.{digits}f} (one seed, no std)"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def _write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def _write(out: Path, lines: list[str], command: str, header: list[str], rows: list[list]) -> str:
    """Write the markdown ``out`` (first line: the command that made it) and the CSV beside it; return the markdown."""
    if command:
        lines = [f"Command: `{command}`", "", *lines]
    text = "\n".join(lines) + "\n"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    _write_csv(out.with_suffix(".csv"), header, rows)
    return text


def write_table(runs: list[dict], benchmark: dict, out: Path, metric: str | None = None, command: str = "") -> str:
    """Write ``out`` (markdown) and ``out`` with ``.csv`` suffix; return the markdown."""
    metric = metric or benchmark.get("metric")
    if not metric:
        raise ValueError("no metric: pass --metric or set benchmark.metric in the experiment config")
    scale = float(benchmark.get("scale", 1) or 1)
    values, mean, std, pub, delta = _summary(runs, benchmark, metric)
    digits = _digits(benchmark)
    lines = [
        f"# {benchmark.get('cell', 'result')} — {benchmark.get('paper', '')}",
        "",
        f"Metric `{metric}` (×{scale:g}) {PROTOCOLS[_protocol(benchmark)][1]}, {len(values)} seeds.",
        *([f"Reduced budget: {', '.join(f'`{o}`' for o in _budget(runs))}."] if _budget(runs) else []),
        "",
        "| cell | ours (mean ± std) | published | difference | seeds | status |",
        "|---|---|---|---|---|---|",
        f"| {benchmark.get('cell', '')} ({benchmark.get('table', '')}) | {mean_std(mean, std, digits)} | {pub} "
        f"| {delta} | {len(values)} | {_status(mean, benchmark, runs)} |",
        "",
        "| seed | value | best epoch | epochs run |",
        "|---|---|---|---|",
    ]
    lines += [f"| {r['seed']} | {v:.{digits}f} | {r['best_epoch']} | {r.get('epochs_run', '—')} |"
              for r, v in zip(runs, values)]
    rows = [[r["seed"], v, r["best_epoch"], r.get("epochs_run"), r["dir"]] for r, v in zip(runs, values)]
    return _write(out, lines, command, ["seed", metric, "best_epoch", "epochs_run", "run_dir"], rows)


def write_summary(sweeps: list[tuple[list[dict], dict]], out: Path, command: str = "") -> str:
    """One row per experiment (ours mean ± std beside the published value); writes ``out`` and its ``.csv``."""
    lines = [
        "| cell | paper | ours (mean ± std) | published | difference | seeds | scored | status |",
        "|---|---|---|---|---|---|---|---|",
    ]
    rows, notes = [], []
    for runs, benchmark in sweeps:
        metric = benchmark.get("metric")
        if not metric:
            raise ValueError(f"no benchmark.metric in the config of {runs[0]['dir']}")
        values, mean, std, pub, delta = _summary(runs, benchmark, metric)
        cell = benchmark.get("cell", "")
        digits = _digits(benchmark)
        source = f"{benchmark.get('paper', '')}, {benchmark.get('table', '')}"
        lines.append(f"| {cell} | {source} | {mean_std(mean, std, digits)} | {pub} | {delta} | {len(values)} "
                     f"| {PROTOCOLS[_protocol(benchmark)][1]} | {_status(mean, benchmark, runs)} |")
        if _budget(runs):
            notes.append(f"{cell}: reduced budget, {', '.join(f'`{o}`' for o in _budget(runs))}.")
        rows.append([cell, metric, f"{mean:.4f}", "" if math.isnan(std) else f"{std:.4f}", benchmark.get("published"),
                     benchmark.get("published_std"), len(values), _status(mean, benchmark, runs)])
    lines = [*notes, "", *lines] if notes else lines
    return _write(out, lines, command,
                  ["cell", "metric", "mean", "std", "published", "published_std", "seeds", "status"], rows)


def write_runs(run_dirs: list[Path], out: Path, labels: list[str] | None = None, metric: str | None = None,
               command: str = "") -> str:
    """One row per run folder: epochs, seconds per epoch, and the metric (``benchmark.metric`` unless given,
    unscaled) at the best-validation epoch and of the final epoch; writes ``out`` and its ``.csv``."""
    from gnnlab.analysis.curves import read_metrics

    labels = labels or [d.name for d in run_dirs]
    if len(labels) != len(run_dirs):
        raise ValueError(f"{len(labels)} labels for {len(run_dirs)} runs")
    lines = ["| run | metric | epochs run | s / epoch | best epoch (validation) | at the best-validation epoch "
             "| of the final epoch |", "|---|---|---|---|---|---|---|"]
    rows = []
    for run_dir, label in zip(run_dirs, labels):
        if not (run_dir / "results.json").is_file():
            raise FileNotFoundError(f"no results.json in '{run_dir}': did the run finish?")
        run = {"dir": str(run_dir), **json.loads((run_dir / "results.json").read_text())}
        name = metric or (_config(run_dir).get("benchmark") or {}).get("metric")
        if not name:
            raise ValueError(f"no metric: pass --metric or set benchmark.metric in the config of {run_dir}")
        epochs = read_metrics(run_dir) if (run_dir / "metrics.csv").is_file() else []
        seconds = statistics.fmean([r.get("time/epoch_s", math.nan) for r in epochs]) if epochs else math.nan
        best = _metric(run, name, "best")
        # The final epoch's model: results.json's ``last``, or (runs from before it was written) metrics.csv's last row.
        last = float((run.get("last") or {}).get(name, epochs[-1].get(name, math.nan) if epochs else math.nan))
        text = ["—" if math.isnan(v) else f"{v:.{d}f}" for v, d in ((seconds, 0), (best, 4), (last, 4))]
        lines.append(f"| {label} | `{name}` | {run.get('epochs_run', '—')} | {text[0]} | {run['best_epoch']} "
                     f"({run['monitor']} {run['best_value']:.4f}) | {text[1]} | {text[2]} |")
        rows.append([label, name, run.get("epochs_run"), f"{seconds:.1f}", run["best_epoch"], run["monitor"],
                     run["best_value"], best, last, str(run_dir)])
    return _write(out, lines, command, ["run", "metric", "epochs_run", "s_per_epoch", "best_epoch", "monitor",
                                        "best_value", "at_best_epoch", "final_epoch", "run_dir"], rows)
