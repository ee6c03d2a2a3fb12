"""Every metric against scikit-learn (and Benchmarking-GNNs' accuracy_SBM) on random inputs.

Inputs include tied scores, NaN (missing) multi-label targets, tasks with one class, and classes
predicted but absent from the target.
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    balanced_accuracy_score,
    confusion_matrix,
    mean_absolute_error,
    roc_auc_score,
)

from gnnlab.train import metrics as M

pytestmark = pytest.mark.filterwarnings(
    # sklearn's own remarks on degenerate oracle inputs (one label; a predicted class not in y_true)
    "ignore:A single label:UserWarning",
    "ignore:y_pred contains classes not in y_true:UserWarning",
)

seeds = st.integers(0, 2**31 - 1)


def _confusion(target: np.ndarray, pred: np.ndarray, labels=None) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn warns when a single label is seen
        return confusion_matrix(target, pred, labels=labels).astype(np.float64)


def _bgnn_code(pred: np.ndarray, target: np.ndarray) -> float:
    """accuracy_SBM as Benchmarking-GNNs' code computes it: row r divided by #(target == r)."""
    cm = _confusion(target, pred)
    nb_classes = cm.shape[0]
    per_class = np.zeros(nb_classes)
    for r in range(nb_classes):
        count = np.sum(target == r)
        per_class[r] = cm[r, r] / count if count else 0.0
    return 100.0 * per_class.sum() / nb_classes


def _bgnn_rows(pred: np.ndarray, target: np.ndarray, labels=None) -> float:
    """accuracy_SBM with each confusion-matrix row divided by the size of its own class."""
    cm = _confusion(target, pred, labels)
    nb_classes = cm.shape[0]
    per_class = [cm[r, r] / cm[r].sum() if cm[r].sum() else 0.0 for r in range(nb_classes)]
    return 100.0 * sum(per_class) / nb_classes


# ---------------------------------------------------------------------------------------- accuracy


@settings(max_examples=40, deadline=None)
@given(seed=seeds, n=st.integers(1, 200), c=st.integers(2, 7))
def test_accuracy_matches_sklearn(seed, n, c):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, c, generator=g)
    y = torch.randint(0, c, (n,), generator=g)
    expected = accuracy_score(y.numpy(), logits.argmax(1).numpy())
    assert M.accuracy(logits, y) == pytest.approx(expected)
    assert M.accuracy(logits.argmax(1), y) == pytest.approx(expected)  # class indices
    assert M.accuracy(logits, y.view(-1, 1)) == pytest.approx(expected)
    binary = torch.randn(n, generator=g)
    yb = torch.randint(0, 2, (n,), generator=g)
    expected_b = accuracy_score(yb.numpy(), (binary > 0).long().numpy())
    assert M.accuracy(binary, yb) == pytest.approx(expected_b)
    assert M.accuracy(binary.view(-1, 1), yb) == pytest.approx(expected_b)


def test_accuracy_known_value():
    logits = torch.tensor([[2.0, 1.0], [0.0, 3.0], [1.0, 0.5], [0.2, 0.1]])
    assert M.accuracy(logits, torch.tensor([0, 1, 1, 1])) == pytest.approx(0.5)
    assert M.accuracy(torch.tensor([-1.0, 2.0, 0.0]), torch.tensor([0, 1, 1])) == pytest.approx(2 / 3)


# ------------------------------------------------------------------------------- weighted accuracy


@settings(max_examples=60, deadline=None)
@given(seed=seeds, n=st.integers(1, 300), c=st.integers(2, 6), absent=st.sets(st.integers(0, 5), max_size=3))
def test_weighted_accuracy_matches_bgnn(seed, n, c, absent):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, c, generator=g)
    keep = [k for k in range(c) if k not in absent] or [c - 1]
    # Classes in `absent` never occur in the target but may still be predicted.
    y = torch.tensor(keep)[torch.randint(0, len(keep), (n,), generator=g)]
    pred = logits.argmax(1).numpy()
    ours = 100 * M.weighted_accuracy(logits, y)  # the original code reports percent
    assert ours == pytest.approx(_bgnn_rows(pred, y.numpy()))
    seen = np.unique(np.concatenate([pred, y.numpy()]))
    if np.array_equal(seen, np.arange(len(seen))):  # the case where the original code is right
        assert ours == pytest.approx(_bgnn_code(pred, y.numpy()))
    assert 0.0 <= ours <= 100.0


