"""What every positional/structural-encoding encoder shares.

A PE encoder is a module with an ``out_channels`` attribute whose ``forward(data, graph)`` reads the
attributes its precompute transform wrote (``data.lappe_vec``, ``data.rwse``, ...; see
:mod:`gnnlab.transforms`) and returns one row per node, ``(N, out_channels)``. ``graph`` is the
batch's :class:`gnnlab.ops.Graph`, built once by the model and shared with its layers; encoders
that propagate over edges (SignNet, SPE) aggregate over it, the others ignore it. The model
concatenates the rows to the encoded node features, so a PE never needs to know the model.
"""
from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["read_attr", "read_eigenpairs", "graph_index", "random_sign_flip", "nan_mask"]


def read_attr(data, attr: str, owner: str, transform: str) -> Tensor:
    """``data[attr]`` as a float tensor, or a ``ValueError`` saying which transform writes it."""
    value = getattr(data, attr, None)
    if not isinstance(value, Tensor):
        raise ValueError(
            f"{owner}: the graph has no attribute {attr!r}; it is written by the {transform} transform "
            f"(precompute it with gnnlab.transforms / the matching `pe=` config)"
        )
    return value if value.is_floating_point() else value.float()


def graph_index(data, num_nodes: int, device) -> Tensor:
    """The ``batch`` vector of a PyG batch, or zeros for a single graph."""
    batch = getattr(data, "batch", None)
    if batch is None:
        return torch.zeros(num_nodes, dtype=torch.long, device=device)
    return batch


def nan_mask(value: Tensor) -> tuple[Tensor, Tensor]:
    """Split NaN-padded PE values into ``(value with NaN → 0, valid mask)``.

    The eigen-decomposition transforms pad a graph with fewer than ``k`` eigenpairs with NaN, so
    every encoder can tell padding from a genuine zero.
    """
    valid = ~torch.isnan(value)
    return torch.where(valid, value, torch.zeros_like(value)), valid


def random_sign_flip(vec: Tensor, batch: Tensor, generator: torch.Generator | None = None) -> Tensor:
    r"""Flip the sign of every eigenvector of every graph at random (training-time augmentation).

    Eigenvectors are defined up to sign; drawing one sign per (graph, eigenvector) at each step
    teaches the encoder to ignore it (Dwivedi et al., 2020; Kreuzer et al., 2021). The flips are
    drawn here, at training time, never stored with the cached eigenvectors.

    Args:
        vec: ``(N, k)`` eigenvectors, rows of all graphs of the batch.
        batch: ``(N,)`` graph index of every row.
        generator: optional generator for the signs (default: the global one, so the run's seed
            makes them reproducible).
    """
    num_graphs = int(batch.max()) + 1 if batch.numel() else 0
    signs = torch.randint(0, 2, (num_graphs, vec.size(1)), generator=generator, device="cpu")
    signs = (signs * 2 - 1).to(device=vec.device, dtype=vec.dtype)  # (B, k) in {-1, +1}
    return vec * signs.index_select(0, batch)


def read_eigenpairs(data, attr: str, k: int, owner: str) -> tuple[Tensor, Tensor, Tensor]:
    """``({attr}_vec, {attr}_val, valid)``, each ``(N, k)``, padding (NaN) set to 0 and masked in ``valid``.

    Raises a ``ValueError`` naming the transform when the attributes are missing, and naming both
    widths when the encoder's ``k`` differs from the stored one.
    """
    vec = read_attr(data, f"{attr}_vec", owner, "LaplacianEigenpairs")
    val = read_attr(data, f"{attr}_val", owner, "LaplacianEigenpairs")
    if vec.dim() != 2 or vec.size(1) != k or val.shape != vec.shape:
        raise ValueError(
            f"{owner}: expected {attr}_vec and {attr}_val of shape [N, {k}], got {list(vec.shape)} and "
            f"{list(val.shape)} (k of the encoder and of the transform differ?)"
        )
    vec, valid = nan_mask(vec)
    val, _ = nan_mask(val)
    return vec, val, valid
