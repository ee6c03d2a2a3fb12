"""Tasks: what a model's output is compared with, by which loss and which metrics.

A task reads the targets from a batch (and, for transductive node classification, the split's
mask), computes the training loss, and turns the predictions gathered over a split into metrics.
``monitor``/``mode`` name the validation metric used for model selection and sweeps.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from gnnlab.errors import ConfigError, DataError
from gnnlab.train import metrics as M


class Task:
    """Base class. Subclasses define :meth:`select`, :meth:`loss` and :attr:`metric_fns`.

    Args:
        monitor: metric name (without split prefix) used to pick the best epoch.
        mode: ``"max"`` or ``"min"``.
    """

    level = "graph"

    def __init__(self, monitor: str, mode: str):
        if mode not in ("max", "min"):
            raise ConfigError(f"{type(self).__name__}: mode must be 'max' or 'min', got {mode!r}")
        self.monitor = monitor
        self.mode = mode
        self.metric_fns: dict[str, Callable[[Tensor, Tensor], float]] = {}
        if monitor != "loss" and monitor not in self._metric_names():
            raise ConfigError(
                f"{type(self).__name__}: monitor {monitor!r} is not one of its metrics {sorted(self._metric_names())}"
            )

    def _metric_names(self) -> list[str]:
        return list(self._default_metrics())

    def _default_metrics(self) -> dict[str, Callable[[Tensor, Tensor], float]]:
        raise NotImplementedError

    def select(self, out: Tensor, batch, split: str) -> tuple[Tensor, Tensor]:
        """Return ``(predictions, targets)`` of the rows this split scores."""
        target = batch.y
        if target is None:
            raise ValueError(f"{type(self).__name__}: the batch has no targets `y`")
        return out, target

    def loss(self, pred: Tensor, target: Tensor) -> Tensor:
        """Training loss on selected rows."""
        raise NotImplementedError

    def compute_metrics(self, pred: Tensor, target: Tensor) -> dict[str, float]:
        """All metrics on the predictions gathered over a split."""
        return {name: fn(pred, target) for name, fn in self._default_metrics().items()}

    def better(self, value: float, best: float | None) -> bool:
        """Whether ``value`` improves on ``best`` under :attr:`mode`; a non-finite value never does."""
        if not math.isfinite(value):
            return False
        if best is None:
            return True
        return value > best if self.mode == "max" else value < best


class GraphRegression(Task):
    """Graph-level regression (ZINC, AQSOL): L1 loss (as Benchmarking-GNNs) and MAE.

    Args:
        loss: ``"l1"`` or ``"mse"``.
    """

    def __init__(self, loss: str = "l1", monitor: str = "mae", mode: str = "min"):
        if loss not in ("l1", "mse"):
            raise ConfigError(f"GraphRegression: loss must be 'l1' or 'mse', got {loss!r}")
        self._loss = F.l1_loss if loss == "l1" else F.mse_loss
        super().__init__(monitor, mode)

    def _default_metrics(self):
        return {"mae": M.mae}

    def select(self, out, batch, split):
        out, target = super().select(out, batch, split)
        return out.view(target.shape[0], -1).squeeze(-1), target.float().view(target.shape[0], -1).squeeze(-1)

    def loss(self, pred, target):
        return self._loss(pred, target)


class GraphClassification(Task):
    """Graph-level multi-class classification (TU datasets): cross entropy, accuracy."""

    def __init__(self, monitor: str = "accuracy", mode: str = "max"):
        super().__init__(monitor, mode)

    def _default_metrics(self):
        return {"accuracy": M.accuracy}

    def select(self, out, batch, split):
        out, target = super().select(out, batch, split)
        return out, target.view(-1).long()

    def loss(self, pred, target):
        return F.cross_entropy(pred, target)


class MultilabelGraphClassification(Task):
    """Graph-level multi-label binary classification (Peptides-func): BCE on observed labels, AP."""

    def __init__(self, monitor: str = "ap", mode: str = "max"):
        super().__init__(monitor, mode)

    def _default_metrics(self):
        return {"ap": M.average_precision, "auroc": M.roc_auc}

    def select(self, out, batch, split):
        out, target = super().select(out, batch, split)
        return out, target.float().view(out.shape)

    def loss(self, pred, target):
        observed = ~torch.isnan(target)
        return F.binary_cross_entropy_with_logits(pred[observed], target[observed])


class NodeClassification(Task):
    """Node classification, inductive (PATTERN/CLUSTER) or transductive (Planetoid).

    Args:
        transductive: score only the nodes of ``batch.<split>_mask`` (one graph holds all splits).
        weighted: report the Benchmarking-GNNs weighted (class-balanced) accuracy and monitor it.
        class_weighted_loss: weight cross entropy per batch by ``(N - n_c) / N`` for class ``c``
            with ``n_c`` nodes, as Benchmarking-GNNs does for PATTERN/CLUSTER.
    """

    level = "node"

    def __init__(
        self,
        transductive: bool = False,
        weighted: bool = False,
        class_weighted_loss: bool = False,
        monitor: str | None = None,
        mode: str = "max",
    ):
        self.transductive = transductive
        self.weighted = weighted
        self.class_weighted_loss = class_weighted_loss
        super().__init__(monitor or ("weighted_accuracy" if weighted else "accuracy"), mode)

    def _default_metrics(self):
        fns = {"accuracy": M.accuracy}
        if self.weighted:
            fns["weighted_accuracy"] = M.weighted_accuracy
        return fns

    def select(self, out, batch, split):
        out, target = super().select(out, batch, split)
        target = target.view(-1).long()
        if self.transductive:
            mask = getattr(batch, f"{split}_mask", None)
            if mask is None:
                raise DataError(f"NodeClassification(transductive=True): the graph has no `{split}_mask`")
            return out[mask], target[mask]
        return out, target

    def loss(self, pred, target):
        weight = None
        if self.class_weighted_loss:
            num_classes = pred.size(-1)
            counts = torch.bincount(target, minlength=num_classes).to(pred.dtype)
            n = target.numel()
            weight = (n - counts) / n
            weight = weight * (counts > 0).to(pred.dtype)
        return F.cross_entropy(pred, target, weight=weight)
