"""CSV, console and Weights & Biases (offline) loggers, and the collection that fans out to them."""
from __future__ import annotations

import csv
import io
import struct
import sys
import time
from types import SimpleNamespace

import pandas as pd
import pytest
import torch
import yaml
from rich.console import Console

from gnnlab.errors import ConfigError
from gnnlab.train.loggers import ConsoleLogger, CSVLogger, Logger, LoggerCollection, WandbLogger


def _read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


# --------------------------------------------------------------------------------------------- CSV


def test_csv_new_columns_rewrite_a_valid_file(tmp_path):
    log = CSVLogger(tmp_path / "run")  # created on the first write
    log.log_metrics({"train/loss": 1.5}, step=1)
    log.log_metrics({"train/loss": 1.0, "val/acc": 0.5}, step=2)
    log.log_metrics({"val/acc": 0.75, "lr": torch.tensor(0.01)}, step=3)
    log.log_metrics({"train/loss": 0.25}, step=4)
    text = (tmp_path / "run" / "metrics.csv").read_text()
    assert text.splitlines()[0] == "step,train/loss,val/acc,lr"  # one header, union of the columns
    assert "tensor" not in text
    df = pd.read_csv(tmp_path / "run" / "metrics.csv")
    assert list(df["step"]) == [1, 2, 3, 4]
    assert df["train/loss"].tolist()[:2] == [1.5, 1.0] and pd.isna(df["train/loss"][2])
    assert pd.isna(df["val/acc"][0]) and df["val/acc"][2] == 0.75
    assert df["lr"][2] == pytest.approx(0.01) and pd.isna(df["lr"][3])
    assert not (tmp_path / "run" / "metrics.csv.tmp").exists()


def test_csv_resume_appends(tmp_path):
    first = CSVLogger(tmp_path)
    first.log_metrics({"train/loss": 1.5}, step=1)
    first.log_metrics({"train/loss": 1.0, "val/acc": 0.5}, step=2)
    first.finalize()
    resumed = CSVLogger(tmp_path)  # a resumed run keeps the rows and appends
    resumed.log_metrics({"train/loss": 0.7, "val/acc": 0.6}, step=3)
    rows = _read(tmp_path / "metrics.csv")
    assert [r["step"] for r in rows] == ["1", "2", "3"]
    assert float(rows[2]["train/loss"]) == pytest.approx(0.7) and rows[0]["val/acc"] == ""
    again = CSVLogger(tmp_path)  # and a new column after resuming keeps every earlier row
    again.log_metrics({"test/acc": 0.9}, step=4)
    df = pd.read_csv(tmp_path / "metrics.csv")
    assert list(df.columns) == ["step", "train/loss", "val/acc", "test/acc"]
    assert list(df["step"]) == [1, 2, 3, 4]
    assert df["val/acc"][1:3].tolist() == [0.5, 0.6] and df["test/acc"][3] == 0.9


def test_csv_resume_from_empty_file(tmp_path):
    (tmp_path / "metrics.csv").write_text("")
    log = CSVLogger(tmp_path)
    log.log_metrics({"a": 1.0}, step=1)
    assert _read(tmp_path / "metrics.csv") == [{"step": "1", "a": "1.0"}]


def test_csv_hparams_yaml(tmp_path):
    log = CSVLogger(tmp_path, filename="m.csv")
    params = {"model": {"dim": 8, "act": "relu"}, "optim": {"lr": 0.001}, "tags": ["a", "b"], "seed": None}
    log.log_hyperparams(params)
    assert yaml.safe_load((tmp_path / "hparams.yaml").read_text()) == params
    log.log_metrics({"x": 2.0}, step=0)
    assert (tmp_path / "m.csv").is_file()


# ----------------------------------------------------------------------------- console, collection


def test_console_line():
    buf = io.StringIO()
    log = ConsoleLogger(Console(file=buf, width=200, color_system=None))
    log.log_hyperparams({"a": 1})  # prints nothing
    log.log_metrics({"epoch": 3, "train/loss": 0.51234, "val/acc": 71.234, "lr": 0.001, "time/epoch_s": 1.26}, step=3)
    log.log_metrics({"val/[x]": 0.5}, step=4)  # brackets are text, not rich markup
    lines = buf.getvalue().splitlines()
    assert lines[0] == "epoch 3 | train/loss 0.5123 | val/acc 71.23 | lr 0.001 | time/epoch_s 1.3"
    assert lines[1] == "epoch 4 | val/[x] 0.5"


class _Recorder:
    def __init__(self, fail_finalize=False):
        self.calls, self.fail_finalize = [], fail_finalize

    def log_hyperparams(self, params):
        self.calls.append(("hparams", params))

    def log_metrics(self, metrics, step):
        self.calls.append(("metrics", metrics, step))

    def finalize(self, status="success"):
        self.calls.append(("finalize", status))
        if self.fail_finalize:
            raise RuntimeError("boom")


def test_collection_fans_out_and_closes_everything():
    a, b, c = _Recorder(fail_finalize=True), _Recorder(), _Recorder()
    both = LoggerCollection([a, b, c])
    assert all(isinstance(x, Logger) for x in (a, both, CSVLogger("unused"), ConsoleLogger()))
    both.log_hyperparams({"lr": 1})
    both.log_metrics({"val/acc": 0.25}, step=3)
    with pytest.raises(RuntimeError, match="boom"):
        both.finalize("failed")
    for r in (a, b, c):  # the failing logger does not keep the others open
        assert r.calls == [("hparams", {"lr": 1}), ("metrics", {"val/acc": 0.25}, 3), ("finalize", "failed")]
    LoggerCollection([]).finalize()


