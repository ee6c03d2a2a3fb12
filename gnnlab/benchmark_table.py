"""Whole benchmark tables: ``gnnlab-table <benchmark>`` runs every row of a published table over its seeds.

A benchmark is one file, ``conf/table/<benchmark>.yaml`` (or any ``.yaml`` path): the table's title, the
paper, the number of seeds, overrides given to every run, and its rows. A row names the experiment that
reproduces one published cell and the cell's citation and value::

    title: "Benchmarking GNNs: AQSOL, 100k parameter budget (L = 4)"
    paper: "Dwivedi et al., JMLR 2023"
    seeds: 4
    overrides: []                    # optional: Hydra overrides for every run
    rows:
      - experiment: benchgnn/gcn_aqsol
        cell: "GCN / AQSOL (MAE)"
        table: "100k-budget results (L = 4)"   # where in the paper
        published: 1.372
        published_std: 0.020
        # optional: paper (when it differs from the file's), tolerance (replaces the std when judging),
        # note (why a value is missing), overrides (this row only)

These files are the only place published values are written; the experiment's ``benchmark`` block says how
a run is scored (metric, scale, protocol, parameter budget). Runs go to ``<sweep root>/<experiment>/<seed>``
(one Hydra multirun per row over the seeds it still needs). Running the command again collects the finished
runs, resumes interrupted ones from their last checkpoint, and runs only what is missing.
"""
from __future__ import annotations

import math
import sys
import textwrap
from pathlib import Path

from omegaconf import OmegaConf

from gnnlab import sweeps
from gnnlab.cross_validation import collect_folds, model_selection, run_folds
from gnnlab.errors import ConfigError
from gnnlab.published import cell_of, load_table
from gnnlab.table import (PROTOCOLS, _budget, _collect, _config, _digits, _protocol, _status, _summary, _write,
                          _write_csv, mean_std)


def run_rows(table: dict, root: Path, seeds: int, extra: list[str] = (),
             only: list[str] | None = None) -> dict[str, str | None]:
    """Run what the table still needs under ``root``: a Hydra multirun per row over its missing seeds, a resume
    for each run that stopped after a checkpoint; finished runs are kept. A row whose runs fail (say, its data
    cannot be downloaded) does not stop the others; returns ``{cell: reason}`` for the rows that failed (the
    reason is the run's last error line, or ``None``).

    ``only``: run just the rows of these experiments (the others are collected as they are)."""
    experiments = [row["experiment"] for row in table["rows"]]
    if only is not None and (unknown := [e for e in only if e not in experiments]):
        raise ConfigError(f"--rows {' '.join(unknown)}: not a row of benchmark {table['name']!r} "
                          f"(its rows: {', '.join(experiments)})")
    failed = {}
    for i, row in enumerate(table["rows"]):
        if only is not None and row["experiment"] not in only:
            continue
        try:
            _run_row(table, row, root, seeds, list(extra), f"[{i + 1}/{len(table['rows'])}] {row['cell']}")
        except RuntimeError as err:
            print(f"{row['cell']}: {err}", file=sys.stderr, flush=True)
            failed[row["cell"]] = getattr(err, "reason", None)
    return failed


def _run_row(table: dict, row: dict, root: Path, seeds: int, extra: list[str], name: str) -> None:
    overrides = [f"experiment={row['experiment']}", *table["overrides"], *row.get("overrides", []), *extra]
    row_dir = root / row["experiment"]
    spec = model_selection(row["experiment"], row.get("model_selection"))
    if spec is not None:  # k-fold model selection and assessment instead of seeds
        return run_folds(spec, row_dir, overrides, name)
    missing = []
    for seed in range(seeds):
        run_dir = row_dir / str(seed)
        state = sweeps.run_state(run_dir)
        if state in ("finished", "interrupted"):
            sweeps.check_same_overrides(run_dir, overrides)
        if state == "interrupted":
            print(f"{name}: resuming seed {seed} ({run_dir})", flush=True)
            sweeps.run_command([sys.executable, "-m", "gnnlab.train", f"trainer.resume={run_dir}"])
        elif state == "empty":  # stopped before its first checkpoint: kept aside, run again
            sweeps.set_aside(run_dir)
            missing.append(seed)
        elif state == "missing":
            missing.append(seed)
    print(f"{name}: {seeds - len(missing)} of {seeds} seeds done" + (f", running seeds {missing}" if missing else ""),
          flush=True)
    if missing:
        sweeps.run_command([sys.executable, "-m", "gnnlab.train", "-m", *overrides,
                            f"seed={','.join(map(str, missing))}", f"hydra.sweep.dir={row_dir}",
                            "hydra.sweep.subdir=${seed}"])


