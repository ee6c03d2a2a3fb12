"""The citation benchmarks' stopping rule (trainer.loss_window_stop), as the APPNP/DAGNN code applies it."""
from __future__ import annotations

import pytest
import torch

from gnnlab.errors import ConfigError
from gnnlab.train import Trainer
from gnnlab.train.checkpoint import load_checkpoint
from tests.train.toy import ToyData, ToyModel, toy_task


class _Spikes:
    """A logger that records ``val/loss`` and makes the model validate badly in the epochs of ``spikes``."""

    def __init__(self, model, spikes):
        self.model, self.spikes, self.val_losses = model, spikes, []

    def log_hyperparams(self, params):
        pass

    def log_metrics(self, metrics, step):
        self.val_losses.append(metrics["val/loss"])
        self.model.eval_output = 50.0 if step + 1 in self.spikes else None

    def finalize(self, status="success"):
        pass


def _rule_stop(losses, window, max_epochs):
    """The first 1-based epoch the rule stops at, by the authors' loop, or None."""
    for epoch in range(1, len(losses) + 1):
        previous = losses[max(0, epoch - 1 - window):epoch - 1]
        if epoch > max_epochs // 2 and previous and losses[epoch - 1] > sum(previous) / len(previous):
            return epoch
    return None


def test_stops_where_the_rule_says_and_not_in_the_first_half(tmp_path):
    torch.manual_seed(0)
    model = ToyModel()
    logger = _Spikes(model, spikes={5, 13})  # a spike in the first half must not stop the run
    trainer = Trainer(max_epochs=20, output_dir=str(tmp_path), progress=False, min_lr=None, loss_window_stop=3)
    result = trainer.fit(model, toy_task(), ToyData(), torch.optim.Adam(model.parameters(), lr=0.05), logger=logger)
    losses = logger.val_losses
    assert losses[4] > 10 * losses[3]  # the first spike happened, in epoch 5
    expected = _rule_stop(losses, 3, 20)
    assert expected is not None and 10 < expected <= 13
    assert result.stopped_early and result.epochs_run == expected == len(losses)
    state = load_checkpoint(tmp_path / "checkpoints" / "last.ckpt")
    assert state["val_losses"] == losses  # kept for a resumed run


def test_without_the_rule_the_run_goes_on(tmp_path):
    torch.manual_seed(0)
    model = ToyModel()
    logger = _Spikes(model, spikes={13})
    trainer = Trainer(max_epochs=16, output_dir=str(tmp_path), progress=False, min_lr=None)
    result = trainer.fit(model, toy_task(), ToyData(), torch.optim.Adam(model.parameters(), lr=0.05), logger=logger)
    assert result.epochs_run == 16 and not result.stopped_early


def test_bad_window():
    with pytest.raises(ConfigError, match="loss_window_stop"):
        Trainer(loss_window_stop=0)