@settings(max_examples=40, deadline=None)
@given(seed=seeds, n=st.integers(1, 300), c=st.integers(1, 6), noise=st.floats(0.0, 1.0), offset=st.integers(0, 3))
def test_weighted_accuracy_is_balanced_accuracy_when_no_extra_class(seed, n, c, noise, offset):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, c, (n,), generator=g) * 2 + offset  # labels need not be 0..K-1
    wrong = torch.rand(n, generator=g) < noise
    pred = torch.where(wrong, y[torch.randperm(n, generator=g)], y)  # only classes of the target
    expected = balanced_accuracy_score(y.numpy(), pred.numpy())
    assert M.weighted_accuracy(pred, y) == pytest.approx(expected)


@settings(max_examples=40, deadline=None)
@given(seed=seeds, n=st.integers(1, 200), c=st.integers(2, 6), extra=st.integers(0, 3))
def test_weighted_accuracy_fixed_num_classes(seed, n, c, extra):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, c, generator=g)
    y = torch.randint(0, c, (n,), generator=g)
    k = c + extra
    expected = _bgnn_rows(logits.argmax(1).numpy(), y.numpy(), labels=np.arange(k))
    assert 100 * M.weighted_accuracy(logits, y, num_classes=k) == pytest.approx(expected)


def test_weighted_accuracy_known_values():
    y = torch.tensor([0] * 90 + [1] * 10)
    always0 = torch.zeros(100, 2)
    always0[:, 0] = 1  # 90 % accurate, 50 % class-balanced
    assert M.accuracy(always0, y) == pytest.approx(0.9)
    assert M.weighted_accuracy(always0, y) == pytest.approx(0.5)  # a fraction, as accuracy
    # Class 2 is predicted but never a target: it counts with recall 0 (sklearn would give 75).
    y, pred = torch.tensor([0, 0, 1, 1]), torch.tensor([0, 2, 1, 1])
    assert M.weighted_accuracy(pred, y) == pytest.approx(1.5 / 3)
    assert 100 * balanced_accuracy_score(y.numpy(), pred.numpy()) == pytest.approx(75.0)
    assert M.weighted_accuracy(pred, y, num_classes=4) == pytest.approx(1.5 / 4)


def test_weighted_accuracy_rows_match_their_class():
    # Classes {1, 2}: the original code would divide class 2's hits by #(target == 1), giving 150.
    y = torch.tensor([2, 2, 2, 1])
    assert _bgnn_code(y.numpy(), y.numpy()) == pytest.approx(150.0)
    assert M.weighted_accuracy(y, y) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="outside"):
        M.weighted_accuracy(y, y, num_classes=2)


# --------------------------------------------------------------------------------------------- mae


@settings(max_examples=40, deadline=None)
@given(seed=seeds, n=st.integers(1, 200), t=st.integers(1, 4))
def test_mae_matches_sklearn(seed, n, t):
    g = torch.Generator().manual_seed(seed)
    a, b = torch.randn(n, generator=g), torch.randn(n, 1, generator=g)
    assert M.mae(a, b) == pytest.approx(mean_absolute_error(b.numpy().ravel(), a.numpy()))
    x, y = torch.randn(n, t, generator=g), torch.randn(n, t, generator=g, dtype=torch.float64)
    assert M.mae(x, y) == pytest.approx(mean_absolute_error(y.numpy().ravel(), x.numpy().ravel()))


