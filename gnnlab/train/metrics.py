"""Evaluation metrics on tensors (CPU or GPU); each returns a Python float.

Definitions follow the benchmarks that report them; the tests compare every function with
scikit-learn on random inputs.
"""
from __future__ import annotations

import torch
from torch import Tensor


def _check_pair(pred: Tensor, target: Tensor, name: str) -> None:
    if pred.shape[0] != target.shape[0]:
        raise ValueError(f"{name}: pred has {pred.shape[0]} rows but target has {target.shape[0]}")
    if target.shape[0] == 0:
        raise ValueError(f"{name}: empty input")


def _labels(pred: Tensor) -> Tensor:
    """Class indices from logits ``[N, C]``, binary logits ``[N]``/``[N, 1]`` (threshold 0), or indices."""
    if pred.dim() == 2 and pred.size(1) > 1:
        return pred.argmax(dim=-1)
    pred = pred.view(-1)
    if pred.is_floating_point():
        return (pred > 0).long()
    return pred.long()


def accuracy(pred: Tensor, target: Tensor) -> float:
    """Fraction of correct predictions, in ``[0, 1]``."""
    _check_pair(pred, target, "accuracy")
    return (_labels(pred) == target.view(-1).long()).float().mean().item()


def weighted_accuracy(pred: Tensor, target: Tensor) -> float:
    """Class-balanced accuracy in percent, as Benchmarking-GNNs' ``accuracy_SBM`` defines it.

    With ``CM`` the confusion matrix over the classes seen in ``target`` or in the prediction
    (``nb_classes`` rows), the value is ``100 * Σ_r recall_r / nb_classes`` where
    ``recall_r = CM[r, r] / #(target == r)`` and a class absent from ``target`` contributes 0.
    When every class of the prediction also occurs in the target this is
    ``100 * sklearn.metrics.balanced_accuracy_score``; sklearn instead ignores classes absent
    from the target. Benchmarking-GNNs averages this per batch; gnnlab evaluates it over the
    whole split (as GraphGPS does).
    """
    _check_pair(pred, target, "weighted_accuracy")
    y = target.view(-1).long()
    p = _labels(pred)
    classes = torch.unique(torch.cat([y, p]))
    nb_classes = classes.numel()
    correct = torch.zeros(nb_classes, dtype=torch.float64, device=y.device)
    total = torch.zeros(nb_classes, dtype=torch.float64, device=y.device)
    idx = torch.searchsorted(classes, y)
    total.index_add_(0, idx, torch.ones_like(y, dtype=torch.float64))
    correct.index_add_(0, idx, (p == y).to(torch.float64))
    recall = torch.where(total > 0, correct / total.clamp_min(1), torch.zeros_like(total))
    return (100.0 * recall.sum() / nb_classes).item()


def mae(pred: Tensor, target: Tensor) -> float:
    """Mean absolute error."""
    if pred.numel() != target.numel():
        raise ValueError(f"mae: pred has {pred.numel()} values but target has {target.numel()}")
    if target.numel() == 0:
        raise ValueError("mae: empty input")
    return (pred.reshape(-1).double() - target.reshape(-1).double()).abs().mean().item()


def _columns(pred: Tensor, target: Tensor, name: str) -> tuple[Tensor, Tensor]:
    _check_pair(pred, target, name)
    pred = pred.double().reshape(pred.shape[0], -1)
    target = target.double().reshape(target.shape[0], -1)
    if pred.shape != target.shape:
        raise ValueError(f"{name}: pred shape {list(pred.shape)} does not match target shape {list(target.shape)}")
    return pred, target


def _binary_auc(score: Tensor, label: Tensor) -> float:
    # Mann-Whitney U with average ranks for ties (what sklearn's roc_auc_score computes).
    order = torch.argsort(score)
    s = score[order]
    ranks = torch.empty_like(s)
    _, inverse, counts = torch.unique_consecutive(s, return_inverse=True, return_counts=True)
    ends = torch.cumsum(counts, 0).double()
    avg_rank = ends - (counts.double() - 1) / 2  # 1-based average rank of each tie group
    ranks = avg_rank[inverse]
    pos = label[order] > 0.5
    n_pos = int(pos.sum())
    n_neg = label.numel() - n_pos
    u = ranks[pos].sum() - n_pos * (n_pos + 1) / 2
    return (u / (n_pos * n_neg)).item()


def _binary_ap(score: Tensor, label: Tensor) -> float:
    # Step-wise AP over distinct thresholds (sklearn's definition): sum_k (R_k - R_{k-1}) P_k.
    order = torch.argsort(score, descending=True)
    s, y = score[order], label[order]
    tp = torch.cumsum(y, 0)
    fp = torch.cumsum(1 - y, 0)
    last = torch.ones_like(s, dtype=torch.bool)
    last[:-1] = s[1:] != s[:-1]  # keep the last position of each tie group
    tp, fp = tp[last], fp[last]
    precision = tp / (tp + fp)
    recall = tp / tp[-1]
    prev = torch.cat([recall.new_zeros(1), recall[:-1]])
    return ((recall - prev) * precision).sum().item()


def _per_task(pred: Tensor, target: Tensor, name: str, fn) -> float:
    pred, target = _columns(pred, target, name)
    values = []
    for t in range(target.shape[1]):
        observed = ~torch.isnan(target[:, t])
        y = target[observed, t]
        if y.numel() == 0 or bool((y > 0.5).all()) or bool((y <= 0.5).all()):
            continue  # only one class present: undefined, skipped like OGB's evaluator
        values.append(fn(pred[observed, t], (y > 0.5).double()))
    if not values:
        raise ValueError(f"{name}: no task has both positive and negative targets")
    return float(sum(values) / len(values))


def roc_auc(pred: Tensor, target: Tensor) -> float:
    """ROC-AUC of scores vs binary targets; for ``[N, T]`` the mean over tasks with both classes
    present (NaN targets are missing, as in OGB's evaluator)."""
    return _per_task(pred, target, "roc_auc", _binary_auc)


def average_precision(pred: Tensor, target: Tensor) -> float:
    """Average precision as sklearn's ``average_precision_score`` (no interpolation); for
    ``[N, T]`` the mean over tasks with both classes present (LRGB Peptides-func "AP")."""
    return _per_task(pred, target, "average_precision", _binary_ap)
