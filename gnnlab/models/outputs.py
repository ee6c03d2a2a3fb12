"""What a model may return besides a plain tensor of outputs."""
from __future__ import annotations

from typing import NamedTuple

from torch import Tensor


class WithAuxLoss(NamedTuple):
    """A model's output and an auxiliary loss (a scalar) that the task adds to its own loss in every split, e.g.
    DiffPool's link-prediction and entropy terms (:class:`gnnlab.models.DiffPool`). The metrics read ``out``."""

    out: Tensor
    aux_loss: Tensor
