"""gnnlab-table: per-seed tables and multi-experiment summaries from finished sweeps (no training here)."""
from __future__ import annotations

import csv
import json
import shlex
import statistics

import pytest
from omegaconf import OmegaConf

from gnnlab.cli import table_main as main


def _sweep(root, values, cell, published=50.0, published_std=1.5, protocol=None, last=None):
    for seed, value in enumerate(values):
        run = root / str(seed)
        (run / ".hydra").mkdir(parents=True)
        benchmark = {"paper": "P", "table": "T1", "cell": cell, "metric": "test/acc", "published": published,
                     "published_std": published_std, "scale": 100}
        if protocol is not None:
            benchmark["protocol"] = protocol
        OmegaConf.save(OmegaConf.create({"seed": seed, "benchmark": benchmark}), run / ".hydra" / "config.yaml")
        results = {"best_epoch": seed + 1, "final": {"test/acc": value}}
        if last is not None:
            results["last"] = {"test/acc": last[seed]}
        (run / "results.json").write_text(json.dumps(results))
    return root


def test_table_from_one_sweep(tmp_path, capsys):
    sweep = _sweep(tmp_path / "a", [0.5, 0.52, 0.55], "A / x")
    out = tmp_path / "a.md"
    assert main(["--from-dir", str(sweep), "--out", str(out)]) == 0
    text = out.read_text()
    assert text.splitlines()[0] == f"Command: `gnnlab-table --from-dir {sweep} --out {out}`"
    mean, std = statistics.fmean([50, 52, 55]), statistics.stdev([50, 52, 55])
    # 52.33 is 2.33 above 50, more than the paper's std of 1.5.
    assert f"| {mean:.2f} ± {std:.2f} | 50.00 ± 1.50 | {mean - 50:+.2f} | 3 | not reproduced |" in text
    with open(out.with_suffix(".csv")) as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["seed", "test/acc", "best_epoch", "epochs_run", "run_dir"] and len(rows) == 4
    assert float(rows[2][1]) == pytest.approx(52.0)


def test_summary_of_several_sweeps(tmp_path):
    a = _sweep(tmp_path / "a", [0.5, 0.6], "A / x")
    b = _sweep(tmp_path / "b", [0.9, 0.8, 0.85], "B / x", published=88.0, published_std=None)
    out = tmp_path / "summary.md"
    assert main(["--from-dir", str(a), str(b), "--out", str(out)]) == 0
    lines = [line for line in out.read_text().splitlines() if line.startswith("| A") or line.startswith("| B")]
    assert lines[0].startswith("| A / x | P, T1 | 55.00 ± 7.07 | 50.00 ± 1.50 | +5.00 | 2 |")
    assert lines[1].startswith("| B / x | P, T1 | 85.00 ± 5.00 | 88.00 | -3.00 | 3 |")
    assert lines[0].endswith("| at the epoch of best validation score | not reproduced |")
    assert lines[1].endswith("| no published std |")
    with open(out.with_suffix(".csv")) as f:
        rows = list(csv.DictReader(f))
    assert [r["cell"] for r in rows] == ["A / x", "B / x"] and rows[1]["seeds"] == "3"
    assert [r["status"] for r in rows] == ["not reproduced", "no published std"]


def test_a_budget_override_marks_the_cell_and_is_printed(tmp_path):
    sweep = _sweep(tmp_path / "a", [0.5, 0.51], "A / x")
    for seed in (0, 1):
        OmegaConf.save(OmegaConf.create(["experiment=x/y", "trainer.max_epochs=3", f"seed={seed}", "logger=csv"]),
                       sweep / str(seed) / ".hydra" / "overrides.yaml")
    out = tmp_path / "a.md"
    assert main(["--from-dir", str(sweep), "--out", str(out)]) == 0
    text = out.read_text()
    assert "Reduced budget: `trainer.max_epochs=3`." in text
    assert "| 2 | reduced budget |" in text  # within the published std, but not the paper's budget
    summary = tmp_path / "s.md"
    other = _sweep(tmp_path / "b", [0.5, 0.51], "B / x")
    assert main(["--from-dir", str(sweep), str(other), "--out", str(summary)]) == 0
    text = summary.read_text()
    assert "A / x: reduced budget, `trainer.max_epochs=3`." in text
    assert "| reduced budget |" in text and "| reproduced |" in text


