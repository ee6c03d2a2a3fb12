"""Loggers the training loop writes to: console lines, a CSV file, Weights & Biases."""
from __future__ import annotations

import csv
import math
import os
from pathlib import Path
from typing import Any, Iterable, Protocol

from omegaconf import OmegaConf
from rich.console import Console


class Logger(Protocol):
    """What the trainer calls on a logger."""

    def log_hyperparams(self, params: dict) -> None: ...

    def log_metrics(self, metrics: dict[str, float], step: int) -> None: ...

    def finalize(self, status: str = "success") -> None: ...


class CSVLogger:
    """One row per :meth:`log_metrics` call in ``<save_dir>/<filename>``, columns ``step`` + metric names.

    When a later call brings new metric names the file is rewritten with the union of the columns,
    so it stays a valid CSV. An existing file (a resumed run) is kept and appended to.
    :meth:`log_hyperparams` writes ``hparams.yaml`` beside it.
    """

    def __init__(self, save_dir: str | os.PathLike, filename: str = "metrics.csv"):
        self.save_dir = Path(save_dir)
        self.path = self.save_dir / filename
        self.columns: list[str] = ["step"]
        self.rows: list[dict[str, Any]] = []
        if self.path.is_file():
            with open(self.path, newline="") as f:
                reader = csv.DictReader(f)
                self.columns = list(reader.fieldnames or ["step"])
                self.rows = list(reader)

    def log_hyperparams(self, params: dict) -> None:
        """Write ``hparams.yaml``."""
        self.save_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(OmegaConf.create(params), self.save_dir / "hparams.yaml")

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        """Append one row."""
        row = {"step": step, **metrics}
        new = [k for k in row if k not in self.columns]
        self.rows.append(row)
        self.save_dir.mkdir(parents=True, exist_ok=True)
        if new or not self.path.is_file():
            self.columns += new
            with open(self.path, "w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=self.columns)
                writer.writeheader()
                writer.writerows(self.rows)
        else:
            with open(self.path, "a", newline="") as f:
                csv.DictWriter(f, fieldnames=self.columns).writerow(row)

    def finalize(self, status: str = "success") -> None:
        """Nothing to flush: every row is written when logged."""


class ConsoleLogger:
    """Prints one compact line per :meth:`log_metrics` call (rich)."""

    def __init__(self, console: Console | None = None):
        self.console = console or Console()

    def log_hyperparams(self, params: dict) -> None:
        """Not printed (the resolved config is in the run folder)."""

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        """Print ``epoch N | key value | …``."""
        parts = [f"[bold]epoch {metrics.get('epoch', step)}[/bold]"]
        for key, value in metrics.items():
            if key == "epoch":
                continue
            if isinstance(value, float):
                text = f"{value:.3g}" if key == "lr" else f"{value:.4f}"
                if key.startswith("time"):
                    text = f"{value:.1f}"
            else:
                text = str(value)
            parts.append(f"{key} {text}")
        self.console.print(" | ".join(parts), highlight=False)

    def finalize(self, status: str = "success") -> None:
        """Nothing to do."""


class WandbLogger:
    """Weights & Biases run. ``mode=None`` honours ``WANDB_MODE`` (``offline`` needs no account or network).

    Args:
        project: wandb project.
        name: run name.
        save_dir: folder that receives ``wandb/`` (the run folder).
        mode: ``online``, ``offline``, ``disabled`` or :obj:`None`.
        tags, group: passed to ``wandb.init``.
        **kwargs: any other ``wandb.init`` argument.
    """

    def __init__(self, project: str = "gnnlab", name: str | None = None, save_dir: str | os.PathLike = ".",
                 mode: str | None = None, tags: Iterable[str] | None = None, group: str | None = None, **kwargs):
        try:
            import wandb
        except ImportError as err:  # pragma: no cover - wandb is a dependency, but may be removed
            raise ImportError("logger=wandb needs the wandb package: pip install wandb") from err
        Path(save_dir).mkdir(parents=True, exist_ok=True)
        self._wandb = wandb
        self.run = wandb.init(project=project, name=name, dir=str(save_dir), mode=mode,
                              tags=list(tags) if tags else None, group=group, reinit="finish_previous", **kwargs)

    def log_hyperparams(self, params: dict) -> None:
        """Store the resolved config in the run's config."""
        self.run.config.update(params, allow_val_change=True)

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        """Log one step."""
        self.run.log({k: v for k, v in metrics.items() if not (isinstance(v, float) and math.isnan(v))}, step=step)

    def finalize(self, status: str = "success") -> None:
        """Finish the run (exit code 1 when the training failed)."""
        self.run.finish(exit_code=0 if status == "success" else 1)


class LoggerCollection:
    """Fans every call out to several loggers."""

    def __init__(self, loggers: Iterable[Logger]):
        self.loggers = list(loggers)

    def log_hyperparams(self, params: dict) -> None:
        for logger in self.loggers:
            logger.log_hyperparams(params)

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        for logger in self.loggers:
            logger.log_metrics(metrics, step)

    def finalize(self, status: str = "success") -> None:
        for logger in self.loggers:
            logger.finalize(status)