def collect_rows(table: dict, root: Path, seeds: int) -> list[tuple[dict, list[dict], dict]]:
    """``(row, runs, benchmark)`` for every row with finished runs under ``root`` (the first ``seeds`` seeds)."""
    collected = []
    for row in table["rows"]:
        row_dir = root / row["experiment"]
        spec = model_selection(row["experiment"], row.get("model_selection"))
        if spec is not None:
            configs = sorted(row_dir.glob("fold_*/assess/*/.hydra/config.yaml"))
            if not configs:
                continue
            block = OmegaConf.to_container(_config(configs[0].parents[1]).get("benchmark") or {})
            folds = collect_folds(spec, row_dir, block["metric"], PROTOCOLS[_protocol(block)][0])
            if folds:
                collected.append((row, folds, {**block, **cell_of(row), "folds": spec["folds"]}))
            continue
        if not any((row_dir / str(s) / "results.json").is_file() for s in range(seeds)):
            continue
        runs, block = _collect(row_dir)
        runs = [r for r in runs if r["seed"] < seeds and Path(r["dir"]).name == str(r["seed"])]
        collected.append((row, runs, {**block, **cell_of(row)}))
    return collected


def write_benchmark_table(table: dict, collected: list, out: Path, command: str = "",
                          failed: dict[str, str | None] | None = None) -> str:
    """The table (markdown ``out``), one CSV row per cell (``out.csv``), one per run (``<out>_seeds.csv``) and
    the plot of ours against the published values (``out.png``); returns the markdown. ``failed``: ``{cell:
    reason}`` of the rows whose runs failed in this call; each reason becomes a note under the table."""
    failed = failed or {}

    by_experiment = {row["experiment"]: (runs, bench) for row, runs, bench in collected}
    lines = [f"# {table['title']}", "", f"Source: {table['paper']} (rows citing another paper name it).",
             f"Seeds: {table['seeds']} per row (0..{table['seeds'] - 1}); ± is the sample standard deviation."]
    if any("folds" in bench for *_, bench in collected):
        lines.append("Rows with model selection (k-fold, `gnnlab.cross_validation`): mean ± std over the outer "
                     "folds, each fold the mean test score of its selected configuration's assessment runs; "
                     "the seeds column counts folds.")
    budget = sorted({o for _, runs, _ in collected for o in _budget(runs)})
    if budget:
        lines.append(f"Reduced budget: {', '.join(f'`{o}`' for o in budget)}.")
    lines += ["", "| cell | source | ours (mean ± std) | published | difference | seeds | scored | status |",
              "|---|---|---|---|---|---|---|---|"]
    cells, seed_rows, plotted, notes = [], [], [], []
    for row in table["rows"]:
        source = (f"{row['paper']}, " if row["paper"] != table["paper"] else "") + str(row["table"])
        if row.get("note"):
            notes.append(f"- {row['cell']}: {row['note']}")
        if failed.get(row["cell"]):  # also when some of its seeds finished before the failure
            notes.append(f"- {row['cell']}: run failed: {failed[row['cell']]}")
        if row["experiment"] not in by_experiment:
            published = ("—" if row["published"] is None else str(row["published"])
                         + (f" ± {row['published_std']}" if row.get("published_std") is not None else ""))
            status = "run failed" if row["cell"] in failed else "not run"
            lines.append(f"| {row['cell']} | {source} | {status} | {published} | — | 0 | — | {status} |")
            cells.append([row["cell"], row["experiment"], "", "", "", row["published"], row.get("published_std"), 0,
                          status])
            continue
        runs, bench = by_experiment[row["experiment"]]
        values, mean, std, pub, delta = _summary(runs, bench, bench["metric"])
        digits, status = _digits(bench), _status(mean, bench, runs)
        expected = bench.get("folds", table["seeds"])
        if len(values) < expected:  # a partial row is not judged
            status = f"incomplete ({len(values)} of {expected})"
        lines.append(f"| {row['cell']} | {source} | {mean_std(mean, std, digits)} | {pub} | {delta} "
                     f"| {len(values)} | {PROTOCOLS[_protocol(bench)][1]} | {status} |")
        std_text = "" if math.isnan(std) else f"{std:.6g}"
        cells.append([row["cell"], row["experiment"], bench["metric"], f"{mean:.6g}", std_text, row["published"],
                      row.get("published_std"), len(values), status])
        seed_rows += [[row["cell"], row["experiment"], r["seed"], v, r["best_epoch"], r.get("epochs_run"), r["dir"]]
                      for r, v in zip(runs, values)]
        plotted.append((row, bench["metric"], values, mean, std))
    if notes:
        lines += ["", "Notes:", *notes]
    text = _write(out, lines, command, ["cell", "experiment", "metric", "mean", "std", "published", "published_std",
                                        "seeds", "status"], cells)
    _write_csv(out.with_name(out.stem + "_seeds.csv"), ["cell", "experiment", "seed", "value", "best_epoch",
                                                        "epochs_run", "run_dir"], seed_rows)
    if plotted:
        plot_table(table, plotted, out.with_suffix(".png"))
    return text


