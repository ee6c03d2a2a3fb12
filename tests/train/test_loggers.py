"""CSV and wandb (offline) loggers."""
from __future__ import annotations

import csv

import pytest

from gnnlab.train.loggers import ConsoleLogger, CSVLogger, LoggerCollection, WandbLogger


def _read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_csv_new_columns_and_resume(tmp_path):
    log = CSVLogger(tmp_path)
    log.log_hyperparams({"model": {"dim": 8}})
    log.log_metrics({"train/loss": 1.5}, step=1)
    log.log_metrics({"train/loss": 1.0, "val/acc": 0.5}, step=2)
    rows = _read(tmp_path / "metrics.csv")
    assert [r["step"] for r in rows] == ["1", "2"]
    assert rows[0]["val/acc"] == "" and float(rows[1]["val/acc"]) == 0.5
    assert "dim: 8" in (tmp_path / "hparams.yaml").read_text()
    resumed = CSVLogger(tmp_path)  # a resumed run appends to the same file
    resumed.log_metrics({"train/loss": 0.7, "val/acc": 0.6}, step=3)
    rows = _read(tmp_path / "metrics.csv")
    assert [r["step"] for r in rows] == ["1", "2", "3"]
    assert float(rows[2]["train/loss"]) == pytest.approx(0.7)


def test_console_and_collection(tmp_path, capsys):
    csv_log = CSVLogger(tmp_path)
    both = LoggerCollection([ConsoleLogger(), csv_log])
    both.log_metrics({"epoch": 3, "val/acc": 0.25}, step=3)
    both.finalize()
    assert "epoch 3" in capsys.readouterr().out
    assert _read(tmp_path / "metrics.csv")[0]["val/acc"] == "0.25"


def test_wandb_offline_writes_run_files(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    log = WandbLogger(project="gnnlab-test", name="unit", save_dir=tmp_path)
    log.log_hyperparams({"lr": 0.01})
    for step in range(1, 4):
        log.log_metrics({"train/loss": 1.0 / step, "val/acc_marker": 0.1 * step}, step=step)
    log.finalize("success")
    runs = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    data = list(runs[0].glob("run-*.wandb"))
    assert data, "no .wandb data file"
    blob = data[0].read_bytes()
    assert b"val/acc_marker" in blob and b"train/loss" in blob
