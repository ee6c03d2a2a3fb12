"""A diverging run stops with a clear error, keeps its last finite checkpoint, and writes strict JSON."""
from __future__ import annotations

import json
import math

import pytest
import torch

from gnnlab.train import FitResult, Trainer
from gnnlab.train.checkpoint import load_checkpoint
from gnnlab.train.trainer import DivergenceError
from tests.train.toy import ToyData, ToyModel, toy_task


class _EpochHook:
    """A logger that calls ``fn(epoch)`` after each epoch's metrics are logged."""

    def __init__(self, fn):
        self.fn = fn

    def log_hyperparams(self, params):
        pass

    def log_metrics(self, metrics, step):
        self.fn(step)

    def finalize(self, status="success"):
        pass


def _strict_loads(text: str):
    def refuse(constant):
        raise ValueError(f"non-standard JSON constant {constant}")

    return json.loads(text, parse_constant=refuse)


def _fit(tmp_path, model, optimizer, max_epochs=20, logger=None, **trainer_kwargs):
    trainer = Trainer(max_epochs=max_epochs, output_dir=str(tmp_path), progress=False, min_lr=None,
                      **trainer_kwargs)
    return trainer, trainer.fit(model, toy_task(), ToyData(), optimizer, logger=logger)


def test_non_finite_training_loss_stops_naming_epoch_and_step(tmp_path):
    torch.manual_seed(0)
    model = ToyModel()
    with pytest.raises(DivergenceError, match=r"epoch (\d+), step (\d+)") as info:
        _fit(tmp_path, model, torch.optim.SGD(model.parameters(), lr=2.0), max_loss=None)
    err = info.value
    assert not math.isfinite(err.loss) and err.epoch >= 2, (err.epoch, err.loss)
    assert str(tmp_path / "checkpoints" / "last.ckpt") in str(err)
    # The last checkpoint is the last finite state: written at the end of the epoch before.
    state = load_checkpoint(tmp_path / "checkpoints" / "last.ckpt")
    assert state["epoch"] == err.epoch - 1
    assert all(torch.isfinite(v).all() for v in state["model"].values())
    assert math.isfinite(state["best"])


def test_huge_finite_loss_stops_by_default_and_runs_on_without_a_limit(tmp_path):
    torch.manual_seed(0)
    model = ToyModel()
    with pytest.raises(DivergenceError, match=r"epoch 1, step 2\b.*max_loss"):
        _fit(tmp_path / "a", model, torch.optim.Adam(model.parameters(), lr=1e13), max_epochs=1)
    model = ToyModel()
    _, result = _fit(tmp_path / "b", model, torch.optim.Adam(model.parameters(), lr=1e13), max_epochs=1,
                     max_loss=None)
    assert result.epochs_run == 1


def test_non_finite_validation_is_never_the_best_epoch(tmp_path):
    torch.manual_seed(0)
    model = ToyModel()
    model.eval_output = float("nan")  # epoch 1 validates to NaN, epoch 2 is finite

    def recover(epoch):
        model.eval_output = None

    trainer, result = _fit(tmp_path, model, torch.optim.SGD(model.parameters(), lr=0.01), max_epochs=2,
                           logger=_EpochHook(recover))
    assert result.best_epoch == 2 and math.isfinite(result.best_value)
    assert not toy_task().better(float("nan"), None)
    assert not toy_task().better(float("inf"), 1.0)


def test_no_finite_validation_epoch_is_a_divergence(tmp_path):
    model = ToyModel()
    model.eval_output = float("inf")
    with pytest.raises(DivergenceError, match="val/mae"):
        _fit(tmp_path, model, torch.optim.SGD(model.parameters(), lr=0.01), max_epochs=2)


def test_non_finite_weights_never_overwrite_the_last_checkpoint(tmp_path):
    torch.manual_seed(0)
    model = ToyModel()

    def corrupt(epoch):
        if epoch == 2:
            with torch.no_grad():
                model.lin.weight[0, 0] = float("nan")

    with pytest.raises(DivergenceError, match="epoch 2"):
        _fit(tmp_path, model, torch.optim.SGD(model.parameters(), lr=0.01), max_epochs=3,
             logger=_EpochHook(corrupt))
    state = load_checkpoint(tmp_path / "checkpoints" / "last.ckpt")
    assert state["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in state["model"].values())


def test_results_json_is_strict(tmp_path):
    trainer = Trainer(max_epochs=1, output_dir=str(tmp_path), progress=False)
    result = FitResult(1, "val/mae", 0.5, {"val/mae": 0.5, "test/mae": float("nan")}, 1, False,
                       {"val/mae": float("inf"), "test/loss": float("-inf")})
    path = trainer.write_results(result, {"val/mae": 0.5, "test/mae": float("nan")})
    payload = _strict_loads(path.read_text())
    assert payload["metrics"]["test/mae"] is None
    assert payload["last"] == {"val/mae": None, "test/loss": None}
    assert payload["final"]["test/mae"] is None and payload["best_value"] == 0.5


@pytest.mark.slow
def test_cli_reports_divergence_in_one_line(tmp_path):
    from tests.train.test_run import TINY, _cli

    run_dir = tmp_path / "run"
    out = _cli([*TINY, "trainer.max_epochs=2", "optim.lr=1e30", f"hydra.run.dir={run_dir}"], tmp_path)
    assert out.returncode == 1
    errors = [line for line in out.stderr.splitlines() if line.startswith("gnnlab-train: error")]
    assert len(errors) == 1 and errors[0].startswith("gnnlab-train: error: DivergenceError: "), out.stderr[-3000:]
    assert "epoch 1, step" in errors[0]
    assert "Traceback" not in out.stderr
    assert not (run_dir / "results.json").exists()
