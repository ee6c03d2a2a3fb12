"""Link prediction: the task (loss and ranking metrics) and the trainer that runs NCN's protocol.

One training step, as in NCN (``NeighborOverlap.py``): hide the batch's positive pairs from the
adjacency (target-link removal, :meth:`gnnlab.ops.Adjacency.target_link_mask`), encode all nodes,
score the batch's positives and as many random negatives, and minimise

    L = −mean log σ(s_pos) − mean log σ(−s_neg).

Evaluation encodes once on the full training graph and scores every validation/test pair; the
metric (Hits@K, MRR, AUC from :mod:`gnnlab.train.metrics`) ranks positives against negatives like
OGB's evaluator. Model selection, checkpoints, resume and logging are :class:`Trainer`'s.
"""
from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from torch import Tensor

from gnnlab.errors import ConfigError
from gnnlab.train import metrics as M
from gnnlab.train.checkpoint import save_checkpoint
from gnnlab.train.tasks import Task
from gnnlab.train.trainer import SPLITS, FitResult, Trainer

__all__ = ["LinkPrediction", "LinkTrainer"]


def _parse_metric(name: str):
    if name == "mrr":
        return M.mrr
    if name == "auc":
        return M.link_auc
    if name.startswith("hits@"):
        try:
            k = int(name[5:])
        except ValueError:
            k = 0
        if k >= 1:
            return lambda pos, neg: M.hits_at_k(pos, neg, k)
    raise ConfigError(f"LinkPrediction: unknown metric {name!r} (expected 'hits@K', 'mrr' or 'auc')")


class LinkPrediction(Task):
    """Binary link prediction scored by ranking.

    Args:
        metrics: names among ``"hits@K"`` (any K), ``"mrr"`` (negatives ``[P, K]`` per positive, as
            ogbl-citation2) and ``"auc"``.
        monitor: the metric that selects the best epoch (default the first of ``metrics``).
    """

    level = "link"

    def __init__(self, metrics: tuple[str, ...] | list[str] = ("hits@100",), monitor: str | None = None,
                 mode: str = "max"):
        if not metrics:
            raise ConfigError("LinkPrediction: metrics must name at least one metric")
        self.metric_names = list(metrics)
        self._fns = {name: _parse_metric(name) for name in self.metric_names}
        super().__init__(monitor or self.metric_names[0], mode)

    def _default_metrics(self):
        return self._fns

    def loss(self, pos_logits: Tensor, neg_logits: Tensor) -> Tensor:
        """``−mean log σ(pos) − mean log σ(−neg)``."""
        return -F.logsigmoid(pos_logits).mean() - F.logsigmoid(-neg_logits).mean()

    def compute_metrics(self, pos_scores: Tensor, neg_scores: Tensor) -> dict[str, float]:
        out = {}
        for name, fn in self._fns.items():
            neg = neg_scores
            if name == "mrr":
                neg = neg_scores.view(pos_scores.numel(), -1)
            out[name] = fn(pos_scores, neg)
        return out


def _score_pairs(model, h, adj, pairs: Tensor, batch_size: int) -> Tensor:
    """``model.score`` of ``pairs`` ``[2, P]``, ``batch_size`` pairs at a time, as a float CPU vector ``[P]``."""
    return torch.cat([model.score(h, adj, pairs[:, s:s + batch_size]).detach().float().cpu().view(-1)
                      for s in range(0, pairs.size(1), batch_size)] or [torch.empty(0)])


