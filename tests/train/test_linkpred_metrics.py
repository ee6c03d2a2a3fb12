"""Link-prediction metrics against OGB's ``linkproppred.Evaluator`` and scikit-learn.

Hits@K for ogbl-ppa (K=100), ogbl-ddi (K=20) and ogbl-collab (K=50), MRR for ogbl-citation2, and
ROC-AUC, on random scores with many ties, fewer negatives than K, and mixed dtypes.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score

from gnnlab.train import metrics as M

ogb_lp = pytest.importorskip("ogb.linkproppred", reason="ogb is not installed (pip install ogb)")
Evaluator = ogb_lp.Evaluator

HITS_DATASETS = [("ogbl-ppa", 100), ("ogbl-ddi", 20), ("ogbl-collab", 50)]
EVALUATORS = {name: Evaluator(name) for name, _ in HITS_DATASETS}
CITATION2 = Evaluator("ogbl-citation2")

seeds = st.integers(0, 2**31 - 1)


def _scores(g: torch.Generator, shape, levels: int, dtype=torch.float64) -> torch.Tensor:
    """Gaussian scores, or only ``levels`` distinct values (many ties) when ``levels`` > 0."""
    if levels:
        return torch.randint(0, levels, shape, generator=g).to(dtype)
    return torch.randn(shape, generator=g, dtype=torch.float64).to(dtype)


def test_evaluators_use_the_expected_k():
    assert [EVALUATORS[name].K for name, _ in HITS_DATASETS] == [k for _, k in HITS_DATASETS]
    assert CITATION2.eval_metric == "mrr"


# --------------------------------------------------------------------------------------------- hits


@settings(max_examples=120, deadline=None)
@given(
    seed=seeds,
    n_pos=st.integers(1, 300),
    n_neg=st.integers(1, 400),
    levels=st.sampled_from([0, 1, 2, 5, 30]),
    dtypes=st.sampled_from([(torch.float32, torch.float32), (torch.float64, torch.float64),
                            (torch.float32, torch.float64), (torch.float16, torch.float32)]),
)
def test_hits_matches_ogb(seed, n_pos, n_neg, levels, dtypes):
    g = torch.Generator().manual_seed(seed)
    pos = _scores(g, (n_pos,), levels, dtypes[0])
    neg = _scores(g, (n_neg,), levels, dtypes[1])
    if levels == 0 and n_pos > 1:
        pos[0] = neg[torch.randint(0, n_neg, (1,), generator=g)].to(pos.dtype)  # a positive tied with a negative
    for name, k in HITS_DATASETS:
        # With mixed dtypes OGB compares in the positives' dtype (a 0-dim threshold does not promote
        # the other operand), rounding the threshold; gnnlab compares exactly, as OGB does on float64.
        ref_pos, ref_neg = (pos, neg) if pos.dtype == neg.dtype else (pos.double(), neg.double())
        expected = EVALUATORS[name].eval({"y_pred_pos": ref_pos, "y_pred_neg": ref_neg})[f"hits@{k}"]
        ours = M.hits_at_k(pos, neg, k)
        assert isinstance(ours, float)
        assert ours == pytest.approx(expected, abs=1e-12)
        assert 0.0 <= ours <= 1.0
        if n_neg < k:
            assert ours == 1.0
    # OGB's numpy code path sorts instead of topk: same threshold.
    if dtypes[0] == dtypes[1] == torch.float64:
        expected = EVALUATORS["ogbl-ddi"].eval({"y_pred_pos": pos.numpy(), "y_pred_neg": neg.numpy()})["hits@20"]
        assert M.hits_at_k(pos, neg, 20) == pytest.approx(expected, abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(seed=seeds, n_pos=st.integers(1, 100), n_neg=st.integers(1, 100), k=st.integers(1, 120),
       levels=st.sampled_from([0, 2, 4]))
def test_hits_any_k_matches_ogb(seed, n_pos, n_neg, k, levels):
    g = torch.Generator().manual_seed(seed)
    pos, neg = _scores(g, (n_pos,), levels), _scores(g, (n_neg,), levels)
    evaluator = Evaluator("ogbl-ddi")
    evaluator.K = k  # what NCN does to report Hits@20/50/100 with one evaluator
    assert M.hits_at_k(pos, neg, k) == pytest.approx(evaluator.eval({"y_pred_pos": pos, "y_pred_neg": neg})[f"hits@{k}"])


def test_hits_known_values():
    neg = torch.tensor([3.0, 2.0, 1.0])
    pos = torch.tensor([2.5, 2.0, 3.0, 0.0])
    # 2nd highest negative is 2.0; strictly greater counts: 2.5 and 3.0 (2.0 itself misses).
    assert M.hits_at_k(pos, neg, 2) == pytest.approx(0.5)
    assert M.hits_at_k(pos, neg, 1) == pytest.approx(0.0)  # nothing beats 3.0 strictly
    assert M.hits_at_k(pos, neg, 3) == pytest.approx(0.75)
    assert M.hits_at_k(pos, neg, 4) == 1.0  # fewer negatives than k
    # Tied negatives count separately for the k-th place.
    assert M.hits_at_k(torch.tensor([1.5]), torch.tensor([2.0, 2.0, 1.0]), 2) == 0.0
    # [N, 1] columns, integer and bool scores.
    assert M.hits_at_k(pos.view(-1, 1), neg.view(-1, 1), 2) == pytest.approx(0.5)
    assert M.hits_at_k(torch.tensor([3, 1]), torch.tensor([2, 0, 1]), 1) == pytest.approx(0.5)
    assert M.hits_at_k(torch.tensor([True, False]), torch.tensor([False, False]), 1) == pytest.approx(0.5)
    # Infinite scores are ordinary extremes.
    assert M.hits_at_k(torch.tensor([math.inf, 0.0]), torch.tensor([-math.inf, 1.0]), 1) == pytest.approx(0.5)


# ---------------------------------------------------------------------------------------------- mrr


@settings(max_examples=100, deadline=None)
@given(
    seed=seeds,
    batch=st.integers(1, 200),
    num_neg=st.integers(1, 60),
    levels=st.sampled_from([0, 1, 2, 3, 10]),
    dtype=st.sampled_from([torch.float32, torch.float64]),
)
def test_mrr_matches_ogb_citation2(seed, batch, num_neg, levels, dtype):
    g = torch.Generator().manual_seed(seed)
    pos = _scores(g, (batch,), levels, dtype)
    neg = _scores(g, (batch, num_neg), levels, dtype)
    if levels == 0:
        neg[0, 0] = pos[0]  # an exact tie
    expected = CITATION2.eval({"y_pred_pos": pos, "y_pred_neg": neg})["mrr_list"].double().mean().item()
    ours = M.mrr(pos, neg)
    assert isinstance(ours, float)
    assert ours == pytest.approx(expected, rel=1e-6)  # OGB's list is float32
    assert 0.0 < ours <= 1.0
    assert M.mrr(pos.view(-1, 1), neg) == pytest.approx(ours)


def test_mrr_known_values():
    # Optimistic rank 1 (one negative above), pessimistic 2 (two at least as high): rank 2.5.
    assert M.mrr(torch.tensor([1.0]), torch.tensor([[2.0, 1.0, 0.0]])) == pytest.approx(0.4)
    assert M.mrr(torch.tensor([5.0, 0.0]), torch.tensor([[1.0, 2.0], [1.0, 2.0]])) == pytest.approx((1 + 1 / 3) / 2)
    # All tied with K negatives: rank (0 + K) / 2 + 1.
    assert M.mrr(torch.zeros(3), torch.zeros(3, 4)) == pytest.approx(1 / 3)


# ---------------------------------------------------------------------------------------------- auc


@settings(max_examples=80, deadline=None)
@given(seed=seeds, n_pos=st.integers(1, 200), n_neg=st.integers(1, 200), levels=st.sampled_from([0, 1, 2, 5]),
       dtype=st.sampled_from([torch.float32, torch.float64]))
def test_link_auc_matches_sklearn(seed, n_pos, n_neg, levels, dtype):
    g = torch.Generator().manual_seed(seed)
    pos = _scores(g, (n_pos,), levels, dtype) + 0.3  # a little signal
    neg = _scores(g, (n_neg,), levels, dtype)
    y = np.concatenate([np.ones(n_pos), np.zeros(n_neg)])
    expected = roc_auc_score(y, np.concatenate([pos.double().numpy(), neg.double().numpy()]))
    ours = M.link_auc(pos, neg)
    assert isinstance(ours, float)
    assert ours == pytest.approx(expected)
    assert 0.0 <= ours <= 1.0
    vessel = Evaluator("ogbl-vessel").eval({"y_pred_pos": pos.double(), "y_pred_neg": neg.double()})["rocauc"]
    assert ours == pytest.approx(vessel)


def test_link_auc_known_values():
    assert M.link_auc(torch.tensor([0.35, 0.8]), torch.tensor([0.1, 0.4])) == pytest.approx(0.75)
    assert M.link_auc(torch.zeros(3), torch.zeros(5)) == pytest.approx(0.5)
    assert M.link_auc(torch.tensor([2.0]), torch.tensor([1.0])) == 1.0


# -------------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize("fn", [lambda p, n: M.hits_at_k(p, n, 3), M.link_auc])
def test_vector_metric_errors(fn):
    with pytest.raises(ValueError, match="pos_scores is empty"):
        fn(torch.randn(0), torch.randn(4))
    with pytest.raises(ValueError, match="neg_scores is empty"):
        fn(torch.randn(4), torch.randn(0))
    with pytest.raises(ValueError, match="shape"):
        fn(torch.randn(4, 2), torch.randn(4))
    with pytest.raises(ValueError, match="shape"):
        fn(torch.randn(4), torch.tensor(1.0))
    with pytest.raises(ValueError, match="NaN"):
        fn(torch.tensor([0.1, float("nan")]), torch.randn(4))
    with pytest.raises(ValueError, match="NaN"):
        fn(torch.randn(2), torch.tensor([0.1, float("nan")]))
    with pytest.raises(TypeError, match="torch.Tensor"):
        fn([0.1, 0.2], torch.randn(4))


@pytest.mark.parametrize("k", [0, -1, 2.0, True, None])
def test_hits_bad_k(k):
    with pytest.raises(ValueError, match="positive integer"):
        M.hits_at_k(torch.randn(3), torch.randn(3), k)


def test_mrr_errors():
    with pytest.raises(ValueError, match=r"\[B, K\]"):
        M.mrr(torch.randn(3), torch.randn(3))
    with pytest.raises(ValueError, match="rows"):
        M.mrr(torch.randn(3), torch.randn(4, 5))
    with pytest.raises(ValueError, match="empty"):
        M.mrr(torch.randn(0), torch.randn(0, 5))
    with pytest.raises(ValueError, match="empty"):
        M.mrr(torch.randn(3), torch.randn(3, 0))
    with pytest.raises(ValueError, match="NaN"):
        M.mrr(torch.randn(2), torch.tensor([[0.0, float("nan")], [1.0, 2.0]]))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_link_metrics_on_cuda():
    g = torch.Generator().manual_seed(0)
    pos, neg, negm = _scores(g, (500,), 7), _scores(g, (800,), 7), _scores(g, (500, 30), 7)
    for fn, args in [
        (lambda p, n: M.hits_at_k(p, n, 20), (pos, neg)),
        (lambda p, n: M.hits_at_k(p, n, 100), (pos, neg)),
        (M.mrr, (pos, negm)),
        (M.link_auc, (pos, neg)),
    ]:
        on_gpu = fn(*(a.cuda() for a in args))
        assert isinstance(on_gpu, float)
        assert on_gpu == pytest.approx(fn(*args))
    assert M.hits_at_k(pos, neg.cuda(), 20) == pytest.approx(M.hits_at_k(pos, neg, 20))  # mixed devices
