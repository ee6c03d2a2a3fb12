"""What layers are built from: a norm chosen by name, an MLP, the feed-forward block, and :func:`reset`."""
from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["NORMS", "FeedForward", "check_dropout", "feed_forward", "mlp", "norm_layer", "reset"]

NORMS = ("batch", "layer", "none")  #: the kinds :func:`norm_layer` builds (:obj:`None` is ``"none"``)


def reset(*modules: torch.nn.Module | None) -> None:
    """Call ``reset_parameters()`` of each module that has one (:obj:`None` and parameter-free modules are skipped)."""
    for module in modules:
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()


def check_dropout(owner: str, p: float, name: str = "dropout") -> float:
    """Return the probability ``p``, raising ``ValueError`` (``owner: name must be ...``) unless it is in ``[0, 1)``."""
    if not 0.0 <= p < 1.0:
        raise ValueError(f"{owner}: {name} must be in [0, 1), got {p}")
    return p


def norm_layer(kind: str | None, dim: int) -> torch.nn.Module:
    """A norm by name: ``"batch"`` → BatchNorm1d, ``"layer"`` → LayerNorm, ``"none"``/:obj:`None` → Identity."""
    if kind not in (*NORMS, None):
        raise ValueError(f"norm must be one of {', '.join(NORMS)} (or None), got {kind!r}")
    if kind in ("none", None):
        return torch.nn.Identity()
    return torch.nn.BatchNorm1d(dim) if kind == "batch" else torch.nn.LayerNorm(dim)


def mlp(widths: Sequence[int], act: Callable[[], torch.nn.Module] = torch.nn.ReLU, norm: str | None = None,
        dropout: float = 0.0) -> torch.nn.Sequential:
    """Linear maps ``widths[0] → … → widths[-1]``, each but the last followed by ``norm_layer(norm)`` (left
    out for ``"none"``), ``act()`` and, with ``dropout > 0``, ``Dropout``: ``mlp([a, b, b], norm="batch")``
    is GIN's ``Linear → BatchNorm1d → ReLU → Linear``."""
    if len(widths) < 2:
        raise ValueError(f"mlp: needs an input and an output width, got {list(widths)}")
    if norm not in (*NORMS, None):
        raise ValueError(f"mlp: norm must be one of {', '.join(NORMS)} (or None), got {norm!r}")
    layers: list[torch.nn.Module] = []
    for a, b in zip(widths[:-2], widths[1:-1]):
        layers += [torch.nn.Linear(a, b)] + ([norm_layer(norm, b)] if norm not in ("none", None) else [])
        layers += [act(), torch.nn.Dropout(dropout)] if dropout > 0 else [act()]
    return torch.nn.Sequential(*layers, torch.nn.Linear(widths[-2], widths[-1]))


def feed_forward(x: Tensor, lin1: torch.nn.Module, lin2: torch.nn.Module, dropout: float, training: bool,
                 out_dropout: bool = True) -> Tensor:
    """The Transformer feed-forward block ``lin1 → ReLU → Dropout → lin2 → Dropout`` (the last dropout only
    with ``out_dropout``), for a layer that holds the two linear maps itself; else :class:`FeedForward`."""
    x = lin2(F.dropout(F.relu(lin1(x)), p=dropout, training=training))
    return F.dropout(x, p=dropout, training=training) if out_dropout else x


class FeedForward(torch.nn.Module):
    """:func:`feed_forward` with its own ``lin1 = Linear(dim, ratio·dim)`` and ``lin2 = Linear(ratio·dim, dim)``."""

    def __init__(self, dim: int, ratio: int = 2, dropout: float = 0.0, out_dropout: bool = True):
        super().__init__()
        self.dropout, self.out_dropout = dropout, out_dropout
        self.lin1, self.lin2 = torch.nn.Linear(dim, ratio * dim), torch.nn.Linear(ratio * dim, dim)

    def reset_parameters(self) -> None:
        """Re-initialise both linear maps."""
        reset(self.lin1, self.lin2)

    def forward(self, x: Tensor) -> Tensor:
        """Apply the block row-wise: ``(*, dim) -> (*, dim)``."""
        return feed_forward(x, self.lin1, self.lin2, self.dropout, self.training, self.out_dropout)
