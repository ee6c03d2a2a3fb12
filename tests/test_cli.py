"""``gnnlab-train`` errors: one line for config and data errors, a full traceback for errors in code."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

TINY = [
    "data.module.splits.num_train=8",
    "data.module.splits.num_val=4",
    "data.module.splits.num_test=4",
    "data.module.batch_size=4",
    "model.hidden_channels=8",
    "model.num_layers=1",
    "trainer.max_epochs=1",
    "trainer.progress=false",
    "logger=none",
]


def _train(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    # GNNLAB_MALLOC_TUNING=0: no re-exec of the interpreter, which would import torch twice.
    full_env = dict(os.environ, WANDB_MODE="offline", GNNLAB_MALLOC_TUNING="0", **env)
    full_env["PYTHONPATH"] = os.pathsep.join(p for p in (str(cwd), str(REPO), full_env.get("PYTHONPATH")) if p)
    return subprocess.run(
        [sys.executable, "-m", "gnnlab.train", f"hydra.run.dir={cwd / 'run'}", f"paths.data_dir={cwd / 'data'}",
         *args],
        cwd=cwd, env=full_env, capture_output=True, text=True, timeout=300,
    )


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def test_mistyped_trainer_value_is_one_line_naming_key_value_and_type(tmp_path):
    out = _train([*TINY, "trainer.max_epochs=abc"], tmp_path)
    assert out.returncode != 0
    lines = _lines(out.stderr)
    assert len(lines) == 1, out.stderr
    assert "trainer.max_epochs" in lines[0] and "'abc'" in lines[0] and "int" in lines[0]
    assert "Traceback" not in out.stderr
    # Checked before anything is built: no dataset was generated.
    assert not (tmp_path / "data").exists()


def test_mistyped_optimizer_value_is_one_line(tmp_path):
    out = _train([*TINY, "optim.lr=fast"], tmp_path)
    assert out.returncode != 0
    lines = _lines(out.stderr)
    assert len(lines) == 1 and "optim.lr" in lines[0] and "'fast'" in lines[0] and "float" in lines[0], out.stderr


def test_bad_dataset_name_is_one_line(tmp_path):
    out = _train([*TINY, "data.module.splits.name=NOPE"], tmp_path)
    assert out.returncode != 0
    lines = _lines(out.stderr)
    assert len(lines) == 1 and "NOPE" in lines[0], out.stderr
    assert "Traceback" not in out.stderr


def test_type_error_in_a_user_layer_gives_the_full_traceback(tmp_path):
    (tmp_path / "userlayers.py").write_text(textwrap.dedent('''
        import torch

        def combine_user_messages(x, edge_attr):
            return x + "messages"  # a bug in the user's own code: TypeError

        class BrokenLayer(torch.nn.Module):
            def __init__(self, in_channels, out_channels, **kwargs):
                super().__init__()
                self.lin = torch.nn.Linear(in_channels, out_channels)

            def forward(self, x, graph, edge_attr=None):
                return combine_user_messages(self.lin(x), edge_attr), edge_attr
    '''))
    out = _train([*TINY, "model.layer._target_=userlayers.BrokenLayer"], tmp_path)
    assert out.returncode != 0
    assert "Traceback" in out.stderr, out.stderr
    assert "combine_user_messages" in out.stderr, out.stderr
    assert "TypeError" in out.stderr


def test_index_error_in_a_user_layer_constructor_gives_the_full_traceback(tmp_path):
    (tmp_path / "userlayers.py").write_text(textwrap.dedent('''
        import torch

        def pick_user_widths(widths):
            return widths[5]  # a bug in the user's own code: IndexError

        class BrokenLayer(torch.nn.Module):
            def __init__(self, in_channels, out_channels, **kwargs):
                super().__init__()
                self.lin = torch.nn.Linear(in_channels, pick_user_widths([out_channels]))
    '''))
    out = _train([*TINY, "model.layer._target_=userlayers.BrokenLayer"], tmp_path)
    assert out.returncode != 0
    assert "Traceback" in out.stderr, out.stderr
    assert "pick_user_widths" in out.stderr and "IndexError" in out.stderr, out.stderr


def test_dataset_that_cannot_be_downloaded_is_one_line(tmp_path):
    # Python imports sitecustomize from PYTHONPATH at start-up: name resolution fails as it does offline.
    (tmp_path / "sitecustomize.py").write_text(textwrap.dedent('''
        import socket

        def _no_dns(*args, **kwargs):
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

        socket.getaddrinfo = _no_dns
    '''))
    shared = tmp_path / "shared"
    shared.mkdir()
    out = _train(["data=mutag", "model=gin", "trainer.max_epochs=1", "logger=none"], tmp_path,
                 GNNLAB_SHARED_DATA=str(shared))
    assert out.returncode != 0
    lines = [line for line in _lines(out.stderr) if not line.startswith("Downloading ")]
    assert len(lines) == 1, out.stderr
    for part in ("DatasetUnavailableError", "MUTAG", str(tmp_path / "data"), str(shared / "TUDataset/MUTAG/raw"),
                 "GNNLAB_SHARED_DATA", "name resolution"):
        assert part in lines[0], part


def test_unknown_monitored_metric_is_one_line(tmp_path):
    """Errors raised by a task's constructor are configuration errors, reported in one line."""
    out = _train([*TINY, "+task.monitor=not_a_metric"], tmp_path)
    assert out.returncode != 0
    errors = [line for line in _lines(out.stderr) if "error" in line.lower()]
    assert len(errors) == 1 and "ConfigError" in errors[0] and "not_a_metric" in errors[0], out.stderr
    assert "Traceback" not in out.stderr


def test_resume_of_a_missing_folder_is_one_line(tmp_path):
    out = _train([*TINY, f"trainer.resume={tmp_path / 'no_such_run'}"], tmp_path)
    assert out.returncode == 1
    lines = _lines(out.stderr)
    assert len(lines) == 1 and "no_such_run" in lines[0] and "no such run folder" in lines[0], out.stderr
    assert not (tmp_path / "no_such_run").exists()


def test_help_names_the_app_and_describes_every_config_group(tmp_path):
    out = _train(["--help"], tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    text = out.stdout
    assert text.startswith("gnnlab-train: ") and "powered by Hydra" not in text
    listing = text.split("== Options of each group ==")[0].splitlines()[3:]
    described = {line.split()[0] for line in listing if line.strip()}
    conf = REPO / "conf"
    groups = {p.name for p in conf.iterdir() if p.is_dir() and p.name != "hydra"}
    groups |= {f"model/{p.name}" for p in (conf / "model").iterdir() if p.is_dir() and p.name != "base"}
    assert groups <= described, sorted(groups - described)
    assert "model/conv: " in text and "experiment/planetoid: " in text  # the options follow
