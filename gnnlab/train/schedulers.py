"""Learning-rate schedules that torch does not ship (the standard ones are used from ``torch.optim``)."""
from __future__ import annotations

import math

import torch
from torch.optim.lr_scheduler import LRScheduler

from gnnlab.errors import ConfigError


class WarmupCosineLR(LRScheduler):
    r"""Linear warm-up, then half a cosine down to zero; stepped once per epoch.

    The schedule of GraphGPS (``cosine_with_warmup``), with ``t`` the number of completed epochs:

    .. math::

        \eta_t = \eta_0 \cdot \begin{cases}
            \max(10^{-6},\ t / W) & t < W \\
            \tfrac12 \left(1 + \cos\left(\pi \, \frac{t - W}{T - W}\right)\right) & t \ge W
        \end{cases}

    Args:
        optimizer: the optimiser whose base learning rates are scaled.
        warmup_epochs (int): ``W``, epochs of linear warm-up (``0`` starts at the full rate).
        max_epochs (int): ``T``, the epoch at which the rate reaches zero. A run shorter than the
            warm-up (a quick check with few epochs) ends while the rate is still rising.
        last_epoch (int, optional): as in :class:`torch.optim.lr_scheduler.LRScheduler`.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, warmup_epochs: int, max_epochs: int, last_epoch: int = -1):
        if warmup_epochs < 0:
            raise ConfigError(f"WarmupCosineLR: warmup_epochs must be >= 0, got {warmup_epochs}")
        if max_epochs < 1:
            raise ConfigError(f"WarmupCosineLR: max_epochs must be >= 1, got {max_epochs}")
        self.warmup_epochs = int(warmup_epochs)
        self.max_epochs = int(max_epochs)
        super().__init__(optimizer, last_epoch)

    def factor(self, epoch: int) -> float:
        """The multiplier of the base learning rate after ``epoch`` completed epochs."""
        if epoch < self.warmup_epochs:
            return max(1e-6, epoch / self.warmup_epochs)
        progress = min(1.0, (epoch - self.warmup_epochs) / max(1, self.max_epochs - self.warmup_epochs))
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    def get_lr(self) -> list[float]:
        """Closed form in ``last_epoch``, so a resumed schedule continues exactly."""
        scale = self.factor(self.last_epoch)
        return [base * scale for base in self.base_lrs]
