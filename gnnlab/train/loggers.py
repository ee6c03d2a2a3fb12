"""Loggers the training loop writes to: console lines, a CSV file, Weights & Biases.

Each implements :class:`Logger`; :class:`LoggerCollection` sends every call to several of them.
"""
from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any, Iterable, Protocol, runtime_checkable

from omegaconf import OmegaConf
from rich.console import Console
from rich.markup import escape

from gnnlab.errors import ConfigError
from gnnlab.train.jsonio import python_scalar

__all__ = ["Logger", "CSVLogger", "ConsoleLogger", "WandbLogger", "LoggerCollection"]


@runtime_checkable
class Logger(Protocol):
    """What the trainer calls on a logger."""

    def log_hyperparams(self, params: dict) -> None:
        """Record the run's configuration (a nested dict of plain values)."""

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        """Record the metrics of one step (an epoch for the trainer)."""

    def finalize(self, status: str = "success") -> None:
        """Close the logger; ``status`` is ``"success"`` or the reason the run stopped."""


class CSVLogger:
    """One row per :meth:`log_metrics` call in ``<save_dir>/<filename>``, columns ``step`` + metric names.

    A cell is empty when its metric was not logged at that step. When a call brings metric names
    not seen before, the file is rewritten with the union of the columns, so that it stays a valid
    CSV with one header. If the file already exists (a resumed run), its rows are kept and new rows
    are appended; :meth:`rewind` first drops the rows logged after the resumed checkpoint.
    :meth:`log_hyperparams` writes ``hparams.yaml`` in ``save_dir``.

    Args:
        save_dir: folder of the files (created on the first write).
        filename: name of the CSV file.
    """

    def __init__(self, save_dir: str | os.PathLike, filename: str = "metrics.csv"):
        self.save_dir = Path(save_dir)
        self.path = self.save_dir / filename
        self.columns: list[str] = ["step"]
        self.rows: list[dict[str, Any]] = []
        if self.path.is_file():
            with open(self.path, newline="") as f:
                reader = csv.DictReader(f)
                if reader.fieldnames:
                    self.columns = list(reader.fieldnames)
                self.rows = list(reader)
            if "step" not in self.columns:
                self.columns.insert(0, "step")

    def log_hyperparams(self, params: dict) -> None:
        """Write ``params`` to ``<save_dir>/hparams.yaml`` (replacing an earlier one)."""
        self.save_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(OmegaConf.create(params), self.save_dir / "hparams.yaml")

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        """Append the row ``step, metrics…``; rewrite the file when the columns grow."""
        row = {"step": step, **{k: python_scalar(v) for k, v in metrics.items() if k != "step"}}
        new = [k for k in row if k not in self.columns]
        self.rows.append(row)
        self.save_dir.mkdir(parents=True, exist_ok=True)
        if new or not self.path.is_file():
            self.columns += new
            self._rewrite()
        else:
            with open(self.path, "a", newline="") as f:
                csv.DictWriter(f, fieldnames=self.columns).writerow(row)

    def _rewrite(self) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=self.columns)
            writer.writeheader()
            writer.writerows(self.rows)
        # Replace in one step so that a crash mid-write cannot lose the earlier rows.
        os.replace(tmp, self.path)

    def rewind(self, step: int) -> None:
        """Drop the rows logged after ``step`` (in memory and on disk).

        A resumed run calls it with its checkpoint's step: a run stopped after logging a row but
        before saving that epoch's checkpoint would otherwise get the row twice.
        """
        def kept(row: dict[str, Any]) -> bool:
            value = row.get("step")
            try:
                return value in (None, "") or float(value) <= step
            except ValueError:
                return True

        rows = [row for row in self.rows if kept(row)]
        if len(rows) != len(self.rows):
            self.rows = rows
            self.save_dir.mkdir(parents=True, exist_ok=True)
            self._rewrite()

    def finalize(self, status: str = "success") -> None:
        """Nothing to flush: every row is on disk once logged."""