def test_mae_shape_errors():
    with pytest.raises(ValueError, match="shape"):
        M.mae(torch.randn(3), torch.randn(4))
    with pytest.raises(ValueError, match="shape"):
        M.mae(torch.randn(2, 3), torch.randn(3, 2))  # same size, different layout
    with pytest.raises(ValueError, match="empty"):
        M.mae(torch.randn(0), torch.randn(0))


# ----------------------------------------------------------------------------------- ROC-AUC and AP


def _scores(g, n, t, levels, dtype=torch.float64):
    s = torch.randn(n, t, generator=g, dtype=torch.float64)
    if levels:  # only `levels` distinct values: many ties
        s = torch.floor(torch.rand(n, t, generator=g, dtype=torch.float64) * levels)
    return s.to(dtype)


@settings(max_examples=80, deadline=None)
@given(
    seed=seeds,
    n=st.integers(2, 200),
    levels=st.sampled_from([0, 1, 2, 3, 5]),
    p=st.floats(0.05, 0.95),
    dtype=st.sampled_from([torch.float32, torch.float64]),
)
def test_binary_auc_and_ap_match_sklearn(seed, n, levels, p, dtype):
    g = torch.Generator().manual_seed(seed)
    s = _scores(g, n, 1, levels, dtype)[:, 0]
    y = (torch.rand(n, generator=g) < p).long()
    y[0], y[1] = 0, 1  # both classes present
    auc, ap = roc_auc_score(y.numpy(), s.numpy()), average_precision_score(y.numpy(), s.numpy())
    assert M.roc_auc(s, y) == pytest.approx(auc)
    assert M.average_precision(s, y) == pytest.approx(ap)
    assert M.roc_auc(s.view(-1, 1), y.float()) == pytest.approx(auc)  # [N, 1] scores, float targets
    assert M.average_precision(s.view(-1, 1), y.bool()) == pytest.approx(ap)


@settings(max_examples=40, deadline=None)
@given(seed=seeds, n=st.integers(2, 100), levels=st.sampled_from([1, 2, 3]))
def test_auc_and_ap_do_not_depend_on_the_order_of_tied_rows(seed, n, levels):
    g = torch.Generator().manual_seed(seed)
    s = _scores(g, n, 1, levels)[:, 0]
    y = torch.randint(0, 2, (n,), generator=g)
    y[0], y[1] = 0, 1
    perm = torch.randperm(n, generator=g)
    assert M.roc_auc(s[perm], y[perm]) == pytest.approx(M.roc_auc(s, y))
    assert M.average_precision(s[perm], y[perm]) == pytest.approx(M.average_precision(s, y))


def test_auc_and_ap_known_values():
    y, s = torch.tensor([0, 0, 1, 1]), torch.tensor([0.1, 0.4, 0.35, 0.8])
    assert M.roc_auc(s, y) == pytest.approx(0.75)
    assert M.average_precision(s, y) == pytest.approx(5 / 6)
    # One tie group holding everything: chance level, precision = prevalence.
    tied = torch.zeros(4)
    assert M.roc_auc(tied, torch.tensor([1, 0, 1, 0])) == pytest.approx(0.5)
    assert M.average_precision(tied, torch.tensor([1, 0, 0, 0])) == pytest.approx(0.25)


