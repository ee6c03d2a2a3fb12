"""Timing helper shared by the benchmark scripts."""
from __future__ import annotations

import statistics
import time


def median_ms(fn, repeat: int) -> float:
    """Median wall time of ``fn()`` in milliseconds over ``repeat`` runs, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def train_epoch_seconds(model, loader, optimizer, loss_fn) -> float:
    """Wall time of one training epoch: ``loss_fn(model(batch), batch.y)``, backward, step, per batch."""
    model.train()
    t0 = time.perf_counter()
    for batch in loader:
        loss = loss_fn(model(batch), batch.y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return time.perf_counter() - t0