class ConsoleLogger:
    """Prints one compact line per :meth:`log_metrics` call, e.g. ``epoch 3 | train/loss 0.512 | val/acc 71.2``.

    Args:
        console: the rich console to print to (a new one on stdout by default).
    """

    def __init__(self, console: Console | None = None):
        self.console = console or Console()

    def log_hyperparams(self, params: dict) -> None:
        """Not printed: the resolved config is saved in the run folder."""

    @staticmethod
    def _format(key: str, value: Any) -> str:
        value = python_scalar(value)
        if isinstance(value, bool) or not isinstance(value, float):
            return str(value)
        if key.startswith("time"):
            return f"{value:.1f}"
        if key == "lr":
            return f"{value:.3g}"
        return f"{value:.4g}"

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        """Print ``epoch N | key value | …`` (``N`` is ``metrics['epoch']`` if logged, else ``step``)."""
        parts = [f"[bold]epoch {self._format('epoch', metrics.get('epoch', step))}[/bold]"]
        parts += [escape(f"{key} {self._format(key, value)}") for key, value in metrics.items() if key != "epoch"]
        self.console.print(" | ".join(parts), highlight=False, markup=True)

    def finalize(self, status: str = "success") -> None:
        """Print the status when the run did not succeed."""
        if status != "success":
            self.console.print(f"run ended: {status}", highlight=False, markup=False)


class WandbLogger:
    """A Weights & Biases run, created by ``wandb.init(dir=save_dir, …)``.

    ``mode=None`` leaves the choice to the ``WANDB_MODE`` environment variable; ``offline`` needs
    neither network nor account and writes ``<save_dir>/wandb/offline-run-*`` (upload it later
    with ``wandb sync``).

    Args:
        project: wandb project.
        name: run name.
        save_dir: folder that receives ``wandb/`` (created if missing).
        mode: ``online``, ``offline``, ``disabled`` or :obj:`None`.
        tags: run tags.
        group: run group (e.g. the seeds of one experiment).
        **kwargs: any other ``wandb.init`` argument.

    Raises:
        ImportError: wandb is not installed.
        ConfigError: the run is online (``mode`` and ``WANDB_MODE`` unset, or ``online``) and no API key is
            configured; the message says how to log in or log offline.
    """

    def __init__(
        self,
        project: str = "gnnlab",
        name: str | None = None,
        save_dir: str | os.PathLike = ".",
        mode: str | None = None,
        tags: Iterable[str] | None = None,
        group: str | None = None,
        **kwargs: Any,
    ):
        try:
            import wandb
        except ImportError as err:
            raise ImportError("WandbLogger needs the wandb package: pip install wandb "
                              "(or choose another logger, e.g. logger=default)") from err
        Path(save_dir).mkdir(parents=True, exist_ok=True)
        if mode is not None:
            kwargs["mode"] = mode
        # Several runs in one process (multi-seed sweeps, tests) each get their own wandb run.
        kwargs.setdefault("reinit", "finish_previous")
        try:
            self.run = wandb.init(project=project, name=name, dir=str(save_dir),
                                  tags=list(tags) if tags else None, group=group, **kwargs)
        except wandb.errors.UsageError as err:
            if "api key" not in str(err).lower():
                raise
            raise ConfigError(
                f"logger.wandb: W&B has no API key on this machine ({err}). Log in with `wandb login`, or log "
                "offline with logger.wandb.mode=offline (or WANDB_MODE=offline) and upload later with "
                "`wandb sync <run>/wandb/offline-run-*`") from err
        self._finished = False

    def log_hyperparams(self, params: dict) -> None:
        """Merge ``params`` into the run's config (values may change on a resumed run)."""
        self.run.config.update(params, allow_val_change=True)

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        """``wandb.log(metrics, step=step)`` on this run."""
        self.run.log({k: python_scalar(v) for k, v in metrics.items()}, step=step)

    def finalize(self, status: str = "success") -> None:
        """Finish the run, with exit code 0 on ``"success"`` and 1 otherwise; later calls do nothing."""
        if self._finished:
            return
        self._finished = True
        self.run.finish(exit_code=0 if status == "success" else 1)


class LoggerCollection:
    """Sends every call to each of ``loggers``, in order.

    Args:
        loggers: the loggers (possibly none).
    """

    def __init__(self, loggers: Iterable[Logger]):
        self.loggers = list(loggers)

    def log_hyperparams(self, params: dict) -> None:
        """Call ``log_hyperparams`` on every logger."""
        for logger in self.loggers:
            logger.log_hyperparams(params)

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        """Call ``log_metrics`` on every logger."""
        for logger in self.loggers:
            logger.log_metrics(metrics, step)

    def rewind(self, step: int) -> None:
        """Call ``rewind(step)`` on every logger that has it (e.g. :meth:`CSVLogger.rewind`)."""
        for logger in self.loggers:
            rewind = getattr(logger, "rewind", None)
            if callable(rewind):
                rewind(step)

    def finalize(self, status: str = "success") -> None:
        """Call ``finalize`` on every logger, even when one fails; the first error is raised after."""
        error: BaseException | None = None
        for logger in self.loggers:
            try:
                logger.finalize(status)
            except Exception as err:  # the other loggers must still be closed
                error = error or err
        if error is not None:
            raise error
