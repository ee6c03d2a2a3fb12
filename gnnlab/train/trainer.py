"""The training loop: epochs of train/val/test, model selection, checkpoints, resume, logging."""
from __future__ import annotations

import math
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from gnnlab.errors import ConfigError, DataError, GnnlabError
from gnnlab.train.checkpoint import CheckpointError, load_checkpoint, rng_state, save_checkpoint, set_rng_state
from gnnlab.train.distributed import DataParallel
from gnnlab.train.jsonio import write_json
from gnnlab.train.tasks import Task

SPLITS = ("train", "val", "test")
# What a last.ckpt holds besides the optional scheduler state and last_metrics.
RESUME_KEYS = ("model", "optimizer", "epoch", "best", "best_metrics", "best_epoch", "stale", "rng")


def _split_metrics(metrics: dict[str, float]) -> dict[str, float]:
    """The ``train/``, ``val/`` and ``test/`` entries of ``metrics`` (not ``epoch``, ``lr``, ``time/…``)."""
    return {k: v for k, v in metrics.items() if k.split("/")[0] in SPLITS}


def load_model_state(model: torch.nn.Module, state: dict[str, Any], path: Path) -> None:
    """``model.load_state_dict(state["model"])``, with a :class:`CheckpointError` naming ``path`` on a mismatch."""
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as err:
        raise CheckpointError(
            f"checkpoint {path} does not match the model of this run ({str(err).splitlines()[0]}); it was "
            f"written by a run with another model configuration"
        ) from None


class DivergenceError(GnnlabError, FloatingPointError):
    """Training diverged: a non-finite (or too large) training loss, or non-finite weights.

    A :class:`gnnlab.errors.GnnlabError`: the command line reports it in one line (its cause is the
    run's settings, e.g. the learning rate, not a bug in code).

    Attributes:
        epoch: the epoch (from 1) in which it happened.
        step: the training step within that epoch (from 1), or :obj:`None` when found at the epoch's end.
        loss: the offending training loss, or :obj:`None`.
    """

    def __init__(self, message: str, epoch: int, step: int | None = None, loss: float | None = None):
        super().__init__(message)
        self.epoch = epoch
        self.step = step
        self.loss = loss


