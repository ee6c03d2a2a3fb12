"""cached_csr: reuse within a forward pass, invalidation on edits, and a bounded size across batches."""
from __future__ import annotations

import torch

from gnnlab.ops import cached_csr
from gnnlab.ops import graph as graph_module


def test_reuses_the_same_tensor_and_invalidates_on_edit():
    edge_index = torch.tensor([[0, 1, 2], [1, 2, 0]])
    first = cached_csr(edge_index, 3)
    assert cached_csr(edge_index, 3) is first
    assert cached_csr(edge_index.clone(), 3) is not first  # another tensor, same values
    assert cached_csr(edge_index, 4) is not first  # other node count
    edge_index[0, 0] = 2  # in-place edit bumps the version
    assert cached_csr(edge_index, 3) is not first


def test_size_stays_bounded_over_many_batches():
    # A training run sees a new edge_index and node count every batch: the cache must not grow.
    for n in range(10, 210):
        edge_index = torch.randint(0, n, (2, 5 * n))
        cached_csr(edge_index, n)
    assert len(graph_module._CACHE) == graph_module.CACHE_SIZE
    # The most recent graph is still served from the cache.
    assert cached_csr(edge_index, n) is cached_csr(edge_index, n)
