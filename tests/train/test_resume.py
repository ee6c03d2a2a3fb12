"""Resume: metrics rows match the checkpoint, overrides that would be ignored are refused, no stray folder."""
from __future__ import annotations

import shutil

import pytest
import torch
from omegaconf import OmegaConf

from gnnlab.errors import ConfigError
from gnnlab.train import Trainer
from gnnlab.train.checkpoint import save_checkpoint
from gnnlab.train.loggers import CSVLogger, LoggerCollection
from tests.train.test_run import TINY, _cli, _rows, _run
from tests.train.toy import ToyData, ToyModel, toy_task


def _fit(run_dir, epochs, resume=None):
    torch.manual_seed(0)
    model = ToyModel()
    trainer = Trainer(max_epochs=epochs, output_dir=str(run_dir), progress=False)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    logger = LoggerCollection([CSVLogger(run_dir)])
    return trainer.fit(model, toy_task(), ToyData(), optimizer, logger=logger, resume=resume)


def test_resume_drops_metrics_rows_after_the_checkpoint(tmp_path):
    straight = tmp_path / "straight"
    _fit(straight, 4)
    run = tmp_path / "run"
    _fit(run, 2)
    shutil.copy(run / "checkpoints" / "last.ckpt", tmp_path / "epoch2.ckpt")
    _fit(run, 3, resume=str(run))
    # Killed after the row of epoch 3 was written but before its checkpoint replaced epoch 2's.
    shutil.copy(tmp_path / "epoch2.ckpt", run / "checkpoints" / "last.ckpt")
    _fit(run, 4, resume=str(run))
    rows = _rows(run / "metrics.csv")
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4]
    for a, b in zip(_rows(straight / "metrics.csv"), rows):
        assert float(a["train/loss"]) == pytest.approx(float(b["train/loss"]), rel=1e-6)


def test_csv_logger_rewind_keeps_rows_up_to_the_step(tmp_path):
    log = CSVLogger(tmp_path)
    for step in (1, 2, 3):
        log.log_metrics({"a": float(step)}, step=step)
    log.rewind(1)
    log.log_metrics({"a": 2.5, "b": 1.0}, step=2)
    assert [(r["step"], r["a"]) for r in _rows(tmp_path / "metrics.csv")] == [("1", "1.0"), ("2", "2.5")]
    assert [r["step"] for r in _rows(tmp_path / "metrics.csv")] == [r["step"] for r in CSVLogger(tmp_path).rows]


def _fake_finished_run(tmp_path, run_dir):
    """A run folder as _resumed_config sees it (saved config + a last.ckpt), without training it."""
    from tests.conf.test_configs import compose_cfg
    from hydra.core.hydra_config import HydraConfig

    cfg = compose_cfg([*TINY, f"paths.output_dir={run_dir}", "trainer.max_epochs=1"], tmp_path, facts=False)
    HydraConfig.instance().cfg = None
    saved = OmegaConf.to_container(cfg, resolve=False)
    saved.pop("hydra")
    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / "checkpoints").mkdir()
    save_checkpoint(run_dir / "checkpoints" / "last.ckpt", {"epoch": 1})
    OmegaConf.save(OmegaConf.create(saved), run_dir / ".hydra" / "config.yaml")


def test_resume_refuses_overrides_it_would_ignore(tmp_path):
    run_dir = tmp_path / "run"
    _fake_finished_run(tmp_path, run_dir)
    with pytest.raises(ConfigError) as info:
        _run(tmp_path, ["trainer.max_epochs=3", f"trainer.resume={run_dir}", "model.hidden_channels=32",
                        "optim.lr=0.5", "data.module.batch_size=16", "+trainer.extra=1", "~trainer.min_lr"],
             tmp_path / "ignored")
    message = str(info.value)
    assert str(run_dir) in message
    for override in ("model.hidden_channels=32", "optim.lr=0.5", "+trainer.extra=1", "~trainer.min_lr"):
        assert override in message, message
    assert "max_epochs" not in message.split("ignored")[-1] and "batch_size" not in message, message
    assert not (run_dir / "metrics.csv").exists()


@pytest.mark.slow
def test_cli_resume_continues_in_its_folder_and_refuses_ignored_overrides(tmp_path):
    out = _cli([*TINY, "trainer.max_epochs=1"], tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    (run,) = (tmp_path / "outputs" / "runs").iterdir()
    started_with = (run / ".hydra" / "config.yaml").read_text()

    out = _cli([f"trainer.resume={run}", "trainer.max_epochs=2", "model.num_layers=4"], tmp_path)
    assert out.returncode == 1
    errors = [line for line in out.stderr.splitlines() if line.startswith("gnnlab-train: error")]
    assert len(errors) == 1 and "model.num_layers=4" in errors[0], out.stderr[-2000:]

    out = _cli([f"trainer.resume={run}", "trainer.max_epochs=2"], tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert list((tmp_path / "outputs" / "runs").iterdir()) == [run]  # no stray folder from either call
    assert [int(r["epoch"]) for r in _rows(run / "metrics.csv")] == [1, 2]
    assert (run / ".hydra" / "config.yaml").read_text() == started_with


def test_resuming_a_run_saved_with_release_memory_every_maps_it_to_the_batch_callback(tmp_path):
    """Run folders written before the heap trimming became a batch callback still resume."""
    from hydra.utils import instantiate

    from gnnlab.cli import ReleaseFreeMemory
    from gnnlab.train.run import _resumed_config
    from tests.conf.test_configs import compose_cfg

    run_dir = tmp_path / "run"
    _fake_finished_run(tmp_path, run_dir)
    saved = OmegaConf.load(run_dir / ".hydra" / "config.yaml")
    del saved.trainer["batch_callbacks"]
    saved.trainer.release_memory_every = 7
    OmegaConf.save(saved, run_dir / ".hydra" / "config.yaml")
    cfg = compose_cfg([*TINY, f"trainer.resume={run_dir}"], tmp_path, facts=False)
    old = _resumed_config(cfg)
    assert "release_memory_every" not in old.trainer
    trainer_cfg = OmegaConf.to_container(old.trainer, resolve=True)
    trainer_cfg.pop("resume")
    trainer = instantiate(trainer_cfg)
    assert [type(c) for c in trainer.batch_callbacks] == [ReleaseFreeMemory] and trainer.batch_callbacks[0].every == 7


def test_resume_to_fewer_epochs_than_the_checkpoint_is_refused(tmp_path):
    run = tmp_path / "run"
    _fit(run, 3)
    with pytest.raises(ConfigError, match=r"max_epochs=2, but the checkpoint .* is after epoch 3"):
        _fit(run, 2, resume=str(run))
    # max_epochs equal to the checkpoint's epoch ends the run there: no epoch is added.
    result = _fit(run, 3, resume=str(run))
    assert result.epochs_run == 3
    assert [int(r["step"]) for r in _rows(run / "metrics.csv")] == [1, 2, 3]