@dataclass
class FitResult:
    """What :meth:`Trainer.fit` returns: the best epoch and the metrics recorded there.

    ``last_metrics`` are the metrics of the final epoch run (the model as training left it): the
    protocol of Benchmarking-GNNs and of Dwivedi & Bresson's GT, which report the test score of the
    final model rather than of the best validation epoch.
    """

    best_epoch: int
    monitor: str
    best_value: float
    metrics: dict[str, float] = field(default_factory=dict)
    epochs_run: int = 0
    stopped_early: bool = False
    last_metrics: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (written as ``results.json``): the fields in order, ``last_metrics`` as ``last``."""
        out = asdict(self)
        out["last"] = out.pop("last_metrics")
        return out


class Trainer:
    """Runs the epochs.

    Each epoch trains on ``train``, evaluates ``val`` and ``test``, logs every metric, writes
    ``checkpoints/last.ckpt`` and, when the monitored validation metric improves,
    ``checkpoints/best.ckpt``. At the end the best weights are restored and the test split scored.

    Args:
        max_epochs: number of epochs.
        output_dir: folder for ``checkpoints/`` and ``results.json``.
        accelerator: ``"auto"``, ``"cpu"`` or ``"cuda"``.
        grad_clip: max gradient norm, or :obj:`None`.
        min_lr: stop when a ``ReduceLROnPlateau`` scheduler has taken the learning rate below this
            (Benchmarking-GNNs' stopping rule). Planned schedules (cosine, warm-up) run to
            ``max_epochs``: their rate is small by design at the start or the end.
        patience: stop after this many epochs without improvement of the monitored metric.
        loss_window_stop: ``w`` for the stopping rule of PyG's citation benchmarks (used by APPNP and
            DAGNN): past half of ``max_epochs``, stop at the first epoch whose ``val/loss`` exceeds the
            mean ``val/loss`` of the ``w`` epochs before it; :obj:`None`: no such rule.
        scheduler_monitor: metric a ``ReduceLROnPlateau`` scheduler steps on (e.g. ``"val/loss"``).
        eval_test_every_epoch: score the test split every epoch (printed and logged).
        progress: show a progress bar over the batches.
        batch_callbacks: callables run before every batch with the batch's index in its split (the
            command line adds :class:`gnnlab.cli.ReleaseFreeMemory` there); none by default.
        max_loss: a training loss above this counts as divergence, like a non-finite one
            (:class:`DivergenceError`); :obj:`None` stops only on non-finite losses. The default,
            ``1e20``, is far above any loss of a run that still learns.
        strategy: ``"single"`` (one process) or ``"ddp"``: data-parallel over the processes ``torchrun``
            started (:mod:`gnnlab.train.distributed`; one process without ``torchrun``). Only rank 0
            writes checkpoints, logs and results.
        ddp_backend: ``"auto"`` (NCCL on GPUs, gloo on CPUs), ``"nccl"`` or ``"gloo"``.
        find_unused_parameters: ``DistributedDataParallel``'s option of that name: on by default, as some models
            leave parameters without a gradient (the edge output of a GatedGCN's last layer); off is faster.
        sync_batchnorm: synchronise batch norm statistics across processes (CUDA only).

    A run stops with :class:`DivergenceError` at the first non-finite training loss, naming the epoch
    and step; ``last.ckpt`` then still holds the end of the last finite epoch. An epoch whose
    validation metrics are not all finite is never selected as the best one.
    """

    def __init__(
        self,
        max_epochs: int = 100,
        output_dir: str = ".",
        accelerator: str = "auto",
        grad_clip: float | None = None,
        min_lr: float | None = None,
        patience: int | None = None,
        loss_window_stop: int | None = None,
        scheduler_monitor: str = "val/loss",
        eval_test_every_epoch: bool = True,
        progress: bool = True,
        max_loss: float | None = 1e20,
        batch_callbacks: Sequence[Callable[[int], None]] = (),
        strategy: str = "single",
        ddp_backend: str = "auto",
        find_unused_parameters: bool = True,
        sync_batchnorm: bool = False,
    ):
        if max_epochs < 0:
            raise ConfigError(f"Trainer: max_epochs must be >= 0, got {max_epochs}")
        if accelerator not in ("auto", "cpu", "cuda"):
            raise ConfigError(f"Trainer: accelerator must be 'auto', 'cpu' or 'cuda', got {accelerator!r}")
        if accelerator == "cuda" and not torch.cuda.is_available():
            raise ConfigError("Trainer: accelerator='cuda' but torch sees no CUDA device")
        self.max_epochs = max_epochs
        self.output_dir = Path(output_dir)
        self.device = torch.device("cuda" if accelerator == "cuda" or (accelerator == "auto" and torch.cuda.is_available()) else "cpu")
        self.grad_clip = grad_clip
        self.min_lr = min_lr
        self.patience = patience
        if loss_window_stop is not None and loss_window_stop < 1:
            raise ConfigError(f"Trainer: loss_window_stop must be >= 1 or null, got {loss_window_stop}")
        self.loss_window_stop = loss_window_stop
        self.scheduler_monitor = scheduler_monitor
        self.eval_test_every_epoch = eval_test_every_epoch
        self.progress = progress
        if not all(callable(c) for c in batch_callbacks):
            raise ConfigError(f"Trainer: every batch callback must be callable, got {list(batch_callbacks)!r}")
        self.batch_callbacks = tuple(batch_callbacks)
        if max_loss is not None and not max_loss > 0:
            raise ConfigError(f"trainer.max_loss must be > 0 or null, got {max_loss}")
        self.max_loss = max_loss
        if strategy not in ("single", "ddp"):
            raise ConfigError(f"trainer.strategy must be 'single' or 'ddp', got {strategy!r}")
        self.dist = DataParallel(ddp_backend, find_unused_parameters, sync_batchnorm) if strategy == "ddp" else None
        if self.dist is not None:
            self.device = self.dist.setup(self.device)
            self.output_dir = Path(self.dist.broadcast(str(self.output_dir)))  # rank 0's run folder
        self._epoch = 0  # the epoch being run, from 1 (named in divergence errors)
        self.console = Console(stderr=True)

    @property
    def is_main(self) -> bool:
        """Whether this process writes checkpoints, logs and results (always, unless rank > 0 of a DDP run)."""
        return self.dist is None or self.dist.is_main

    def _save(self, name: str, state: dict) -> None:
        if self.is_main:
            save_checkpoint(self.checkpoint_dir / name, state)

    def _loader(self, datamodule, split: str, epoch: int = 0):
        """``datamodule.loader(split)``, or this process's part of it in a DDP run."""
        if self.dist is None:
            return datamodule.loader(split)
        part = getattr(datamodule, "distributed_loader", None)
        if not callable(part):
            raise ConfigError(f"trainer.strategy=ddp: {type(datamodule).__name__} cannot split its data over "
                              f"processes (it has no distributed_loader); use trainer.strategy=single")
        return part(split, self.dist.rank, self.dist.world_size, epoch)

    @property
    def checkpoint_dir(self) -> Path:
        """``<output_dir>/checkpoints``."""
        return self.output_dir / "checkpoints"

    # -- one pass over a split -------------------------------------------------------------------
    def _diverged(self, what: str, step: int | None = None, loss: float | None = None) -> DivergenceError:
        where = f"epoch {self._epoch}, step {step}" if step is not None else f"the end of epoch {self._epoch}"
        last = self.checkpoint_dir / "last.ckpt"
        kept = (f"the last finite state is in {last}" if last.is_file()
                else "no checkpoint was written before")
        return DivergenceError(f"training diverged at {where}: {what}; {kept}. Lower optim.lr, set "
                               f"trainer.grad_clip, or check the inputs for non-finite values",
                               self._epoch, step, loss)

    def _check_finite_state(self, model) -> None:
        """Refuse to go on (and to checkpoint) with non-finite weights or buffers."""
        for name, tensor in model.state_dict().items():
            if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                raise self._diverged(f"the model's {name!r} holds non-finite values")

    def _step(self, model, optimizer, loss, step: int, weight: float = 1.0) -> None:
        """One optimiser step on ``loss`` (``step`` counts from 1 in the epoch), with optional gradient clipping.

        In a DDP run ``loss`` (the mean over this process's ``weight`` scored rows) is scaled by the process's
        share of the global batch's rows, so that the averaged gradient is that of the global mean loss; every
        process learns whether any of them diverged, so they stop together.

        Raises:
            DivergenceError: the loss is not finite, or above ``max_loss`` (on any process).
        """
        value = loss.item()
        bad = not math.isfinite(value) or (self.max_loss is not None and abs(value) > self.max_loss)
        if self.dist is not None and self.dist.active:
            total, any_bad = self.dist.sum([float(weight), float(bad)], self.device)
            if any_bad and not bad:
                raise self._diverged("another process's training loss is not finite or too large", step)
            loss = loss * (self.dist.world_size * weight / total)
        if not math.isfinite(value):
            raise self._diverged(f"the training loss is {value}", step, value)
        if self.max_loss is not None and abs(value) > self.max_loss:
            raise self._diverged(f"the training loss {value:.3g} exceeds trainer.max_loss={self.max_loss:g}",
                                 step, value)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), self.grad_clip)
        optimizer.step()

    def _to_device(self, obj):
        """``obj.to(device)`` for what has a ``to`` (a PyG batch; a data module holding whole-graph
        tensors, moved once in place before its loaders are read); anything else as it is."""
        move = getattr(obj, "to", None)
        return move(self.device) if callable(move) else obj

    def _run_split(self, model, task: Task, loader, split: str, optimizer=None, bar=None) -> dict[str, float]:
        train = optimizer is not None
        model.train(train)
        gathered: list[tuple[torch.Tensor, ...]] = []
        loss_sum, weight_sum = 0.0, 0
        with torch.set_grad_enabled(train):
            for index, batch in enumerate(loader):
                for callback in self.batch_callbacks:
                    callback(index)
                out = task.step(model, self._to_device(batch), split)
                if out is None:
                    if train and self.dist is not None and self.dist.active:
                        # The other processes wait for this one's gradients: skipping the step would hang them.
                        raise DataError(f"trainer.strategy=ddp: training batch {index} of this process has no "
                                        f"scored rows, so it cannot take part in the step")
                    continue
                if train:
                    self._step(model, optimizer, out.loss, index + 1, out.weight)
                loss_sum += out.loss.item() * out.weight
                weight_sum += out.weight
                if out.outputs is not None:
                    gathered.append(tuple(t.detach().cpu() for t in out.outputs))
                if bar is not None:
                    bar[0].advance(bar[1])
        if self.dist is not None and self.dist.active:  # every process's part of the split
            parts = self.dist.gather((loss_sum, weight_sum, gathered))
            loss_sum, weight_sum = sum(p[0] for p in parts), sum(p[1] for p in parts)
            gathered = [g for p in parts for g in p[2]]
        if weight_sum == 0:
            raise DataError(f"split {split!r} has no scored examples")
        metrics = task.compute_metrics(*(torch.cat(parts) for parts in zip(*gathered))) if gathered else {}
        return {f"{split}/loss": loss_sum / weight_sum, **{f"{split}/{k}": v for k, v in metrics.items()}}

    def evaluate(self, model, task: Task, datamodule, splits=("val", "test")) -> dict[str, float]:
        """Score ``model`` on the given splits (no gradient)."""
        model.to(self.device)
        self._to_device(datamodule)
        out: dict[str, float] = {}
        for split in splits:
            out.update(self._run_split(model, task, self._loader(datamodule, split), split))
        return out

    # -- the loop ------------------------------------------------------------------------------------
    def fit(self, model, task: Task, datamodule, optimizer, scheduler=None, logger=None, resume: str | None = None) -> FitResult:
        """Train, select the best epoch on ``val/<task.monitor>``, and return its metrics.

        A model without trainable parameters (``optimizer=None``, e.g. a link-prediction heuristic)
        is not trained: its validation and test scores are recorded once, as epoch 1.

        Args:
            resume: path of a ``last.ckpt`` (or a folder holding ``checkpoints/last.ckpt``) to continue.
                A ``logger`` with a ``rewind(step)`` method is first rewound to the checkpoint's epoch.
        """
        self._to_device(datamodule)
        if optimizer is None:
            return self._evaluate_once(model, task, datamodule, logger)
        model.to(self.device)
        net = model if self.dist is None else self.dist.wrap(model, self.device)  # what training steps call
        generator = getattr(datamodule, "generator", None)
        start_epoch, best, best_metrics, best_epoch, stale = 0, None, {}, -1, 0
        last_metrics: dict[str, float] = {}
        val_losses: list[float] = []  # for loss_window_stop
        if resume is not None:
            path = Path(resume)
            if path.is_dir():
                path = path / "checkpoints" / "last.ckpt"
            state = load_checkpoint(path, map_location=self.device, required=RESUME_KEYS)
            load_model_state(model, state, path)
            try:
                optimizer.load_state_dict(state["optimizer"])
            except (ValueError, KeyError) as err:
                raise CheckpointError(f"checkpoint {path}: its optimizer state does not match this run's "
                                      f"optimizer ({err})") from None
            if scheduler is not None and state.get("scheduler") is not None:
                scheduler.load_state_dict(state["scheduler"])
            set_rng_state(state["rng"], generator)
            start_epoch = state["epoch"]
            if self.max_epochs < start_epoch:
                raise ConfigError(f"trainer.max_epochs={self.max_epochs}, but the checkpoint {path} is after epoch "
                                  f"{start_epoch}: resume with trainer.max_epochs >= {start_epoch} "
                                  f"(= {start_epoch} ends the run there and writes its results)")
            best, best_metrics, best_epoch, stale = state["best"], state["best_metrics"], state["best_epoch"], state["stale"]
            last_metrics = state.get("last_metrics", {})
            val_losses = list(state.get("val_losses", []))
            # Rows logged after this checkpoint (a run stopped between a row and its checkpoint) go.
            rewind = getattr(logger, "rewind", None)
            if callable(rewind):
                rewind(start_epoch)
            if self.is_main:
                self.console.print(f"[bold]resumed[/bold] from {path} after epoch {start_epoch}")

        monitor_key = f"val/{task.monitor}"
        stop = None  # why the run stopped before max_epochs
        epoch = start_epoch
        for epoch in range(start_epoch, self.max_epochs):
            self._epoch = epoch + 1
            t0 = time.perf_counter()
            if self.dist is not None:  # dropout etc.: a function of (seed, epoch, rank), also after a resume
                torch.manual_seed(self.dist.epoch_seed(getattr(datamodule, "seed", 0), epoch))
            train_loader = self._loader(datamodule, "train", epoch)
            with self._progress(epoch, len(train_loader)) as bar:
                metrics = self._run_split(net, task, train_loader, "train", optimizer, bar)
            eval_splits = ("val", "test") if self.eval_test_every_epoch else ("val",)
            for split in eval_splits:
                metrics.update(self._run_split(model, task, self._loader(datamodule, split), split))
            lr = optimizer.param_groups[0]["lr"]
            metrics.update({"epoch": epoch + 1, "lr": lr, "time/epoch_s": time.perf_counter() - t0})

            if monitor_key not in metrics:
                raise KeyError(f"monitored metric {monitor_key!r} not among {sorted(metrics)}")
            # An epoch whose model validates to NaN/inf (loss or any metric) is never the best one.
            finite_val = all(math.isfinite(v) for k, v in metrics.items() if k.startswith("val/"))
            if finite_val and task.better(metrics[monitor_key], best):
                self._check_finite_state(model)
                best, best_epoch, stale = metrics[monitor_key], epoch + 1, 0
                best_metrics = _split_metrics(metrics)
                self._save("best.ckpt", {"model": model.state_dict(), "epoch": epoch + 1, "metrics": best_metrics})
            else:
                stale += 1
            last_metrics = _split_metrics(metrics)
            if self.loss_window_stop:
                val_losses.append(metrics["val/loss"])

            plateau = isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
            if plateau:
                scheduler.step(metrics[self.scheduler_monitor])
            elif scheduler is not None:
                scheduler.step()

            if logger is not None and self.is_main:
                logger.log_metrics(metrics, step=epoch + 1)
            self._check_finite_state(model)  # never replace the last finite state by a diverged one
            self._save(
                "last.ckpt",
                {
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict() if scheduler is not None else None,
                    "epoch": epoch + 1,
                    "best": best,
                    "best_metrics": best_metrics,
                    "best_epoch": best_epoch,
                    "stale": stale,
                    "last_metrics": last_metrics,
                    "val_losses": val_losses,
                    "rng": rng_state(generator),
                },
            )
            window = val_losses[-self.loss_window_stop - 1:-1] if self.loss_window_stop else []
            if plateau and self.min_lr is not None and optimizer.param_groups[0]["lr"] < self.min_lr:
                stop = f"learning rate below min_lr={self.min_lr}: stopping after epoch {epoch + 1}"
            elif self.patience is not None and stale >= self.patience:
                stop = f"no improvement of {monitor_key} for {stale} epochs: stopping"
            elif epoch + 1 > self.max_epochs // 2 and window and val_losses[-1] > sum(window) / len(window):
                stop = (f"val/loss above its mean over the previous {len(window)} epochs: stopping "
                        f"after epoch {epoch + 1}")
            if stop is not None:
                if self.is_main:
                    self.console.print(stop)
                break
        if self.dist is not None:
            self.dist.barrier()  # rank 0's checkpoints are written before any process reads them

        epochs_run = epoch + 1 if self.max_epochs > start_epoch else start_epoch
        if best is None and epochs_run == start_epoch:
            raise RuntimeError("no epoch was run: nothing to report (max_epochs reached already?)")
        if best is None:
            raise DivergenceError(f"no epoch gave finite validation metrics ({monitor_key} and the others) in "
                                  f"{epochs_run - start_epoch} epochs: nothing to report", epochs_run)
        return FitResult(best_epoch, monitor_key, float(best), best_metrics, epochs_run, stop is not None, last_metrics)

    def _evaluate_once(self, model, task: Task, datamodule, logger) -> FitResult:
        t0 = time.perf_counter()
        metrics = self.evaluate(model, task, datamodule)
        metrics.update({"epoch": 1, "time/epoch_s": time.perf_counter() - t0})
        if logger is not None and self.is_main:
            logger.log_metrics(metrics, step=1)
        best = _split_metrics(metrics)
        self._save("best.ckpt", {"model": model.state_dict(), "epoch": 1, "metrics": best})
        if self.dist is not None:
            self.dist.barrier()
        key = f"val/{task.monitor}"
        return FitResult(1, key, float(metrics[key]), best, epochs_run=1, last_metrics=best)

    def test_best(self, model, task: Task, datamodule) -> dict[str, float]:
        """Reload ``best.ckpt`` into ``model`` and score val and test."""
        path = self.checkpoint_dir / "best.ckpt"
        load_model_state(model, load_checkpoint(path, map_location=self.device, required=("model",)), path)
        return self.evaluate(model, task, datamodule, ("val", "test"))

    def write_results(self, result: FitResult, final: dict[str, float]) -> Path:
        """Write ``results.json`` and return its path.

        ``final`` holds the best-validation weights re-scored; ``last`` the final epoch's metrics.
        Non-finite values are written as ``null`` (strict JSON, :func:`gnnlab.train.jsonio.write_json`).
        Only the main process writes (the path is returned on every process).
        """
        if not self.is_main:
            return self.output_dir / "results.json"
        return write_json(self.output_dir / "results.json", {**result.to_dict(), "final": final})

    @contextmanager
    def _progress(self, epoch: int, total: int):
        """A progress bar over the ``total`` training batches of ``epoch``, as ``(progress, task id)``."""
        columns = (TextColumn(f"epoch {epoch + 1}/{self.max_epochs}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), TimeRemainingColumn())
        with Progress(*columns, console=self.console, transient=True, disable=not self.progress or not self.is_main) as progress:
            yield progress, progress.add_task("train", total=total)
