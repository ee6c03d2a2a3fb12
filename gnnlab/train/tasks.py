"""Tasks: how a model runs on a batch, what its output is compared with, by which loss and metrics.

The :class:`~gnnlab.train.Trainer` calls :meth:`Task.step` on every batch and :meth:`Task.compute_metrics`
on what the steps gathered over a split. ``monitor``/``mode`` name the validation metric of model selection.
"""
from __future__ import annotations

import math
from typing import Callable, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from gnnlab.data.sampled import LayerwiseBatch
from gnnlab.errors import ConfigError, DataError
from gnnlab.models.outputs import WithAuxLoss
from gnnlab.ops import target_link_mask
from gnnlab.train import metrics as M


class BatchOutput(NamedTuple):
    """What :meth:`Task.step` returns for one batch: its ``loss``, the loss's ``weight`` in the split's mean,
    and the ``outputs`` to concatenate over the split for :meth:`Task.compute_metrics` (``None``: none)."""

    loss: Tensor
    weight: float
    outputs: tuple[Tensor, ...] | None


class Task:
    """Base class. Subclasses define :meth:`select`, :meth:`loss` and their metrics (``_default_metrics``);
    one whose batches are not scored as ``model(batch)`` overrides :meth:`step` (and :meth:`compute_metrics`).

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
        if monitor != "loss" and monitor not in self._default_metrics():
            raise ConfigError(f"{type(self).__name__}: monitor {monitor!r} is not one of its metrics "
                              f"{sorted(self._default_metrics())}")

    def _default_metrics(self) -> dict[str, Callable[[Tensor, Tensor], float]]:
        raise NotImplementedError

    def step(self, model, batch, split: str) -> BatchOutput | None:
        """Run ``model`` on one batch of ``split``; ``None`` when the batch scores nothing.

        The default: ``model(batch)``, :meth:`select`, :meth:`loss` (plus the model's auxiliary loss when it
        returns a :class:`~gnnlab.models.outputs.WithAuxLoss`), weighted by the scored rows, gathering
        ``(predictions, targets)``.
        """
        out, aux = model(batch), None
        if isinstance(out, WithAuxLoss):
            out, aux = out
        pred, target = self.select(out, batch, split)
        if target.numel() == 0:
            return None
        loss = self.loss(pred, target)
        return BatchOutput(loss if aux is None else loss + aux, target.shape[0], (pred, target))

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
        """All metrics on what :meth:`step` gathered over a split."""
        return {name: fn(pred, target) for name, fn in self._default_metrics().items()}

    def better(self, value: float, best: float | None) -> bool:
        """Whether ``value`` improves on ``best`` under :attr:`mode`; a non-finite value never does."""
        if not math.isfinite(value):
            return False
        if best is None:
            return True
        return value > best if self.mode == "max" else value < best


class GraphTask(Task):
    """A task with one prediction per graph: :meth:`select` checks that the model returned one row per target
    row, i.e. per graph of the batch (a model without graph pooling returns one per node)."""

    def select(self, out, batch, split):
        out, target = super().select(out, batch, split)
        num_targets = target.size(0) if target.dim() else 1
        if out.dim() == 0 or out.size(0) != num_targets:
            rows = "a scalar" if out.dim() == 0 else f"{out.size(0)} rows"
            raise ConfigError(
                f"{type(self).__name__}: the model returned {rows} for {num_targets} targets (one per graph); a "
                "graph-level task needs one row per graph, from a model with graph pooling (data.pool); a "
                "node-level model (DAGNN, the plain conv stacks) has none")
        return out, target


class GraphRegression(GraphTask):
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


class GraphClassification(GraphTask):
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


class MultilabelGraphClassification(GraphTask):
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


def _is_sampled(batch) -> bool:
    """Whether ``batch`` is a ``Data`` from PyG's ``NeighborLoader`` (seeds first, ``batch_size`` of them).

    A collated ``Batch`` of whole graphs has a ``batch_size`` property too, but not as a stored attribute,
    and no ``n_id``."""
    store = getattr(batch, "_store", None)
    return store is not None and "batch_size" in store and "n_id" in store


class NodeClassification(Task):
    """Node classification, inductive (PATTERN/CLUSTER) or transductive (Planetoid).

    A neighbour-sampled batch (:class:`gnnlab.data.SampledNodeDataModule`, PyG's ``NeighborLoader``)
    is scored on its seeds only, its first ``batch.batch_size`` nodes; a
    :class:`~gnnlab.data.sampled.LayerwiseBatch` runs the model on the whole graph layer by layer
    and scores the split's mask.

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

    def step(self, model, batch, split: str) -> BatchOutput | None:
        """The default step; for a :class:`~gnnlab.data.sampled.LayerwiseBatch` (the whole graph, evaluated
        by :meth:`gnnlab.models.GNN.layerwise_inference`) the model runs layer by layer, chunk by chunk."""
        if isinstance(batch, LayerwiseBatch):
            if not self.transductive:
                raise ConfigError("NodeClassification: whole-graph layer-wise evaluation scores a split's mask; "
                                  "set transductive=true")
            if not hasattr(model, "layerwise_inference"):
                raise ConfigError(f"NodeClassification: {type(model).__name__} has no layerwise_inference for "
                                  f"whole-graph evaluation; use a gnnlab.models.GNN or data.module.eval_mode=sampled")
            out = batch.outputs(model)
            pred, target = self.select(out, batch.data, split)
            if target.numel() == 0:
                return None
            return BatchOutput(self.loss(pred, target), target.shape[0], (pred, target))
        return super().step(model, batch, split)

    def select(self, out, batch, split):
        out, target = super().select(out, batch, split)
        target = target.view(-1).long()
        if _is_sampled(batch):
            # A neighbour-sampled batch (PyG's NeighborLoader): its first batch_size nodes are the
            # seeds, drawn from the split's nodes; the rest only carry messages.
            size = int(batch.batch_size)
            return out[:size], target[:size]
        if self.transductive:
            mask = getattr(batch, f"{split}_mask", None)
            if mask is None:
                raise DataError(f"NodeClassification(transductive=True): the graph has no `{split}_mask`")
            return out[mask], target[mask]
        return out, target

    def loss(self, pred, target):
        weight = None
        if self.class_weighted_loss:
            counts = torch.bincount(target, minlength=pred.size(-1)).to(pred.dtype)
            n = target.numel()
            weight = (n - counts) / n * (counts > 0).to(pred.dtype)  # a class absent from the batch weighs 0
        return F.cross_entropy(pred, target, weight=weight)


def _parse_metric(name: str):
    if name in ("mrr", "auc"):
        return M.mrr if name == "mrr" else M.link_auc
    k = name[5:] if name.startswith("hits@") else ""
    if k.strip().lstrip("+").isdigit() and int(k) >= 1:
        return lambda pos, neg: M.hits_at_k(pos, neg, int(k))
    raise ConfigError(f"LinkPrediction: unknown metric {name!r} (expected 'hits@K', 'mrr' or 'auc')")


class LinkPrediction(Task):
    """Link prediction by NCN's protocol (Wang, Yang, Zhang, ICLR 2024), scored by ranking.

    A batch is a :class:`gnnlab.data.linkpred.LinkBatch`; the model has ``encode(x, graph, edge_mask)``,
    ``score(h, graph, pairs, edge_mask)`` and a forward doing both
    (:class:`gnnlab.models.link.LinkPredictionModel`). Training: hide the batch's positive pairs (a
    data-parallel step: the whole global batch) from the graph (:func:`gnnlab.ops.target_link_mask`), run the
    forward on positives and negatives together, and minimise ``−mean log σ(s_pos) − mean log σ(−s_neg)``
    (a step weighs its number of positives). Evaluation: encode once and score every pair, ``chunk_size`` at
    a time; the metrics rank positives against negatives like OGB's evaluator.

    Args:
        metrics: names among ``"hits@K"`` (any K), ``"mrr"`` (negatives ``[P, K]`` per positive, as
            ogbl-citation2) and ``"auc"``.
        monitor: the metric that selects the best epoch (default the first of ``metrics``).
        target_link_removal: hide each training batch's positive pairs (NCN's ``--maskinput``).
    """

    level = "link"

    def __init__(self, metrics: tuple[str, ...] | list[str] = ("hits@100",), monitor: str | None = None,
                 mode: str = "max", target_link_removal: bool = True):
        if not metrics:
            raise ConfigError("LinkPrediction: metrics must name at least one metric")
        self.metric_names = list(metrics)
        self._fns = {name: _parse_metric(name) for name in self.metric_names}
        self.target_link_removal = target_link_removal
        super().__init__(monitor or self.metric_names[0], mode)

    def _default_metrics(self):
        return self._fns

    def step(self, model, batch, split: str) -> BatchOutput:
        graph = batch.graph
        if split == "train":
            hidden = batch.pos if batch.hidden is None else batch.hidden
            mask = target_link_mask(graph, hidden) if self.target_link_removal else None
            # Encoder and predictor in one forward call (what a DistributedDataParallel wrapper runs).
            # Positives and negatives in one predictor call: the node-wise parts of the predictor
            # run once per step (NCN's code calls it twice, drawing separate dropout masks).
            logits = model(batch.x, graph, torch.cat([batch.pos, batch.neg], dim=1), mask)
            num_pos = batch.pos.size(1)
            return BatchOutput(self.loss(logits[:num_pos], logits[num_pos:]), num_pos, None)
        h = model.encode(batch.x, graph)
        pos = self._score(model, h, graph, batch.pos, batch.chunk_size)
        neg = self._score(model, h, graph, batch.neg, batch.chunk_size)
        # The loss as positives-weighted part of the whole split's (a share of it in a data-parallel run):
        # the weighted mean over the shares is -mean log σ(pos) - mean log σ(-neg) over the whole split.
        total_pos, total_neg = batch.totals or (pos.numel(), neg.numel())
        pos_sum, neg_sum = -F.logsigmoid(pos).sum(), -F.logsigmoid(-neg).sum()
        loss = (pos_sum + neg_sum * (total_pos / max(total_neg, 1))) / max(pos.numel(), 1)
        return BatchOutput(loss, pos.numel(), (pos, neg))

    @staticmethod
    def _score(model, h, graph, pairs: Tensor, chunk_size: int | None) -> Tensor:
        """``model.score`` of ``pairs`` ``[2, P]``, ``chunk_size`` pairs at a time, as a float CPU vector ``[P]``."""
        step = chunk_size or max(pairs.size(1), 1)
        return torch.cat([model.score(h, graph, pairs[:, s:s + step]).detach().float().cpu().view(-1)
                          for s in range(0, pairs.size(1), step)] or [torch.empty(0)])

    def loss(self, pos_logits: Tensor, neg_logits: Tensor) -> Tensor:
        """``−mean log σ(pos) − mean log σ(−neg)``."""
        return -F.logsigmoid(pos_logits).mean() - F.logsigmoid(-neg_logits).mean()

    def compute_metrics(self, pos_scores: Tensor, neg_scores: Tensor) -> dict[str, float]:
        # MRR ranks each positive against its own negatives ([P, K]); the others use one shared pool.
        return {name: fn(pos_scores, neg_scores.view(pos_scores.numel(), -1) if name == "mrr" else neg_scores)
                for name, fn in self._fns.items()}
