"""Dropout with a cheaper random mask on the CPU.

torch's CPU dropout draws one Bernoulli sample per element from its generator (about 16 ms for a 2708 × 256
tensor on one core: a third of an NCN training step on Cora goes there). :func:`dropout` draws one 64-bit
integer per four elements instead and keeps an element when its 16-bit lane is above a threshold: the same
random function up to the keep probability, which is ``1 - p`` rounded to a multiple of ``2^-16`` and used
exactly in the rescaling, so the output stays unbiased. It draws from torch's default generator, so
``torch.manual_seed`` makes it reproducible. Other devices use torch's own dropout (already fast there).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["Dropout", "dropout"]

_LANES = 65536  # 16-bit lanes: the keep probability is a multiple of 1 / 65536


def dropout(x: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    r"""Zero each element of ``x`` with probability ``p`` and scale the others by :math:`1 / (1 - p')`.

    :math:`p'` is ``p`` rounded to a multiple of :math:`2^{-16}` on the CPU (exactly ``p`` elsewhere), so that
    :math:`\mathbb{E}[\text{out}] = x`. As torch's dropout, it returns ``x`` unchanged when not ``training`` or
    ``p == 0``, zeros when ``p == 1``, and propagates a NaN of ``x`` also where it drops (``x * 0``).

    Raises:
        ValueError: ``p`` outside ``[0, 1]``.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability must be in [0, 1], got {p}")
    if not training or p == 0.0:
        return x
    if x.device.type != "cpu" or not x.is_floating_point() or p == 1.0:
        return F.dropout(x, p, training)
    dropped = round(p * _LANES)
    if dropped == 0:  # p below 2^-17: nothing to drop at this resolution
        return x
    n = x.numel()
    words = torch.randint(-(2**63), 2**63 - 1, ((n + 3) // 4,), dtype=torch.int64)  # 4 lanes per draw
    lanes = words.view(torch.int16)[:n].view(x.shape)
    keep = lanes >= -(_LANES // 2) + dropped  # P(keep) = (65536 - dropped) / 65536
    return x * keep.to(x.dtype).mul_(_LANES / (_LANES - dropped))


class Dropout(nn.Module):
    """:func:`dropout` as a module, a drop-in for ``torch.nn.Dropout``."""

    def __init__(self, p: float = 0.5):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability must be in [0, 1], got {p}")
        self.p = float(p)

    def forward(self, x: Tensor) -> Tensor:
        return dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"
