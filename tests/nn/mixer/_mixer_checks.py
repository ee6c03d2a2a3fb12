"""Inputs and reusable checks of the global-mixer contract (see ``gnnlab.nn.mixer.GlobalMixer``).

Each check takes a built mixer (in float64) and asserts one property; the test file of every mixer
calls those that apply to it (sequence mixers, for instance, are not permutation equivariant).
"""
from __future__ import annotations

from typing import Sequence

import pytest
import torch
from torch import Tensor
from torch.testing import assert_close

DTYPE = torch.float64


def random_batch(sizes: Sequence[int], dim: int, seed: int, scale: float = 1.0) -> tuple[Tensor, Tensor]:
    """Random features ``(N, dim)`` for graphs of the given node counts, and their sorted ``batch``."""
    g = torch.Generator().manual_seed(seed)
    batch = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes, dtype=torch.long))
    x = torch.randn(int(sum(sizes)), dim, generator=g, dtype=DTYPE) * scale
    return x, batch


def ptr_of(batch: Tensor, size: int) -> list[int]:
    """Offsets of each graph's rows, as Python ints."""
    counts = torch.bincount(batch, minlength=size)
    return [0] + counts.cumsum(0).tolist()


def randomize(module: torch.nn.Module, seed: int, scale: float = 0.5) -> None:
    """Overwrite every parameter with Gaussian noise (biases too, so that none is trivially zero)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * scale)


def check_shape_and_finite(mixer, sizes=(4, 1, 7)) -> None:
    x, batch = random_batch(sizes, mixer.dim, seed=0)
    out = mixer(x, batch)
    assert out.shape == x.shape and out.dtype == x.dtype
    assert torch.isfinite(out).all()


def check_permutation_within_graphs(mixer, sizes=(5, 8, 3), seed: int = 1) -> None:
    """Reordering the nodes inside each graph reorders the outputs the same way."""
    x, batch = random_batch(sizes, mixer.dim, seed)
    g = torch.Generator().manual_seed(seed + 100)
    ptr = ptr_of(batch, len(sizes))
    perm = torch.cat([start + torch.randperm(end - start, generator=g) for start, end in zip(ptr[:-1], ptr[1:])])
    assert not torch.equal(perm, torch.arange(perm.numel()))
    assert_close(mixer(x[perm], batch), mixer(x, batch)[perm])


def check_graph_order(mixer, sizes=(5, 8, 3, 6), seed: int = 2) -> None:
    """Reordering the graphs of a batch (their nodes moving as blocks) reorders the outputs."""
    x, batch = random_batch(sizes, mixer.dim, seed)
    ptr = ptr_of(batch, len(sizes))
    order = [2, 0, 3, 1]
    perm = torch.cat([torch.arange(ptr[k], ptr[k + 1]) for k in order])
    new_batch = torch.repeat_interleave(torch.arange(len(order)), torch.tensor([sizes[k] for k in order]))
    assert_close(mixer(x[perm], new_batch), mixer(x, batch)[perm])


def check_graph_isolation(mixer, sizes=(6, 5, 4), seed: int = 3) -> None:
    """Changing the nodes of one graph changes nothing in the others, and changes that graph."""
    x, batch = random_batch(sizes, mixer.dim, seed)
    changed = x.clone()
    rows = batch == 1
    changed[rows] = torch.randn(int(rows.sum()), mixer.dim, generator=torch.Generator().manual_seed(seed), dtype=DTYPE)
    out, out_changed = mixer(x, batch), mixer(changed, batch)
    assert_close(out_changed[~rows], out[~rows])
    assert not torch.allclose(out_changed[rows], out[rows])


def check_padding_invariance(mixer, small: int = 4, large: int = 60, seed: int = 4) -> None:
    """A graph gives the same output alone and batched beside a much larger graph, on either side."""
    x_small, _ = random_batch([small], mixer.dim, seed)
    x_large, _ = random_batch([large], mixer.dim, seed + 1)
    alone = mixer(x_small, torch.zeros(small, dtype=torch.long))
    first = mixer(torch.cat([x_small, x_large]), torch.repeat_interleave(torch.arange(2), torch.tensor([small, large])))
    last = mixer(torch.cat([x_large, x_small]), torch.repeat_interleave(torch.arange(2), torch.tensor([large, small])))
    assert_close(first[:small], alone)
    assert_close(last[large:], alone)


def check_batched_equals_each_alone(mixer, sizes=(3, 1, 9, 5), seed: int = 5) -> None:
    """Running a batch equals running each graph on its own (with ``batch=None``)."""
    x, batch = random_batch(sizes, mixer.dim, seed)
    ptr = ptr_of(batch, len(sizes))
    out = mixer(x, batch)
    for start, end in zip(ptr[:-1], ptr[1:]):
        assert_close(out[start:end], mixer(x[start:end], None))


def check_batch_none(mixer, num_nodes: int = 7, seed: int = 6) -> None:
    """``batch=None`` means one graph: the same as an all-zero ``batch``."""
    x, _ = random_batch([num_nodes], mixer.dim, seed)
    assert_close(mixer(x, None), mixer(x, torch.zeros(num_nodes, dtype=torch.long)))
    assert_close(mixer(x), mixer(x, None))


def check_empty_graph_ids(mixer, seed: int = 7) -> None:
    """Graph ids without nodes (a gap in ``batch``) change nothing and produce no NaN."""
    x, batch = random_batch([3, 4], mixer.dim, seed)
    gapped = torch.where(batch == 1, torch.full_like(batch, 3), batch)  # graphs 1 and 2 are empty
    out = mixer(x, gapped)
    assert torch.isfinite(out).all()
    assert_close(out, mixer(x, batch))


def check_gradients(mixer, sizes=(4, 9, 2), seed: int = 8) -> None:
    """Gradients reach the input and every parameter, finite and non-zero."""
    x, batch = random_batch(sizes, mixer.dim, seed)
    x.requires_grad_(True)
    mixer(x, batch).pow(2).sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    for name, p in mixer.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


def check_bad_inputs(mixer) -> None:
    """2-D ``x`` of the right width and a sorted integer ``batch`` of matching length are required."""
    name = type(mixer).__name__
    dim = mixer.dim
    x, batch = random_batch([3, 4], dim, seed=9)
    cases = [
        ((x[0], None), "2-D"),
        ((x[None], None), "2-D"),
        ((x[:, :-1], None), f"dim={dim}"),
        ((x, batch[1:]), "batch must have shape"),
        ((x, batch[None]), "batch must have shape"),
        ((x, batch.flip(0)), "sorted"),
        ((x, batch.to(DTYPE)), "integer"),
        ((x, batch - 1), "negative"),
        (([[1.0] * dim], None), "torch.Tensor"),
    ]
    for args, match in cases:
        with pytest.raises(ValueError, match=match):
            mixer(*args)
    with pytest.raises(ValueError, match=name):
        mixer(x[0], None)
