"""WarmupCosineLR against its formula, its resume, and the trainer's min_lr rule."""
from __future__ import annotations

import math

import pytest
import torch

from gnnlab.train.schedulers import WarmupCosineLR
from gnnlab.train.trainer import Trainer
from gnnlab.train.tasks import Task


def _optimizer(lr=2e-3):
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(3))], lr=lr)


def _rates(scheduler, optimizer, epochs):
    rates = []
    for _ in range(epochs):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return rates


def test_warmup_then_half_cosine():
    opt = _optimizer()
    rates = _rates(WarmupCosineLR(opt, warmup_epochs=4, max_epochs=14), opt, 15)
    expected = [2e-3 * max(1e-6, t / 4) for t in range(4)]
    expected += [2e-3 * 0.5 * (1 + math.cos(math.pi * (t - 4) / 10)) for t in range(4, 15)]
    assert rates == pytest.approx(expected, rel=1e-9, abs=1e-15)
    assert rates[4] == pytest.approx(2e-3) and rates[14] == pytest.approx(0.0, abs=1e-15)
    assert max(rates) == pytest.approx(2e-3)


def test_run_shorter_than_the_warmup_only_warms_up():
    opt = _optimizer()
    assert _rates(WarmupCosineLR(opt, 5, 3), opt, 3) == pytest.approx([2e-9, 4e-4, 8e-4])


def test_no_warmup_is_plain_cosine():
    opt_a, opt_b = _optimizer(), _optimizer()
    ours = _rates(WarmupCosineLR(opt_a, 0, 10), opt_a, 10)
    torch_cos = _rates(torch.optim.lr_scheduler.CosineAnnealingLR(opt_b, T_max=10), opt_b, 10)
    assert ours == pytest.approx(torch_cos, rel=1e-9)


def test_resume_from_state_dict_continues_exactly():
    opt = _optimizer()
    sched = WarmupCosineLR(opt, 3, 12)
    _rates(sched, opt, 5)
    state = sched.state_dict()
    straight = _rates(sched, opt, 5)
    opt2 = _optimizer()
    opt2.param_groups[0]["initial_lr"] = 2e-3
    resumed = WarmupCosineLR(opt2, 3, 12)
    resumed.load_state_dict(state)
    opt2.param_groups[0]["lr"] = resumed.get_lr()[0]
    assert _rates(resumed, opt2, 5) == pytest.approx(straight, rel=1e-12)


@pytest.mark.parametrize("warmup, total", [(-1, 10), (5, 0)])
def test_bad_arguments_are_errors(warmup, total):
    with pytest.raises(ValueError, match="WarmupCosineLR"):
        WarmupCosineLR(_optimizer(), warmup, total)


class _Task(Task):
    """A one-parameter regression task for the trainer's stopping rules."""

    def __init__(self):
        super().__init__("mae", "min")

    def _default_metrics(self):
        return {"mae": lambda pred, target: (pred - target).abs().mean().item()}

    def select(self, out, batch, split):
        return out, batch

    def loss(self, pred, target):
        return (pred - target).abs().mean()


class _Data:
    def loader(self, split):
        return [torch.ones(4)]


class _Model(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))

    def forward(self, batch):
        return self.w.expand_as(batch)


def _fit(tmp_path, make_scheduler, epochs=12):
    model = _Model()
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    trainer = Trainer(max_epochs=epochs, output_dir=str(tmp_path), min_lr=1e-5, progress=False)
    return trainer.fit(model, _Task(), _Data(), opt, make_scheduler(opt))


def test_min_lr_stops_a_plateau_schedule(tmp_path):
    # The loss keeps falling slowly, but a zero-patience plateau on a fixed metric halves every epoch.
    result = _fit(tmp_path, lambda o: torch.optim.lr_scheduler.ReduceLROnPlateau(o, factor=0.1, patience=0, threshold=10.0))
    assert result.stopped_early and result.epochs_run < 12


def test_min_lr_does_not_stop_a_warmup_schedule(tmp_path):
    # The cosine tail falls below min_lr a few epochs before the end, by design: the run must go on.
    result = _fit(tmp_path, lambda o: WarmupCosineLR(o, 3, 40), epochs=40)
    assert not result.stopped_early and result.epochs_run == 40