def test_status_within_the_published_std_or_a_stated_tolerance(tmp_path):
    from gnnlab.table import _status

    assert _status(51.4, {"published": 50.0, "published_std": 1.5}) == "reproduced"
    assert _status(48.4, {"published": 50.0, "published_std": 1.5}) == "not reproduced"
    assert _status(48.4, {"published": 50.0, "published_std": 1.5, "tolerance": 2.0}) == \
        "reproduced (stated tolerance ±2)"
    assert _status(47.9, {"published": 50.0, "published_std": 1.5, "tolerance": 2.0}) == \
        "not reproduced (stated tolerance ±2)"
    assert _status(48.4, {"published": 50.0}) == "no published std"
    assert _status(48.4, {}) == "—"


def test_missing_results_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["--from-dir", str(tmp_path / "empty"), str(tmp_path / "empty")]) == 2
    assert "results.json" in capsys.readouterr().err


def test_last_epoch_protocol(tmp_path):
    """``benchmark.protocol: last`` scores the final epoch's model (results.json ``last``), not the best one."""
    sweep = _sweep(tmp_path / "a", [0.5, 0.52], "A / x", protocol="last", last=[0.40, 0.44])
    out = tmp_path / "a.md"
    assert main(["--from-dir", str(sweep), "--out", str(out)]) == 0
    text = out.read_text()
    assert "of the final epoch's model" in text
    assert f"| {42.0:.2f} ± {statistics.stdev([40, 44]):.2f} |" in text


def test_last_protocol_without_last_metrics_is_a_clear_error(tmp_path, capsys):
    sweep = _sweep(tmp_path / "a", [0.5, 0.52], "A / x", protocol="last")
    assert main(["--from-dir", str(sweep), "--out", str(tmp_path / "a.md")]) == 2
    assert "no 'last' metrics" in capsys.readouterr().err


def test_unknown_protocol_is_a_clear_error(tmp_path, capsys):
    sweep = _sweep(tmp_path / "a", [0.5], "A / x", protocol="median")
    assert main(["--from-dir", str(sweep), "--out", str(tmp_path / "a.md")]) == 2
    assert "benchmark.protocol" in capsys.readouterr().err


def test_decimals_follow_the_published_value(tmp_path):
    """An MAE published as 1.372 is compared at 3 decimals (2 would hide the difference)."""
    sweep = _sweep(tmp_path / "a", [0.013708, 0.013905], "GCN / AQSOL", published=1.372, published_std=0.020)
    out = tmp_path / "a.md"
    assert main(["--from-dir", str(sweep), "--out", str(out)]) == 0
    text = out.read_text()
    assert "| 1.381 ± 0.014 | 1.372 ± 0.020 | +0.009 | 2 |" in text
    assert "| 0 | 1.371 | 1 | — |" in text


def test_row_without_a_published_value(tmp_path):
    """A row whose published value is unknown prints ours and a dash for the value and the difference."""
    sweep = _sweep(tmp_path / "a", [0.5, 0.52], "A / x", published=None, published_std=None)
    out = tmp_path / "a.md"
    assert main(["--from-dir", str(sweep), "--out", str(out)]) == 0
    assert f"| 51.00 ± {statistics.stdev([50, 52]):.2f} | — | — | 2 |" in out.read_text()
    summary = tmp_path / "summary.md"
    assert main(["--from-dir", str(sweep), str(sweep), "--out", str(summary)]) == 0
    assert "| A / x | P, T1 | 51.00 ± 1.41 | — | — | 2 |" in summary.read_text()


def _run(path, results, config_name="config_resolved.yaml", epochs=((0.7, 10.0), (0.8, 12.0))):
    """A single gnnlab-train run folder: its config, results.json and metrics.csv (val/acc, seconds per epoch)."""
    (path / config_name).parent.mkdir(parents=True)
    OmegaConf.save(OmegaConf.create({"seed": 0, "benchmark": {"metric": "test/acc"}}), path / config_name)
    (path / "results.json").write_text(json.dumps(results))
    rows = [f"{i + 1},{acc},{acc - 0.1},{i + 1},{sec}" for i, (acc, sec) in enumerate(epochs)]
    (path / "metrics.csv").write_text("\n".join(["step,val/acc,test/acc,epoch,time/epoch_s", *rows]) + "\n")
    return path


