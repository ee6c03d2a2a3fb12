"""Evaluation metrics on tensors (CPU or GPU); each returns a Python float.

Every function states the definition it computes. The reference values are scikit-learn's
(``accuracy_score``, ``balanced_accuracy_score``, ``mean_absolute_error``, ``roc_auc_score``,
``average_precision_score``) and Benchmarking-GNNs' ``accuracy_SBM``; the tests compare against
them on random inputs, ties and missing labels included. scikit-learn is not used here so that
evaluation stays on the tensors' device.

Scales: :func:`accuracy` is a fraction in ``[0, 1]``; :func:`weighted_accuracy` is a percentage in
``[0, 100]`` because that is how Benchmarking-GNNs reports PATTERN/CLUSTER.

Link prediction (:func:`hits_at_k`, :func:`mrr`, :func:`link_auc`) takes the scores of positive and
negative pairs separately, as OGB's ``linkproppred.Evaluator`` does, and returns fractions in ``[0, 1]``
(multiply by 100 for the percentages papers print). The tests compare them with ``ogb``'s ``Evaluator``
(ogbl-ppa, -collab, -ddi, -citation2) and with ``roc_auc_score``.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

__all__ = [
    "accuracy", "weighted_accuracy", "mae", "roc_auc", "average_precision", "hits_at_k", "mrr", "link_auc",
]


def _num_rows(pred: Tensor, target: Tensor, name: str) -> int:
    if pred.dim() == 0 or target.dim() == 0:
        raise ValueError(f"{name}: expected tensors with a sample dimension, got shapes "
                         f"{list(pred.shape)} and {list(target.shape)}")
    n = pred.shape[0]
    if n != target.shape[0]:
        raise ValueError(f"{name}: pred has {n} rows but target has {target.shape[0]}")
    if n == 0:
        raise ValueError(f"{name}: empty input")
    return n


def _class_targets(pred: Tensor, target: Tensor, name: str) -> tuple[Tensor, Tensor]:
    """``(predicted labels, target labels)``, both long ``[N]``, for the classification metrics."""
    n = _num_rows(pred, target, name)
    if target.numel() != n:
        raise ValueError(f"{name}: target must hold one class index per row, got shape {list(target.shape)}")
    if pred.dim() > 2:
        raise ValueError(f"{name}: pred must be [N], [N, 1] or [N, C], got {list(pred.shape)}")
    if pred.dim() == 2 and pred.size(1) > 1:
        labels = pred.argmax(dim=-1)
    else:
        flat = pred.reshape(-1)
        # A float vector is read as binary logits; an integer/bool one already holds class indices.
        labels = (flat > 0).long() if flat.is_floating_point() else flat.long()
    return labels, target.reshape(-1).long()


def accuracy(pred: Tensor, target: Tensor) -> float:
    """Fraction of correct predictions: ``#{i : ŷ_i = y_i} / N``, in ``[0, 1]``.

    Args:
        pred: logits ``[N, C]`` (``ŷ = argmax``), binary logits ``[N]`` or ``[N, 1]`` of a
            floating dtype (``ŷ = 1[pred > 0]``), or integer class indices ``[N]``.
        target: class indices ``[N]`` (or ``[N, 1]``).
    """
    labels, y = _class_targets(pred, target, "accuracy")
    return (labels == y).double().mean().item()


def weighted_accuracy(pred: Tensor, target: Tensor, num_classes: int | None = None) -> float:
    """Class-balanced accuracy, a fraction like :func:`accuracy`: Benchmarking-GNNs' ``accuracy_SBM``
    (PATTERN, CLUSTER), which reports it in percent (experiments say ``benchmark.scale: 100``).

    Let ``CM`` be the confusion matrix of ``target`` against the predicted labels (``pred`` read
    as in :func:`accuracy`) with ``nb_classes`` rows, one per class seen in ``target`` or in the
    prediction (scikit-learn's ``confusion_matrix`` without ``labels``). Then::

        recall_r = CM[r, r] / #(target == class_r)    (0 when class_r does not occur in target)
        value    = Σ_r recall_r / nb_classes

    Compared with ``sklearn.metrics.balanced_accuracy_score``, which averages the recall only over
    the classes present in ``target``, a class that is predicted but absent from ``target`` still
    counts in ``nb_classes`` with recall 0 here, so the value is lower. When every predicted class
    occurs in ``target`` the two agree: ``value == balanced_accuracy_score``.

    Benchmarking-GNNs' code divides row ``r`` by ``#(target == r)``, taking the row position as
    the label; that is the same as ``class_r`` whenever the classes seen are ``0..nb_classes-1``
    (always the case on PATTERN/CLUSTER). Otherwise its numerator and denominator refer to
    different classes (a recall above 1 is possible), so rows are matched to their own class here.

    Args:
        pred: logits ``[N, C]``, binary logits ``[N]``/``[N, 1]``, or class indices ``[N]``.
        target: class indices ``[N]``.
        num_classes: when given, ``CM`` has the rows ``0..num_classes-1`` whatever the input
            contains (scikit-learn's ``labels=range(num_classes)``), so ``nb_classes = num_classes``
            and a class never seen contributes a recall of 0. Labels outside that range raise.

    Returns:
        The value in ``[0, 1]``.
    """
    labels, y = _class_targets(pred, target, "weighted_accuracy")
    hit = labels == y
    if num_classes is None:
        classes = torch.unique(torch.cat([y, labels]))  # sorted: the rows of CM
        k = classes.numel()
        row = torch.searchsorted(classes, y)
    else:
        if num_classes < 1:
            raise ValueError(f"weighted_accuracy: num_classes must be positive, got {num_classes}")
        both = torch.cat([y, labels])
        if bool(((both < 0) | (both >= num_classes)).any()):
            raise ValueError(f"weighted_accuracy: labels outside 0..{num_classes - 1} with num_classes={num_classes}")
        k = num_classes
        row = y
    correct = torch.bincount(row[hit], minlength=k).double()
    count = torch.bincount(row, minlength=k).double()
    recall = torch.where(count > 0, correct / count.clamp_min(1), torch.zeros_like(count))
    return (recall.sum() / k).item()


def _drop_trailing_ones(shape: torch.Size) -> tuple[int, ...]:
    dims = list(shape)
    while dims and dims[-1] == 1:
        dims.pop()
    return tuple(dims)


def _check_same_shape(pred: Tensor, target: Tensor, name: str) -> None:
    # [N] against [N, 1] is the usual single-target case; anything else must match exactly.
    if pred.shape != target.shape and _drop_trailing_ones(pred.shape) != _drop_trailing_ones(target.shape):
        raise ValueError(f"{name}: pred shape {list(pred.shape)} does not match target shape {list(target.shape)}")


def mae(pred: Tensor, target: Tensor) -> float:
    """Mean absolute error ``Σ_i |pred_i - y_i| / n`` over all ``n`` entries.

    ``pred`` and ``target`` must have the same shape, except that ``[N]`` and ``[N, 1]`` are
    interchangeable; both are flattened.
    """
    _check_same_shape(pred, target, "mae")
    if target.numel() == 0:
        raise ValueError("mae: empty input")
    return (pred.reshape(-1).double() - target.reshape(-1).double()).abs().mean().item()


def _task_columns(pred: Tensor, target: Tensor, name: str) -> tuple[Tensor, Tensor]:
    """Scores and targets as float64 ``[N, T]``, with the targets checked to be 0, 1 or NaN."""
    n = _num_rows(pred, target, name)
    if pred.dim() > 2 or target.dim() > 2:
        raise ValueError(f"{name}: expected [N] or [N, T] tensors, got {list(pred.shape)} and {list(target.shape)}")
    _check_same_shape(pred, target, name)
    score = pred.double().reshape(n, -1)
    label = target.double().reshape(n, -1)
    observed = label[~torch.isnan(label)]
    if bool(((observed != 0) & (observed != 1)).any()):
        raise ValueError(f"{name}: targets must be 0, 1 or NaN (missing)")
    return score, label


def _binary_auc(score: Tensor, label: Tensor) -> float:
    # Mann-Whitney U with tied scores sharing their average rank, which is the area under the
    # ROC curve with linear interpolation across ties (sklearn's roc_auc_score).
    order = torch.argsort(score)
    _, inverse, counts = torch.unique_consecutive(score[order], return_inverse=True, return_counts=True)
    ends = torch.cumsum(counts, 0).double()
    ranks = (ends - (counts.double() - 1) / 2)[inverse]  # 1-based average rank of each tie group
    pos = label[order] == 1
    n_pos = int(pos.sum())
    n_neg = label.numel() - n_pos
    u = ranks[pos].sum() - n_pos * (n_pos + 1) / 2
    return (u / (n_pos * n_neg)).item()


def _binary_ap(score: Tensor, label: Tensor) -> float:
    # One threshold per distinct score, so a tie group enters as a single step:
    # AP = Σ_k (R_k - R_{k-1}) P_k, R_0 = 0, without interpolating the precision.
    order = torch.argsort(score, descending=True)
    s, y = score[order], label[order]
    tp = torch.cumsum(y, 0)
    fp = torch.cumsum(1 - y, 0)
    last = torch.ones_like(s, dtype=torch.bool)
    last[:-1] = s[1:] != s[:-1]  # the last position of a tie group counts the whole group
    tp, fp = tp[last], fp[last]
    precision = tp / (tp + fp)
    recall = tp / tp[-1]
    prev = torch.cat([recall.new_zeros(1), recall[:-1]])
    return ((recall - prev) * precision).sum().item()


def _mean_over_tasks(pred: Tensor, target: Tensor, name: str, fn: Callable[[Tensor, Tensor], float]) -> float:
    score, label = _task_columns(pred, target, name)
    values = []
    for t in range(label.shape[1]):
        observed = ~torch.isnan(label[:, t])
        y = label[observed, t]
        n_pos = int(y.sum())
        if n_pos == 0 or n_pos == y.numel():
            continue  # the metric is undefined with one class; OGB's evaluator skips such tasks
        s = score[observed, t]
        # A diverged model's NaN scores have no ranking: report NaN rather than a made-up value.
        values.append(float("nan") if bool(torch.isnan(s).any()) else fn(s, y))
    if not values:
        raise ValueError(f"{name}: no task has both positive and negative targets")
    return float(sum(values) / len(values))


def roc_auc(pred: Tensor, target: Tensor) -> float:
    """Area under the ROC curve of scores against binary targets.

    For one task, ``AUC = P(s⁺ > s⁻) + ½ P(s⁺ = s⁻)`` over positive/negative pairs, computed from
    average ranks (``(Σ rank(positives) - n⁺(n⁺+1)/2) / (n⁺ n⁻)``), which equals
    ``sklearn.metrics.roc_auc_score`` including ties.

    For multi-label ``[N, T]`` input the value is the mean over tasks of the per-task AUC, where NaN
    targets are missing and tasks with a single observed class are skipped (OGB's evaluator).

    Args:
        pred: scores or logits ``[N]`` or ``[N, T]`` (any monotone transform gives the same value).
        target: 0/1 (or NaN) ``[N]`` or ``[N, T]``.

    Raises:
        ValueError: mismatched shapes, empty input, targets other than 0/1/NaN, or no task with
            both classes.
    """
    return _mean_over_tasks(pred, target, "roc_auc", _binary_auc)


def average_precision(pred: Tensor, target: Tensor) -> float:
    """Average precision, as ``sklearn.metrics.average_precision_score`` defines it.

    For one task, with one threshold per distinct score taken in decreasing order,
    ``AP = Σ_k (R_k - R_{k-1}) P_k`` where ``P_k`` and ``R_k`` are precision and recall at the
    ``k``-th threshold and ``R_0 = 0``; the precision is not interpolated, and tied scores form a
    single threshold.

    For multi-label ``[N, T]`` input the value is the mean over tasks with both classes observed,
    NaN targets being missing: the LRGB Peptides-func "AP" metric.

    Args:
        pred: scores or logits ``[N]`` or ``[N, T]``.
        target: 0/1 (or NaN) ``[N]`` or ``[N, T]``.

    Raises:
        ValueError: mismatched shapes, empty input, targets other than 0/1/NaN, or no task with
            both classes.
    """
    return _mean_over_tasks(pred, target, "average_precision", _binary_ap)


# ------------------------------------------------------------------------------------ link prediction


def _link_scores(scores: Tensor, name: str, what: str, dims: int = 1) -> Tensor:
    """``scores`` checked to be a non-empty real tensor without NaN, of ``dims`` dimensions.

    For ``dims=1`` a ``[N, 1]`` column is accepted and flattened (a model's usual output).
    """
    if not isinstance(scores, Tensor):
        raise TypeError(f"{name}: {what} must be a torch.Tensor, got {type(scores).__name__}")
    if dims == 1 and scores.dim() == 2 and scores.size(1) == 1:
        scores = scores.reshape(-1)
    if scores.dim() != dims:
        expected = "[N] (or [N, 1])" if dims == 1 else "[B, K]"
        raise ValueError(f"{name}: {what} must have shape {expected}, got {list(scores.shape)}")
    if scores.numel() == 0:
        raise ValueError(f"{name}: {what} is empty (shape {list(scores.shape)})")
    if scores.is_complex():
        raise ValueError(f"{name}: {what} must be real, got {scores.dtype}")
    if scores.dtype == torch.bool:
        scores = scores.long()
    if scores.is_floating_point() and bool(torch.isnan(scores).any()):
        raise ValueError(f"{name}: {what} contains NaN (a diverged model?); a ranking metric has no value for it")
    return scores


def _pair_scores(pos_scores: Tensor, neg_scores: Tensor, name: str, neg_dims: int = 1) -> tuple[Tensor, Tensor]:
    """The positive and negative scores checked by :func:`_link_scores` and brought to a common dtype."""
    pos = _link_scores(pos_scores, name, "pos_scores")
    neg = _link_scores(neg_scores, name, "neg_scores", dims=neg_dims)
    # float64 holds every float16/bfloat16/float32 value exactly and int64 every integer score, so
    # the comparisons below are those of the inputs' own dtypes. pos follows neg's device (OGB does).
    dtype = torch.float64 if pos.is_floating_point() or neg.is_floating_point() else torch.int64
    return pos.to(device=neg.device, dtype=dtype), neg.to(dtype)


def hits_at_k(pos_scores: Tensor, neg_scores: Tensor, k: int) -> float:
    """Hits@K with OGB's rule (ogbl-ppa K=100, ogbl-collab K=50, ogbl-ddi K=20; NCN's Cora HR@100).

    Every positive is ranked against the same pool of negatives. With ``t`` the ``k``-th highest
    negative score (counting tied negatives separately, ``torch.topk(neg, k).values[-1]``)::

        hits@k = #{i : pos_i > t} / #pos        (strictly greater: a positive tied with t misses)

    and ``hits@k = 1.0`` when there are fewer than ``k`` negatives, as in
    ``ogb.linkproppred.Evaluator._eval_hits``.

    Args:
        pos_scores: scores of the positive pairs, ``[P]`` or ``[P, 1]``.
        neg_scores: scores of the negative pairs, ``[N]`` or ``[N, 1]``.
        k: a positive integer.

    Returns:
        A Python float in ``[0, 1]``.

    Raises:
        ValueError: empty input, wrong shapes, NaN scores, or ``k`` not a positive integer.
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"hits_at_k: k must be a positive integer, got {k!r}")
    pos, neg = _pair_scores(pos_scores, neg_scores, "hits_at_k")
    if neg.numel() < k:
        return 1.0
    threshold = torch.topk(neg, k).values[-1]
    return (pos > threshold).double().mean().item()


def mrr(pos_scores: Tensor, neg_scores: Tensor) -> float:
    """Mean reciprocal rank with OGB's tie rule (ogbl-citation2, which has 1000 negatives per positive).

    Positive ``i`` is ranked against its own negatives ``neg[i, :]``. Ties take the mean of the
    optimistic and the pessimistic rank, as in ``ogb.linkproppred.Evaluator._eval_mrr``::

        optimistic_i  = #{j : neg[i, j] >  pos_i}
        pessimistic_i = #{j : neg[i, j] >= pos_i}
        rank_i        = (optimistic_i + pessimistic_i) / 2 + 1
        mrr           = mean_i 1 / rank_i

    OGB returns the list ``1 / rank_i`` in float32 and leaves the mean to the caller; here both are
    computed in float64.

    Args:
        pos_scores: ``[B]`` (or ``[B, 1]``) scores of the positive pairs.
        neg_scores: ``[B, K]`` scores of the negatives of each positive, ``K >= 1``.

    Returns:
        A Python float in ``(0, 1]``.

    Raises:
        ValueError: empty input, wrong shapes (including ``B`` not matching), or NaN scores.
    """
    pos, neg = _pair_scores(pos_scores, neg_scores, "mrr", neg_dims=2)
    if neg.size(0) != pos.numel():
        raise ValueError(f"mrr: {pos.numel()} positives but neg_scores has {neg.size(0)} rows "
                         f"(expected [B, K] with B = {pos.numel()})")
    pos = pos.view(-1, 1)
    optimistic = (neg > pos).sum(dim=1)
    pessimistic = (neg >= pos).sum(dim=1)
    rank = 0.5 * (optimistic + pessimistic).double() + 1.0
    return (1.0 / rank).mean().item()


def link_auc(pos_scores: Tensor, neg_scores: Tensor) -> float:
    """ROC-AUC of positive against negative scores: ``P(s⁺ > s⁻) + ½ P(s⁺ = s⁻)``.

    The value of ``sklearn.metrics.roc_auc_score`` on the concatenated scores with labels 1 for the
    positives and 0 for the negatives (ties included), which is also what OGB's ``rocauc`` evaluator
    (ogbl-vessel) returns and what NCN and the Planetoid link-prediction literature report as "AUC".

    Args:
        pos_scores: ``[P]`` or ``[P, 1]``.
        neg_scores: ``[N]`` or ``[N, 1]``.

    Returns:
        A Python float in ``[0, 1]``.

    Raises:
        ValueError: empty input, wrong shapes or NaN scores.
    """
    pos, neg = _pair_scores(pos_scores, neg_scores, "link_auc")
    score = torch.cat([pos, neg]).double()
    label = torch.cat([torch.ones_like(pos, dtype=torch.float64), torch.zeros_like(neg, dtype=torch.float64)])
    return _binary_auc(score, label)
