"""Every metric against scikit-learn on random inputs (ties, missing labels, absent classes)."""
from __future__ import annotations

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


def _bgnn_accuracy_sbm(pred_labels: np.ndarray, target: np.ndarray) -> float:
    """Benchmarking-GNNs' accuracy_SBM, transcribed from its definition (confusion-matrix rows)."""
    cm = confusion_matrix(target, pred_labels).astype(np.float64)
    labels = np.unique(np.concatenate([target, pred_labels]))
    nb_classes = cm.shape[0]
    total = 0.0
    for r in range(nb_classes):
        count = np.sum(target == labels[r])
        total += cm[r, r] / count if count else 0.0
    return 100.0 * total / nb_classes


seeds = st.integers(0, 2**31 - 1)


@settings(max_examples=40, deadline=None)
@given(seed=seeds, n=st.integers(1, 200), c=st.integers(2, 7))
def test_accuracy(seed, n, c):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, c, generator=g)
    y = torch.randint(0, c, (n,), generator=g)
    assert M.accuracy(logits, y) == pytest.approx(accuracy_score(y.numpy(), logits.argmax(1).numpy()))
    binary = torch.randn(n, generator=g)
    yb = torch.randint(0, 2, (n,), generator=g)
    assert M.accuracy(binary, yb) == pytest.approx(accuracy_score(yb.numpy(), (binary > 0).long().numpy()))


@settings(max_examples=60, deadline=None)
@given(seed=seeds, n=st.integers(1, 300), c=st.integers(2, 6), drop=st.booleans())
def test_weighted_accuracy(seed, n, c, drop):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, c, generator=g)
    y = torch.randint(0, c, (n,), generator=g)
    if drop:  # a class predicted but absent from the targets
        y = torch.where(y == 0, torch.ones_like(y), y)
    pred = logits.argmax(1)
    ours = M.weighted_accuracy(logits, y)
    assert ours == pytest.approx(_bgnn_accuracy_sbm(pred.numpy(), y.numpy()))
    if set(pred.tolist()) <= set(y.tolist()):
        assert ours == pytest.approx(100 * balanced_accuracy_score(y.numpy(), pred.numpy()))


def test_weighted_accuracy_is_not_plain_accuracy():
    y = torch.tensor([0] * 90 + [1] * 10)
    pred = torch.zeros(100, 2)
    pred[:, 0] = 1  # always class 0: 90 % accurate, 50 % class-balanced
    assert M.accuracy(pred, y) == pytest.approx(0.9)
    assert M.weighted_accuracy(pred, y) == pytest.approx(50.0)


@settings(max_examples=40, deadline=None)
@given(seed=seeds, n=st.integers(1, 200))
def test_mae(seed, n):
    g = torch.Generator().manual_seed(seed)
    a, b = torch.randn(n, generator=g), torch.randn(n, 1, generator=g)
    assert M.mae(a, b) == pytest.approx(mean_absolute_error(b.numpy().ravel(), a.numpy()))


def _scores(g, n, t, ties):
    s = torch.randn(n, t, generator=g, dtype=torch.float64)
    return torch.round(s * 2) / 2 if ties else s


@settings(max_examples=60, deadline=None)
@given(seed=seeds, n=st.integers(4, 200), ties=st.booleans())
def test_binary_auc_and_ap(seed, n, ties):
    g = torch.Generator().manual_seed(seed)
    s = _scores(g, n, 1, ties)[:, 0]
    y = torch.randint(0, 2, (n,), generator=g)
    y[0], y[1] = 0, 1  # both classes present
    assert M.roc_auc(s, y) == pytest.approx(roc_auc_score(y.numpy(), s.numpy()))
    assert M.average_precision(s, y) == pytest.approx(average_precision_score(y.numpy(), s.numpy()))


@settings(max_examples=40, deadline=None)
@given(seed=seeds, n=st.integers(6, 120), t=st.integers(2, 6), ties=st.booleans())
def test_multilabel_with_missing(seed, n, t, ties):
    g = torch.Generator().manual_seed(seed)
    s = _scores(g, n, t, ties)
    y = torch.randint(0, 2, (n, t), generator=g).double()
    y[torch.rand(n, t, generator=g) < 0.2] = float("nan")
    y[:, -1] = 1.0  # a task with one class only: skipped
    aucs, aps = [], []
    for k in range(t):
        obs = ~torch.isnan(y[:, k])
        yk = y[obs, k].numpy()
        if len(np.unique(yk)) < 2:
            continue
        aucs.append(roc_auc_score(yk, s[obs, k].numpy()))
        aps.append(average_precision_score(yk, s[obs, k].numpy()))
    if not aucs:
        with pytest.raises(ValueError, match="no task"):
            M.roc_auc(s, y)
        return
    assert M.roc_auc(s, y) == pytest.approx(float(np.mean(aucs)))
    assert M.average_precision(s, y) == pytest.approx(float(np.mean(aps)))


@pytest.mark.parametrize("fn", [M.accuracy, M.weighted_accuracy, M.roc_auc, M.average_precision])
def test_length_mismatch_and_empty(fn):
    with pytest.raises(ValueError):
        fn(torch.randn(5, 2), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError):
        fn(torch.randn(0, 2), torch.zeros(0, dtype=torch.long))
    with pytest.raises(ValueError):
        M.mae(torch.randn(3), torch.randn(4))
