"""Learning curves of finished (or running) training runs, read from their ``metrics.csv``."""
from __future__ import annotations

import csv
import json
import math
import shlex
from pathlib import Path

__all__ = ["default_metrics", "read_metrics", "plot_learning_curves"]


def read_metrics(run_dir: str | Path) -> list[dict[str, float]]:
    """The per-epoch rows of ``<run_dir>/metrics.csv`` as floats (empty cells become NaN)."""
    path = Path(run_dir) / "metrics.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir}: no metrics.csv (is it a gnnlab-train run folder?)")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise ValueError(f"{path}: no epoch has been logged yet")
    return [{k: float(v) if v not in ("", None) else math.nan for k, v in row.items()} for row in rows]


def default_metrics(run_dirs: list[str | Path]) -> list[str]:
    """``train/loss``, ``val/loss`` and, for each run that names one in its ``results.json``, the monitored
    metric on the validation and test splits (``val/accuracy``, ``test/accuracy``); a plot keeps those
    some run logged."""
    metrics = ["train/loss", "val/loss"]
    for run_dir in run_dirs:
        path = Path(run_dir) / "results.json"
        monitor = json.loads(path.read_text()).get("monitor") if path.is_file() else None
        if monitor and monitor.startswith("val/") and monitor != "val/loss":
            metrics += [m for m in (monitor, "test/" + monitor[4:]) if m not in metrics]
    return metrics


def plot_learning_curves(
    run_dirs: list[str | Path],
    metrics: list[str] | None,
    out: str | Path,
    labels: list[str] | None = None,
    title: str | None = None,
) -> tuple[Path, Path]:
    """Plot ``metrics`` (default: :func:`default_metrics`) against the epoch for every run (one panel per
    metric, integer epoch ticks) and tabulate them.

    Writes ``out`` (a PNG, with matplotlib's Agg canvas: no display needed) and ``out`` with the
    suffix ``.md``: first the ``gnnlab-curves`` command that writes both, then per run, the last epoch
    reached, the mean seconds per epoch, and each metric at the last epoch and at its best (max for
    accuracy/AP/AUC-like metrics, min for loss/MAE).

    Returns:
        The PNG and markdown paths.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    if not run_dirs or metrics == []:
        raise ValueError("plot_learning_curves: give at least one run folder and one metric")
    chosen = list(metrics) if metrics else []
    command = ["gnnlab-curves", *map(str, run_dirs), *(["--metrics", *chosen] if chosen else []), *(["--labels", *labels] if labels else []),
               *(["--title", title] if title else []), "--out", str(out)]
    labels = labels or [Path(d).name for d in run_dirs]
    if len(labels) != len(run_dirs):
        raise ValueError(f"plot_learning_curves: {len(labels)} labels for {len(run_dirs)} runs")
    runs = [read_metrics(d) for d in run_dirs]
    metrics = chosen or [m for m in default_metrics(run_dirs) if any(m in rows[0] for rows in runs)]
    for metric in metrics:
        if not any(metric in rows[0] for rows in runs):
            known = sorted({k for rows in runs for k in rows[0]})
            raise ValueError(f"plot_learning_curves: no run logged {metric!r}; logged: {', '.join(known)}")
    # The legend goes below the axes (inside them, long labels hid the curves), up to 3 runs a line.
    legend_rows = math.ceil(len(runs) / 3)
    height = 3.4 + 0.25 * legend_rows
    fig = Figure(figsize=(4.2 * len(metrics), height))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(metrics), squeeze=False)[0]
    for ax, metric in zip(axes, metrics):
        for rows, label in zip(runs, labels):
            if metric in rows[0]:
                ax.plot([r["epoch"] for r in rows], [r[metric] for r in rows], marker="o", ms=3, label=label)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(metric)
        ax.grid(alpha=0.3)
    handles, names = axes[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="lower center", ncol=min(len(names), 3), fontsize=8, frameon=False)
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, (0.1 + 0.25 * legend_rows) / height, 1, 1))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)

    lines = [f"Command: `{shlex.join(command)}`", "",
             "| run | epochs | s / epoch | " + " | ".join(f"{m} (last / best)" for m in metrics) + " |",
             "|---|---|---|" + "---|" * len(metrics)]
    for rows, label in zip(runs, labels):
        times = [r.get("time/epoch_s", math.nan) for r in rows]
        cells = []
        for metric in metrics:
            values = [r[metric] for r in rows if metric in r and not math.isnan(r[metric])]
            if not values:
                cells.append("–")
                continue
            lower_is_better = any(word in metric for word in ("loss", "mae", "mse", "error"))
            best = min(values) if lower_is_better else max(values)
            cells.append(f"{values[-1]:.4f} / {best:.4f}")
        lines.append(f"| {label} | {int(rows[-1]['epoch'])} | {sum(times) / len(times):.0f} | " + " | ".join(cells) + " |")
    table = out.with_suffix(".md")
    table.write_text("\n".join(lines) + "\n")
    return out, table
