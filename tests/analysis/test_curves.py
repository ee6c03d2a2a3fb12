"""Learning curves from metrics.csv: the summary table, the PNG, and clear errors."""
from __future__ import annotations

import shlex

import pytest

from gnnlab.analysis.curves import plot_learning_curves, read_metrics
from gnnlab.cli import curves_main


def write_run(path, rows):
    path.mkdir(parents=True)
    lines = ["step,train/loss,val/accuracy,epoch,time/epoch_s"]
    lines += [f"{i + 1},{loss},{acc},{i + 1},{sec}" for i, (loss, acc, sec) in enumerate(rows)]
    (path / "metrics.csv").write_text("\n".join(lines) + "\n")


def test_summary_and_png(tmp_path):
    write_run(tmp_path / "a", [(1.0, 0.5, 10), (0.7, 0.8, 12), (0.6, 0.7, 14)])
    write_run(tmp_path / "b", [(2.0, 0.1, 30)])
    png, md = plot_learning_curves([tmp_path / "a", tmp_path / "b"], ["train/loss", "val/accuracy"], tmp_path / "c.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    lines = md.read_text().splitlines()
    # First the command writing both files, as the command line would spell it.
    assert lines[0] == (f"Command: `gnnlab-curves {tmp_path}/a {tmp_path}/b --metrics train/loss val/accuracy "
                        f"--out {tmp_path}/c.png`")
    # Run a: 3 epochs, 12 s mean; loss last 0.6 best (min) 0.6; accuracy last 0.7 best (max) 0.8.
    assert lines[4] == "| a | 3 | 12 | 0.6000 / 0.6000 | 0.7000 / 0.8000 |"
    assert lines[5] == "| b | 1 | 30 | 2.0000 / 2.0000 | 0.1000 / 0.1000 |"


def test_command_header_reruns_the_same_files(tmp_path, monkeypatch):
    """The header names labels and a title with spaces so that the shell hands them back unchanged."""
    write_run(tmp_path / "a", [(1.0, 0.5, 10), (0.7, 0.8, 12)])
    monkeypatch.chdir(tmp_path)
    _, md = plot_learning_curves(["a"], ["val/accuracy"], "c.png", labels=["run A"], title="Cora, 2 epochs")
    first = md.read_text()
    command = first.splitlines()[0]
    assert command == ("Command: `gnnlab-curves a --metrics val/accuracy --labels 'run A' --title 'Cora, 2 epochs' "
                       "--out c.png`")
    md.unlink()
    assert curves_main(shlex.split(command[len("Command: `gnnlab-curves "):-1])) == 0
    assert md.read_text() == first
    assert read_metrics(tmp_path / "a")[1]["val/accuracy"] == 0.8


def test_errors(tmp_path, capsys):
    with pytest.raises(FileNotFoundError, match="no metrics.csv"):
        read_metrics(tmp_path)
    write_run(tmp_path / "a", [(1.0, 0.5, 10)])
    with pytest.raises(ValueError, match="no run logged 'val/mae'"):
        plot_learning_curves([tmp_path / "a"], ["val/mae"], tmp_path / "c.png")
    assert curves_main([str(tmp_path / "a"), "--metrics", "val/mae", "--out", str(tmp_path / "c.png")]) == 1
    assert "no run logged 'val/mae'" in capsys.readouterr().err


def test_default_metrics_are_the_losses_and_the_monitored_metric(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.csv").write_text("step,train/loss,val/loss,val/accuracy,test/accuracy,epoch\n"
                                     "1,1.0,1.1,0.5,0.4,1\n2,0.8,0.9,0.6,0.55,2\n")
    (run / "results.json").write_text('{"best_epoch": 2, "monitor": "val/accuracy"}')
    png, md = plot_learning_curves([run], None, tmp_path / "c.png")
    lines = md.read_text().splitlines()
    assert "--metrics" not in lines[0]
    assert lines[2] == ("| run | epochs | s / epoch | train/loss (last / best) | val/loss (last / best) | "
                        "val/accuracy (last / best) | test/accuracy (last / best) |")
    assert curves_main([str(run), "--out", str(tmp_path / "d.png")]) == 0
    assert (tmp_path / "d.md").read_text().splitlines()[2] == lines[2]
