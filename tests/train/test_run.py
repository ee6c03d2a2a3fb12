"""End-to-end runs on tiny generated CLUSTER: outputs, resume, multirun, CLI errors."""
from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hydra.core.hydra_config import HydraConfig

from gnnlab.errors import ConfigError
from gnnlab.train.run import train
from tests.conf.test_configs import compose_cfg

TINY = [
    "data.module.splits.num_train=48",
    "data.module.splits.num_val=16",
    "data.module.splits.num_test=16",
    "data.module.batch_size=16",
    "model.hidden_channels=16",
    "model.num_layers=2",
    "trainer.progress=false",
]


def _rows(path: Path) -> list[dict]:
    with open(path) as f:
        return list(csv.DictReader(f))


def _run(tmp_path: Path, overrides: list[str], run_dir: Path) -> float:
    cfg = compose_cfg([*TINY, f"paths.output_dir={run_dir}", *overrides], tmp_path, facts=False)
    run_dir.mkdir(parents=True, exist_ok=True)
    # A real run keeps its resolved config here; resume reads it back.
    (run_dir / ".hydra").mkdir(exist_ok=True)
    from omegaconf import OmegaConf

    saved = OmegaConf.to_container(cfg, resolve=False)
    saved.pop("hydra")
    OmegaConf.save(OmegaConf.create(saved), run_dir / ".hydra" / "config.yaml")
    try:
        return train(cfg)
    finally:
        HydraConfig.instance().cfg = None


def test_run_writes_outputs(tmp_path):
    run_dir = tmp_path / "run"
    value = _run(tmp_path, ["trainer.max_epochs=2"], run_dir)
    rows = _rows(run_dir / "metrics.csv")
    assert [int(float(r["epoch"])) for r in rows] == [1, 2]
    for key in ["train/loss", "val/weighted_accuracy", "test/weighted_accuracy", "lr"]:
        assert key in rows[0]
    assert (run_dir / "checkpoints" / "best.ckpt").is_file()
    resolved = (run_dir / "config_resolved.yaml").read_text()
    assert "${" not in resolved and "num_train: 48" in resolved
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    results = json.loads((run_dir / "results.json").read_text())
    assert results["best_value"] == pytest.approx(value)
    assert "test/weighted_accuracy" in results["final"]
    best_row = rows[results["best_epoch"] - 1]
    assert float(best_row["val/weighted_accuracy"]) == pytest.approx(value)
    # `last` is the final epoch's model (the Benchmarking-GNNs protocol), whichever epoch was best.
    for key in ["val/weighted_accuracy", "test/weighted_accuracy", "test/loss"]:
        assert results["last"][key] == pytest.approx(float(rows[-1][key]))


def test_resume_continues_exactly(tmp_path):
    """4 epochs in one go == 2 epochs, stop, resume to 4 (same losses, same metrics)."""
    straight = tmp_path / "straight"
    _run(tmp_path, ["trainer.max_epochs=4", "model.layer.dropout=0.2"], straight)
    resumed = tmp_path / "resumed"
    _run(tmp_path, ["trainer.max_epochs=2", "model.layer.dropout=0.2"], resumed)
    _run(tmp_path, ["trainer.max_epochs=4", f"trainer.resume={resumed}"], tmp_path / "ignored")
    a, b = _rows(straight / "metrics.csv"), _rows(resumed / "metrics.csv")
    last_a = json.loads((straight / "results.json").read_text())["last"]
    last_b = json.loads((resumed / "results.json").read_text())["last"]
    assert last_a == pytest.approx(last_b, rel=1e-6)
    assert len(a) == len(b) == 4
    for ra, rb in zip(a, b):
        for key in ["train/loss", "val/loss", "val/weighted_accuracy", "test/loss", "lr"]:
            assert float(ra[key]) == pytest.approx(float(rb[key]), rel=1e-6, abs=1e-9), (ra["epoch"], key)