def test_console_and_csv_in_a_collection(tmp_path, capsys):
    both = LoggerCollection([ConsoleLogger(), CSVLogger(tmp_path)])
    both.log_metrics({"epoch": 3, "val/acc": 0.25}, step=3)
    both.finalize()
    assert "epoch 3 | val/acc 0.25" in capsys.readouterr().out
    assert _read(tmp_path / "metrics.csv") == [{"step": "3", "epoch": "3", "val/acc": "0.25"}]


# ------------------------------------------------------------------------------------------- wandb


def _wandb_records(path):
    """Protobuf records of a ``.wandb`` file: a 7-byte W&B header, then a LevelDB-style log."""
    from wandb.proto import wandb_internal_pb2 as pb

    buf = path.read_bytes()
    assert buf[:4] == b":W&B"
    block, pos, part, records = 32768, 7, b"", []
    while pos + 7 <= len(buf):
        left = block - pos % block
        if left < 7:  # block trailer padding
            pos += left
            continue
        _, length, kind = struct.unpack("<IHB", buf[pos:pos + 7])
        pos += 7
        part += buf[pos:pos + length]
        pos += length
        if kind in (1, 4):  # FULL or LAST chunk
            record = pb.Record()
            record.ParseFromString(part)
            records.append(record)
            part = b""
    return records


def test_wandb_offline_writes_run_files(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "elsewhere"))  # save_dir wins
    log = WandbLogger(project="gnnlab-test", name="unit", save_dir=tmp_path / "run", tags=("t1",), group="g")
    log.log_hyperparams({"lr": 0.01, "model": {"dim": 8}})
    for step in range(1, 4):
        log.log_metrics({"train/loss": 1.0 / step, "val/acc_marker": 0.1 * step}, step=step)
    log.finalize("success")
    log.finalize("success")  # a second call does nothing

    runs = list((tmp_path / "run" / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    data = list(runs[0].glob("run-*.wandb"))
    assert len(data) == 1
    # wandb's service process writes the run file asynchronously; on a loaded machine the records
    # can land after finish() returns, so wait for them (bounded) before reading.
    deadline = time.monotonic() + 60
    blob = data[0].read_bytes()
    while not (b"val/acc_marker" in blob and b"train/loss" in blob) and time.monotonic() < deadline:
        time.sleep(0.5)
        blob = data[0].read_bytes()
    assert b"val/acc_marker" in blob and b"train/loss" in blob

    history, config, exit_codes, info = {}, {}, [], None
    for record in _wandb_records(data[0]):
        kind = record.WhichOneof("record_type")
        if kind == "history":
            items = {i.key or "/".join(i.nested_key): i.value_json for i in record.history.item}
            history[int(items["_step"])] = items
        elif kind == "config":
            config.update({i.key: yaml.safe_load(i.value_json) for i in record.config.update})
        elif kind == "exit":
            exit_codes.append(record.exit.exit_code)
        elif kind == "run":
            info = record.run
    assert sorted(history) == [1, 2, 3]
    assert float(history[2]["train/loss"]) == pytest.approx(0.5)
    assert float(history[3]["val/acc_marker"]) == pytest.approx(0.3)
    assert config["lr"] == 0.01 and config["model"] == {"dim": 8}
    assert exit_codes == [0]
    assert (info.project, info.display_name, list(info.tags), info.run_group) == ("gnnlab-test", "unit", ["t1"], "g")


def test_wandb_mode_argument_overrides_env(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    log = WandbLogger(save_dir=tmp_path, mode="disabled")
    log.log_metrics({"a": 1.0}, step=1)
    log.finalize()
    assert not list(tmp_path.glob("wandb/offline-run-*"))


def test_wandb_calls_and_exit_code():
    # The mapping onto the run's API, checked on a stand-in run object.
    calls = []
    run = SimpleNamespace(
        log=lambda data, step: calls.append(("log", data, step)),
        finish=lambda exit_code: calls.append(("finish", exit_code)),
        config=SimpleNamespace(update=lambda params, allow_val_change: calls.append(("config", params, allow_val_change))),
    )
    log = WandbLogger.__new__(WandbLogger)
    log.run, log._finished = run, False
    log.log_hyperparams({"a": 1})
    log.log_metrics({"x": torch.tensor(0.5), "y": float("nan")}, step=7)
    log.finalize("failed")
    log.finalize("success")
    assert calls[0] == ("config", {"a": 1}, True)
    assert calls[1][0] == "log" and calls[1][1]["x"] == 0.5 and calls[1][2] == 7
    assert type(calls[1][1]["x"]) is float and calls[1][1]["y"] != calls[1][1]["y"]  # NaN is kept
    assert calls[2:] == [("finish", 1)]


def test_wandb_missing_gives_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # makes `import wandb` fail
    with pytest.raises(ImportError, match="pip install wandb"):
        WandbLogger()


def test_wandb_online_without_api_key_says_how_to_log_offline(tmp_path, monkeypatch):
    # No key anywhere wandb looks (environment, netrc, settings): an online run is refused with a message
    # that names the offline mode, instead of wandb's prompt or its bare UsageError.
    for var in ("WANDB_API_KEY", "WANDB_MODE", "WANDB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("WANDB_SILENT", "true")
    with pytest.raises(ConfigError, match="logger.wandb.mode=offline"):
        WandbLogger(save_dir=tmp_path / "run", mode="online")