def plot_table(table: dict, plotted: list, out: Path) -> Path:
    """One panel per metric: each cell's seeds (dots), our mean ± std and the published mean ± std; the legend
    goes below the panels, where it hides no point."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    metrics = list(dict.fromkeys(metric for _, metric, *_ in plotted))
    height = 1.6 + 0.45 * len(plotted) + 0.6 * len(metrics)
    fig = Figure(figsize=(7, height))
    FigureCanvasAgg(fig)
    heights = [sum(m == metric for _, m, *_ in plotted) for metric in metrics]
    axes = fig.subplots(len(metrics), 1, squeeze=False, gridspec_kw={"height_ratios": heights})[:, 0]
    labelled: set[str] = set()

    def label(name: str) -> str | None:  # each series once in the legend, whichever row shows it first
        if name in labelled:
            return None
        labelled.add(name)
        return name

    for ax, metric in zip(axes, metrics):
        rows = [p for p in plotted if p[1] == metric]
        for y, (row, _, values, mean, std) in enumerate(rows):
            ax.scatter(values, [y + 0.12] * len(values), s=9, color="tab:blue", alpha=0.4)
            ax.errorbar(mean, y + 0.12, xerr=0 if math.isnan(std) else std, fmt="o", color="tab:blue", capsize=3,
                        label=label("gnnlab (mean ± std; dots: runs)"))
            if row["published"] is not None:
                ax.errorbar(float(row["published"]), y - 0.12, xerr=float(row.get("published_std") or 0), fmt="s",
                            color="tab:orange", capsize=3, label=label("published (mean ± std)"))
        ax.set_yticks(range(len(rows)), [r[0]["cell"] for r in rows])
        ax.set_ylim(-0.6, len(rows) - 0.4)
        ax.invert_yaxis()
        # Right-aligned: centred under axes narrowed by long row labels, it would run off the figure.
        ax.set_xlabel(f"{metric} (scaled as published)", loc="right")
        ax.grid(axis="x", alpha=0.3)
    fig.legend(loc="lower center", ncol=len(labelled), fontsize="small", frameon=False)  # every panel's labels
    # Right-aligned and wrapped: long row labels leave the axes narrow, so a centred title would leave the figure.
    axes[0].set_title(textwrap.fill(table["title"], 60), fontsize="medium", loc="right")
    fig.tight_layout(rect=(0, 0.35 / height, 1, 1))
    fig.savefig(out, dpi=120)
    return out


def main(name: str, overrides: list[str], seeds: int | None, sweep_dir: Path | None, out: Path | None,
         collect_only: bool, command: str, rows: list[str] | None = None) -> int:
    """``gnnlab-table <benchmark>``: run (unless ``collect_only``) and tabulate a whole benchmark; ``rows`` (row
    experiments) runs only those rows and tabulates every row that has finished runs."""
    table = load_table(name)
    seeds = seeds or table["seeds"]
    table["seeds"] = seeds
    root = sweep_dir or Path("outputs") / "tables" / table["name"]
    failed = [] if collect_only else run_rows(table, root, seeds, overrides, rows)
    collected = collect_rows(table, root, seeds)
    if not collected:
        raise FileNotFoundError(f"no finished runs of benchmark {table['name']!r} under '{root}'")
    out = out or root / f"{table['name']}.md"
    text = write_benchmark_table(table, collected, out, command, failed)
    print(text)
    print(f"written: {out}, {out.with_suffix('.csv')}, {out.with_name(out.stem + '_seeds.csv')} and "
          f"{out.with_suffix('.png')}")
    if failed:
        print(f"gnnlab-table: runs failed for {', '.join(failed)} (their errors are above)", file=sys.stderr)
    return 1 if failed else 0