def test_resume_without_max_epochs_runs_to_the_epochs_the_run_was_started_with(tmp_path):
    """A 5-epoch run stopped after epoch 2 and resumed by ``trainer.resume`` alone ends after epoch 5 as
    the uninterrupted run does, not after the default config's 3 epochs."""
    straight = tmp_path / "straight"
    _run(tmp_path, ["trainer.max_epochs=5"], straight)
    resumed = tmp_path / "resumed"
    _run(tmp_path, ["trainer.max_epochs=2"], resumed)
    # Started for 5 epochs, stopped after the checkpoint of epoch 2.
    for saved in (resumed / ".hydra" / "config.yaml", resumed / "config_resolved.yaml"):
        saved.write_text(saved.read_text().replace("max_epochs: 2", "max_epochs: 5"))
    _run(tmp_path, [f"trainer.resume={resumed}"], tmp_path / "ignored")
    a, b = _rows(straight / "metrics.csv"), _rows(resumed / "metrics.csv")
    assert [int(float(r["epoch"])) for r in b] == [1, 2, 3, 4, 5]
    assert float(a[-1]["val/loss"]) == pytest.approx(float(b[-1]["val/loss"]), rel=1e-6)
    assert "max_epochs: 5" in (resumed / "config_resolved.yaml").read_text()

    # Resumed for 7 epochs and stopped after epoch 5's checkpoint: a plain resume goes on to 7.
    last = resumed / "checkpoints" / "last.ckpt"
    shutil.copy(last, tmp_path / "epoch5.ckpt")
    _run(tmp_path, ["trainer.max_epochs=7", f"trainer.resume={resumed}"], tmp_path / "ignored")
    shutil.copy(tmp_path / "epoch5.ckpt", last)
    _run(tmp_path, [f"trainer.resume={resumed}"], tmp_path / "ignored")
    assert [int(float(r["epoch"])) for r in _rows(resumed / "metrics.csv")] == [1, 2, 3, 4, 5, 6, 7]

    # Fewer epochs than the checkpoint's is refused before the folder is touched.
    with pytest.raises(ConfigError, match=r"max_epochs=4, but its checkpoint is after epoch 7"):
        _run(tmp_path, ["trainer.max_epochs=4", f"trainer.resume={resumed}"], tmp_path / "ignored")
    assert "max_epochs: 7" in (resumed / "config_resolved.yaml").read_text()


def test_resume_from_the_resolved_config(tmp_path):
    """A run folder without .hydra/ (hydra.output_subdir=null) resumes from its config_resolved.yaml."""
    straight = tmp_path / "straight"
    _run(tmp_path, ["trainer.max_epochs=3"], straight)
    resumed = tmp_path / "resumed"
    _run(tmp_path, ["trainer.max_epochs=2"], resumed)
    shutil.rmtree(resumed / ".hydra")
    _run(tmp_path, ["trainer.max_epochs=3", f"trainer.resume={resumed}"], tmp_path / "ignored")
    a, b = _rows(straight / "metrics.csv"), _rows(resumed / "metrics.csv")
    assert len(a) == len(b) == 3
    assert float(a[-1]["val/loss"]) == pytest.approx(float(b[-1]["val/loss"]), rel=1e-6)


def test_resume_without_a_saved_config_is_a_clear_error(tmp_path):
    run_dir = tmp_path / "run"
    _run(tmp_path, ["trainer.max_epochs=1"], run_dir)
    shutil.rmtree(run_dir / ".hydra")
    (run_dir / "config_resolved.yaml").unlink()
    with pytest.raises(FileNotFoundError, match="neither .hydra/config.yaml nor config_resolved.yaml"):
        _run(tmp_path, ["trainer.max_epochs=2", f"trainer.resume={run_dir}"], tmp_path / "ignored")