class LinkTrainer(Trainer):
    """:class:`Trainer` for link prediction over a :class:`gnnlab.data.linkpred.LinkDataModule`.

    Args:
        target_link_removal: hide each training batch's positive pairs from the graph the model
            sees in that step (NCN's ``--maskinput``).
        Others: as :class:`Trainer`.

    A model without trainable parameters (the heuristics) is not trained: :meth:`fit` scores the
    validation and test splits once.
    """

    def __init__(self, *args, target_link_removal: bool = True, **kwargs):
        kwargs.setdefault("scheduler_monitor", "val/loss")
        super().__init__(*args, **kwargs)
        self.target_link_removal = target_link_removal

    def _run_split(self, model, task: Task, loader, split: str, optimizer=None, bar=None) -> dict[str, float]:
        if optimizer is None:
            model.eval()
            with torch.no_grad():
                h = model.encode(loader.x, loader.adj)
                pos = _score_pairs(model, h, loader.adj, loader.pos, loader.batch_size)
                neg = _score_pairs(model, h, loader.adj, loader.neg, loader.batch_size)
            loss = task.loss(pos, neg.view(-1)).item()
            metrics = task.compute_metrics(pos, neg)
            return {f"{split}/loss": loss, **{f"{split}/{k}": v for k, v in metrics.items()}}

        model.train()
        loss_sum, steps = 0.0, 0
        for step, (pos, neg) in enumerate(loader, start=1):
            mask = loader.adj.target_link_mask(pos) if self.target_link_removal else None
            h = model.encode(loader.x, loader.adj, mask)
            # Positives and negatives in one predictor call: the node-wise parts of the predictor
            # run once per step (NCN's code calls it twice, drawing separate dropout masks).
            logits = model.score(h, loader.adj, torch.cat([pos, neg], dim=1), mask)
            loss = task.loss(logits[:pos.size(1)], logits[pos.size(1):])
            self._step(model, optimizer, loss, step)
            loss_sum += loss.item()
            steps += 1
            if bar is not None:
                bar[0].advance(bar[1])
        if steps == 0:
            raise ValueError("the training split gave no batch (fewer pairs than batch_size with drop_last?)")
        return {f"{split}/loss": loss_sum / steps}

    def evaluate(self, model, task: Task, datamodule, splits=("val", "test")) -> dict[str, float]:
        model.to(self.device)
        return super().evaluate(model, task, datamodule.to(self.device), splits)

    def fit(self, model, task: Task, datamodule, optimizer, scheduler=None, logger=None, resume: str | None = None) -> FitResult:
        datamodule.to(self.device)
        if optimizer is not None:
            return super().fit(model, task, datamodule, optimizer, scheduler, logger, resume)
        # Nothing to train: score once and record it as the best (and only) epoch.
        t0 = time.perf_counter()
        metrics = self.evaluate(model, task, datamodule)
        metrics.update({"epoch": 1, "time/epoch_s": time.perf_counter() - t0})
        if logger is not None:
            logger.log_metrics(metrics, step=1)
        best_metrics = {k: v for k, v in metrics.items() if k.split("/")[0] in SPLITS}
        save_checkpoint(self.checkpoint_dir / "best.ckpt", {"model": model.state_dict(), "epoch": 1, "metrics": best_metrics})
        key = f"val/{task.monitor}"
        return FitResult(1, key, float(metrics[key]), best_metrics, epochs_run=1, last_metrics=best_metrics)


def topological_concentration_report(run_dir, out_dir=None, k: int = 1, hits_k: int | None = None,
                                     approximate: bool = False, bins: int = 10, split: str = "test"):
    """Per-node TC, degree and per-node Hits@K of a trained link-prediction run, as files.

    Rebuilds the run's data split and model from ``<run_dir>/config_resolved.yaml``, loads
    ``checkpoints/best.ckpt``, scores ``split`` (``"test"`` or ``"val"``) and writes, through
    :func:`gnnlab.analysis.tc_report`, ``per_node.csv``, ``tc_bins.csv`` and
    ``performance_vs_tc.png`` to ``out_dir`` (default ``<run_dir>/topological_concentration``).
    TC is computed on the training graph (exactly for any ``k``, or with ATC when ``approximate``).

    Args:
        hits_k: K of the per-node Hits (default: the K of the run's first ``hits@K`` metric, else 100).

    Returns:
        The :class:`gnnlab.analysis.TCReport` of the written paths.
    """
    from pathlib import Path

    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from gnnlab.analysis import approximate_topological_concentration, per_node_hits, tc_report, topological_concentration
    from gnnlab.train.checkpoint import load_checkpoint

    run_dir = Path(run_dir)
    config, ckpt = run_dir / "config_resolved.yaml", run_dir / "checkpoints" / "best.ckpt"
    for path in (config, ckpt):
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: is {run_dir} the folder of a finished gnnlab-train run?")
    cfg = OmegaConf.load(config)
    if cfg.data.module.get("_target_") != "gnnlab.data.linkpred.LinkDataModule":
        raise ValueError(f"{run_dir} is not a link-prediction run (data module {cfg.data.module.get('_target_')})")
    if hits_k is None:
        named = [m for m in cfg.task.get("metrics", []) if str(m).startswith("hits@")]
        hits_k = int(str(named[0])[5:]) if named else 100
    datamodule = instantiate(cfg.data.module)
    model = instantiate(cfg.model)
    model.load_state_dict(load_checkpoint(ckpt)["model"])
    model.eval()
    data = datamodule.loader(split)
    with torch.no_grad():
        h = model.encode(data.x, data.adj)
        pos = _score_pairs(model, h, data.adj, data.pos, data.batch_size)
        neg = _score_pairs(model, h, data.adj, data.neg, data.batch_size)
    nodes, hits = per_node_hits(data.pos, pos, neg, hits_k, num_nodes=datamodule.split.num_nodes)
    graph = datamodule.split.train_edge_index()
    n = datamodule.split.num_nodes
    tc = approximate_topological_concentration(graph, n, k=k) if approximate else topological_concentration(graph, n, k=k)
    degree = datamodule.adj.degree()
    label = f"{'ATC' if approximate else 'TC'}^{k} (training graph)"
    return tc_report(tc, degree, (nodes, hits), Path(out_dir) if out_dir else run_dir / "topological_concentration",
                     bins=bins, metric=f"Hits@{hits_k} ({split})", title=f"{cfg.get('name', run_dir.name)}: {label}")