@settings(max_examples=50, deadline=None)
@given(
    seed=seeds,
    n=st.integers(6, 120),
    t=st.integers(1, 6),
    levels=st.sampled_from([0, 2, 4]),
    missing=st.floats(0.0, 0.6),
)
def test_multilabel_with_missing_matches_sklearn_per_task(seed, n, t, levels, missing):
    g = torch.Generator().manual_seed(seed)
    s = _scores(g, n, t + 2, levels)
    y = torch.randint(0, 2, (n, t + 2), generator=g).double()
    y[torch.rand(n, t + 2, generator=g) < missing] = float("nan")
    y[:, -1] = 1.0  # a task with one class only: skipped
    y[:, -2] = float("nan")  # a task with no observed target: skipped
    aucs, aps = [], []
    for k in range(t + 2):
        obs = ~torch.isnan(y[:, k])
        yk, sk = y[obs, k].numpy(), s[obs, k].numpy()
        if len(np.unique(yk)) < 2:
            continue
        aucs.append(roc_auc_score(yk, sk))
        aps.append(average_precision_score(yk, sk))
    if not aucs:
        with pytest.raises(ValueError, match="no task"):
            M.roc_auc(s, y)
        with pytest.raises(ValueError, match="no task"):
            M.average_precision(s, y)
        return
    assert M.roc_auc(s, y) == pytest.approx(float(np.mean(aucs)))
    assert M.average_precision(s, y) == pytest.approx(float(np.mean(aps)))
    assert M.average_precision(s.float(), y.float()) == pytest.approx(float(np.mean(aps)), rel=1e-5)


def test_multilabel_fixed_example():
    s = torch.tensor([[0.9, 0.2], [0.1, 0.8], [0.5, 0.4], [0.3, 0.1]])
    y = torch.tensor([[1.0, float("nan")], [0.0, 1.0], [1.0, 0.0], [0.0, float("nan")]])
    # Task 0: AUC 1, AP 1. Task 1 (two observed rows, ranked right): AUC 1, AP 1.
    assert M.roc_auc(s, y) == pytest.approx(1.0)
    assert M.average_precision(s, y) == pytest.approx(1.0)
    y[1, 1], y[2, 1] = 0.0, 1.0  # task 1 now ranked wrong: AUC 0, AP 1/2
    assert M.roc_auc(s, y) == pytest.approx(0.5)
    assert M.average_precision(s, y) == pytest.approx(0.75)


def test_nan_scores_give_nan():
    s = torch.tensor([0.1, float("nan"), 0.3])
    y = torch.tensor([0, 1, 1])
    assert math.isnan(M.roc_auc(s, y))
    assert math.isnan(M.average_precision(s, y))


# -------------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize("fn", [M.accuracy, M.weighted_accuracy, M.roc_auc, M.average_precision])
def test_length_mismatch_and_empty(fn):
    with pytest.raises(ValueError, match="rows"):
        fn(torch.randn(5), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="empty"):
        fn(torch.randn(0), torch.zeros(0, dtype=torch.long))


def test_classification_shape_errors():
    with pytest.raises(ValueError, match="rows"):
        M.accuracy(torch.randn(5, 3), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="one class index"):
        M.accuracy(torch.randn(4, 3), torch.zeros(4, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="positive"):
        M.weighted_accuracy(torch.randn(4, 3), torch.zeros(4, dtype=torch.long), num_classes=0)


def test_ranking_metric_errors():
    for fn in (M.roc_auc, M.average_precision):
        with pytest.raises(ValueError, match="shape"):
            fn(torch.randn(4, 2), torch.zeros(4, 3))
        with pytest.raises(ValueError, match="0, 1 or NaN"):
            fn(torch.randn(4), torch.tensor([0, 1, 2, 1]))
        with pytest.raises(ValueError, match="no task"):
            fn(torch.randn(4), torch.ones(4))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_metrics_on_cuda():
    g = torch.Generator().manual_seed(0)
    logits, y = torch.randn(300, 4, generator=g), torch.randint(0, 4, (300,), generator=g)
    s, yb = _scores(g, 300, 3, 3), torch.randint(0, 2, (300, 3), generator=g).double()
    yb[0, 0] = float("nan")
    for fn, args in [
        (M.accuracy, (logits, y)),
        (M.weighted_accuracy, (logits, y)),
        (M.mae, (s, yb.nan_to_num())),
        (M.roc_auc, (s, yb)),
        (M.average_precision, (s, yb)),
    ]:
        on_gpu = fn(*(a.cuda() for a in args))
        assert isinstance(on_gpu, float)
        assert on_gpu == pytest.approx(fn(*args))