def _cli(args: list[str], cwd: Path, **env) -> subprocess.CompletedProcess:
    full_env = dict(os.environ, WANDB_MODE="offline", WANDB_SILENT="true", **env)
    return subprocess.run(
        [sys.executable, "-m", "gnnlab.train", *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=300
    )


@pytest.mark.slow
def test_cli_multirun_over_seeds(tmp_path):
    """Under the default sweep folder, outputs/multiruns/<time>/<job>: one folder for both jobs."""
    out = _cli(["-m", *TINY, "trainer.max_epochs=1", "seed=0,1"], tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    (sweep,) = (tmp_path / "outputs" / "multiruns").iterdir()
    for job in ("0", "1"):
        job_dir = sweep / job
        assert (job_dir / "results.json").is_file()
        assert (job_dir / ".hydra" / "config.yaml").is_file()
    seeds = {json.loads((sweep / j / "results.json").read_text())["best_value"] for j in "01"}
    assert len(seeds) == 2, "different seeds should give different runs"


@pytest.mark.slow
def test_cli_wandb_offline(tmp_path):
    out = _cli([*TINY, "trainer.max_epochs=1", "logger=wandb", f"hydra.run.dir={tmp_path}/run"], tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    runs = list((tmp_path / "run" / "wandb").glob("offline-run-*"))
    assert runs, "no offline wandb run folder"
    assert list(runs[0].glob("run-*.wandb"))


@pytest.mark.parametrize(
    "args, message",
    [
        (["model.no_such_key=1"], "no_such_key"),
        (["data=no_such_dataset"], "no_such_dataset"),
        (["data.module.splits.name=NOPE"], "NOPE"),
    ],
)
def test_cli_bad_input_clear_error(tmp_path, args, message):
    out = _cli([*TINY, "trainer.max_epochs=1", f"hydra.run.dir={tmp_path}/run", *args], tmp_path)
    assert out.returncode != 0
    assert message in out.stderr
    assert "Traceback" not in out.stderr or "Set the environment variable HYDRA_FULL_ERROR" in out.stderr


def test_cli_unwritable_data_root(tmp_path):
    blocker = tmp_path / "afile"
    blocker.write_text("not a folder")
    out = _cli([*TINY, "trainer.max_epochs=1", f"hydra.run.dir={tmp_path}/run", f"paths.data_dir={blocker}/data"], tmp_path)
    assert out.returncode != 0
    assert "not writable" in out.stderr and str(blocker) in out.stderr


def test_gps_with_encodings_trains_and_resumes_exactly(tmp_path):
    """GPS + LapPE (random sign flips) + RWSE, attention dropout: 3 epochs == 2, stop, resume to 3."""
    gps = [
        "model=gps", "pe=[lappe,rwse]", "model.layer.mixer.num_heads=2", "model.layer.dropout=0.1",
        "model.pe.lappe.out_channels=4", "model.pe.rwse.out_channels=4", "data.module.pe_transforms.rwse.k=6",
    ]
    straight = tmp_path / "straight"
    _run(tmp_path, [*gps, "trainer.max_epochs=3"], straight)
    resumed = tmp_path / "resumed"
    _run(tmp_path, [*gps, "trainer.max_epochs=2"], resumed)
    _run(tmp_path, ["trainer.max_epochs=3", f"trainer.resume={resumed}"], tmp_path / "ignored")
    a, b = _rows(straight / "metrics.csv"), _rows(resumed / "metrics.csv")
    last_a = json.loads((straight / "results.json").read_text())["last"]
    last_b = json.loads((resumed / "results.json").read_text())["last"]
    assert last_a == pytest.approx(last_b, rel=1e-6)
    assert len(a) == len(b) == 3
    for ra, rb in zip(a, b):
        for key in ["train/loss", "val/loss", "val/weighted_accuracy", "test/loss"]:
            assert float(ra[key]) == pytest.approx(float(rb[key]), rel=1e-6, abs=1e-9), (ra["epoch"], key)
    # The encodings were computed once per split and cached with the dataset.
    caches = list((tmp_path / "datasets").rglob("pe_*.pt"))
    assert len(caches) == 3, caches


def test_run_log_names_the_dataset_and_its_split_sizes(tmp_path):
    import torch
    from torch_geometric.data import Data

    from gnnlab.data import DataModule, generate_sbm

    graphs = {split: generate_sbm("CLUSTER", n, split=split) for split, n in (("train", 6), ("val", 2), ("test", 3))}
    assert DataModule(graphs).describe() == "train 6 / val 2 / test 3 graphs"

    one = Data(x=torch.zeros(5, 1), y=torch.zeros(5, dtype=torch.long), edge_index=torch.empty(2, 0, dtype=torch.long),
               train_mask=torch.tensor([1, 1, 0, 0, 0]).bool(), val_mask=torch.tensor([0, 0, 1, 0, 0]).bool(),
               test_mask=torch.tensor([0, 0, 0, 1, 1]).bool())
    assert DataModule({s: [one] for s in ("train", "val", "test")}).describe() == \
        "train 2 / val 1 / test 2 labelled nodes of one graph"


def test_a_link_model_on_a_node_task_is_refused_before_training(tmp_path):
    cfg = compose_cfg([*TINY[:4], "model=gae", "trainer.max_epochs=1", f"paths.output_dir={tmp_path / 'run'}"],
                      tmp_path, facts=False)
    try:
        with pytest.raises(ConfigError, match=r"\(gnnlab.models.link.LinkPredictionModel\) and the task of "
                                              r".*\(NodeClassification\) do not fit"):
            train(cfg)
    finally:
        HydraConfig.instance().cfg = None
    assert not (tmp_path / "run" / "metrics.csv").exists()