def test_single_runs(tmp_path, monkeypatch):
    """--runs: one row per run folder, the metric at the best-validation epoch and of the final epoch."""
    monkeypatch.chdir(tmp_path)
    _run(tmp_path / "runs" / "a", {"best_epoch": 2, "monitor": "val/acc", "best_value": 0.8, "epochs_run": 2,
                                   "final": {"test/acc": 0.7}, "last": {"test/acc": 0.65}})
    # A run from before results.json kept the final epoch's metrics: they come from metrics.csv's last row.
    _run(tmp_path / "runs" / "b", {"best_epoch": 1, "monitor": "val/acc", "best_value": 0.7, "epochs_run": 2,
                                   "final": {"test/acc": 0.6}}, config_name=".hydra/config.yaml")
    argv = ["--runs", "runs/a", "runs/b", "--labels", "run A", "run B", "--out", "results/runs.md"]
    assert main(argv) == 0
    text = (tmp_path / "results" / "runs.md").read_text()
    lines = text.splitlines()
    assert lines[0] == "Command: `gnnlab-table --runs runs/a runs/b --labels 'run A' 'run B' --out results/runs.md`"
    assert lines[4] == "| run A | `test/acc` | 2 | 11 | 2 (val/acc 0.8000) | 0.7000 | 0.6500 |"
    assert lines[5] == "| run B | `test/acc` | 2 | 11 | 1 (val/acc 0.7000) | 0.6000 | 0.7000 |"
    with open(tmp_path / "results" / "runs.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["run"] for r in rows] == ["run A", "run B"] and rows[1]["run_dir"] == "runs/b"
    # The header reruns to the same table.
    assert main(shlex.split(lines[0][len("Command: `gnnlab-table "):-1])) == 0
    assert (tmp_path / "results" / "runs.md").read_text() == text


def test_sweep_of_runs_without_hydra_folder(tmp_path):
    """A sweep whose runs keep only config_resolved.yaml (every run writes it) is read the same way."""
    sweep = _sweep(tmp_path / "a", [0.5, 0.52], "A / x")
    for run in sweep.iterdir():
        (run / ".hydra" / "config.yaml").rename(run / "config_resolved.yaml")
    out = tmp_path / "a.md"
    assert main(["--from-dir", str(sweep), "--out", str(out)]) == 0
    assert f"| 51.00 ± {statistics.stdev([50, 52]):.2f} | 50.00 ± 1.50 |" in out.read_text()


def test_single_runs_errors(tmp_path, capsys):
    run = _run(tmp_path / "a", {"best_epoch": 1, "monitor": "val/acc", "best_value": 0.7, "final": {"test/acc": 0.6}})
    assert main(["--runs", str(run), "--labels", "A", "B", "--out", str(tmp_path / "t.md")]) == 2
    assert "2 labels for 1 runs" in capsys.readouterr().err
    assert main(["--runs", str(tmp_path), "--out", str(tmp_path / "t.md")]) == 2
    assert "no results.json" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--runs", str(run), "--from-dir", str(tmp_path)])


def test_the_published_cell_comes_from_the_benchmark_table(tmp_path):
    """A run of a shipped experiment whose config holds no published value is compared with its row in
    conf/table (planetoid/dagnn_cora: 84.4 ± 0.5, Liu, Gao & Ji)."""
    sweep = tmp_path / "s"
    for seed, value in enumerate([0.842, 0.848]):
        run = sweep / str(seed)
        (run / ".hydra").mkdir(parents=True)
        OmegaConf.save(OmegaConf.create({"seed": seed, "benchmark": {"metric": "test/accuracy", "scale": 100}}),
                       run / ".hydra" / "config.yaml")
        OmegaConf.save(OmegaConf.create(["experiment=planetoid/dagnn_cora", f"seed={seed}"]),
                       run / ".hydra" / "overrides.yaml")
        (run / "results.json").write_text(json.dumps({"best_epoch": 1, "final": {"test/accuracy": value}}))
    out = tmp_path / "t.md"
    assert main(["--from-dir", str(sweep), "--out", str(out)]) == 0
    text = out.read_text()
    assert "# DAGNN / Cora — Liu, Gao & Ji, KDD 2020" in text and "| 84.50 ± 0.42 | 84.40 ± 0.50 | +0.10 | 2 | reproduced |" in text


def test_one_seed_has_no_std(tmp_path):
    """A sample std needs two seeds: one seed's cell says so instead of printing nan."""
    a = _sweep(tmp_path / "a", [0.5], "A / x")
    b = _sweep(tmp_path / "b", [0.9, 0.8], "B / x")
    out = tmp_path / "summary.md"
    assert main(["--from-dir", str(a), str(b), "--out", str(out)]) == 0
    text = out.read_text()
    assert "nan" not in text
    assert "| A / x | P, T1 | 50.00 (one seed, no std) | 50.00 ± 1.50 | +0.00 | 1 |" in text
    with open(out.with_suffix(".csv")) as f:
        rows = list(csv.DictReader(f))
    assert rows[0]["std"] == "" and float(rows[1]["std"]) == pytest.approx(statistics.stdev([90, 80]), abs=1e-3)
    single = tmp_path / "a.md"
    assert main(["--from-dir", str(a), "--out", str(single)]) == 0
    assert "| 50.00 (one seed, no std) |" in single.read_text()
