"""gnnlab-table <benchmark>: table files, reuse of finished runs, resume, and the written table and plot."""
from __future__ import annotations

import csv
import json
import statistics
import sys

import pytest
from omegaconf import OmegaConf

from gnnlab.cli import table_main as main
from gnnlab.errors import ConfigError
from gnnlab.published import load_table, published_cell, tables_dir

ROW = {"experiment": "x/a", "cell": "A / x", "table": "Table 1", "published": 50.0, "published_std": 1.5}


def _table(tmp_path, rows=(ROW,), **extra):
    path = tmp_path / "bench.yaml"
    OmegaConf.save(OmegaConf.create({"title": "Bench", "paper": "P", "seeds": 2, "rows": list(rows), **extra}), path)
    return path


def _run(run_dir, seed, value, overrides, protocol="best"):
    (run_dir / ".hydra").mkdir(parents=True)
    benchmark = {"paper": "P", "metric": "test/acc", "scale": 100, "protocol": protocol}
    OmegaConf.save(OmegaConf.create({"seed": seed, "benchmark": benchmark}), run_dir / ".hydra" / "config.yaml")
    OmegaConf.save(OmegaConf.create([*overrides, f"seed={seed}"]), run_dir / ".hydra" / "overrides.yaml")
    (run_dir / "results.json").write_text(json.dumps({"best_epoch": 3, "final": {"test/acc": value},
                                                       "last": {"test/acc": value}}))


def test_every_shipped_table_loads_and_every_experiment_is_in_one():
    experiments = []
    for path in sorted(tables_dir().glob("*.yaml")):
        experiments += [row["experiment"] for row in load_table(path)["rows"]]
    shipped = sorted(str(p.relative_to(tables_dir().parent / "experiment").with_suffix(""))
                     for p in (tables_dir().parent / "experiment").rglob("*.yaml"))
    assert sorted(experiments) == shipped  # each experiment is a row of exactly one table
    cell = published_cell("planetoid/dagnn_cora")
    assert (cell["published"], cell["published_std"], cell["paper"]) == (84.4, 0.5, "Liu, Gao & Ji, KDD 2020")


@pytest.mark.parametrize("bad, message", [
    ({**ROW, "published": None}, "no note saying why"),
    ({k: v for k, v in ROW.items() if k != "cell"}, "has no 'cell'"),
    ({**ROW, "colour": 1}, "unknown keys"),
])
def test_a_malformed_table_is_a_clear_error(tmp_path, bad, message):
    with pytest.raises(ConfigError, match=message):
        load_table(_table(tmp_path, [bad]))


def test_unknown_benchmark_names_the_known_ones(capsys):
    assert main(["no_such_benchmark"]) == 2
    err = capsys.readouterr().err
    assert "no benchmark 'no_such_benchmark': known benchmarks are" in err and "benchgnn_aqsol" in err


def test_collects_finished_runs_and_writes_table_csv_and_plot(tmp_path):
    other = {**ROW, "experiment": "x/b", "cell": "B / x", "paper": "Q", "published": None, "note": "not in Q"}
    table = _table(tmp_path, [ROW, other, {**ROW, "experiment": "x/c", "cell": "C / x"}])
    root = tmp_path / "runs"
    for seed, value in enumerate([0.49, 0.515]):
        _run(root / "x/a" / str(seed), seed, value, ["experiment=x/a", "logger=csv"])
        _run(root / "x/b" / str(seed), seed, value + 0.2, ["experiment=x/b", "trainer.max_epochs=3"])
    out = tmp_path / "bench.md"
    # Everything is finished or, with --collect, not run: nothing is launched.
    assert main([str(table), "--sweep-dir", str(root), "--out", str(out), "--collect"]) == 0
    text = out.read_text()
    mean, std = statistics.fmean([49, 51.5]), statistics.stdev([49, 51.5])
    assert text.splitlines()[0] == f"Command: `gnnlab-table {table} --sweep-dir {root} --out {out} --collect`"
    assert f"| A / x | Table 1 | {mean:.2f} ± {std:.2f} | 50.00 ± 1.50 | {mean - 50:+.2f} | 2 |" in text
    assert text.count("| reproduced |") == 1
    assert "| B / x | Q, Table 1 |" in text and "| reduced budget |" in text and "- B / x: not in Q" in text
    assert "Reduced budget: `trainer.max_epochs=3`." in text
    assert "| C / x | Table 1 | not run | 50.0 ± 1.5 |" in text
    with open(out.with_suffix(".csv")) as f:
        cells = list(csv.DictReader(f))
    assert [c["status"] for c in cells] == ["reproduced", "reduced budget", "not run"]
    with open(tmp_path / "bench_seeds.csv") as f:
        assert len(list(csv.DictReader(f))) == 4
    assert out.with_suffix(".png").stat().st_size > 1000


def test_a_finished_run_with_other_overrides_is_not_reused(tmp_path, capsys):
    table = _table(tmp_path)
    _run(tmp_path / "runs/x/a/0", 0, 0.5, ["experiment=x/a", "trainer.max_epochs=3"])
    assert main([str(table), "--sweep-dir", str(tmp_path / "runs"), "--seeds", "1"]) == 2
    assert "was run with overrides" in capsys.readouterr().err


def test_only_missing_seeds_run_and_interrupted_runs_resume(tmp_path, monkeypatch):
    from gnnlab import benchmark_table, sweeps

    calls = []
    monkeypatch.setattr(sweeps, "run_command", calls.append)
    root = tmp_path / "runs"
    _run(root / "x/a/0", 0, 0.5, ["experiment=x/a"])
    (root / "x/a/2/checkpoints").mkdir(parents=True)  # seed 2 stopped after a checkpoint
    (root / "x/a/2/checkpoints/last.ckpt").write_bytes(b"")
    (root / "x/a/2/.hydra").mkdir()
    OmegaConf.save(OmegaConf.create(["experiment=x/a", "seed=2"]), root / "x/a/2/.hydra/overrides.yaml")
    (root / "x/a/3").mkdir()  # seed 3 stopped before writing anything: kept aside and run again
    benchmark_table.run_rows(load_table(_table(tmp_path)), root, seeds=4)
    assert calls[0][-1] == f"trainer.resume={root / 'x/a/2'}"
    assert calls[1][3:] == ["-m", "experiment=x/a", "seed=1,3", f"hydra.sweep.dir={root / 'x/a'}",
                            "hydra.sweep.subdir=${seed}"]
    assert len(calls) == 2 and list((root / "x/a").glob("3.incomplete-*"))


@pytest.mark.slow
@pytest.mark.shared_data
def test_a_small_table_runs_end_to_end(tmp_path, monkeypatch):
    """Two seeds of GCN Cora for 2 epochs through Hydra multirun; a second call runs nothing more."""
    monkeypatch.chdir(tmp_path)
    row = {"experiment": "planetoid/gcn_cora", "cell": "GCN / Cora", "table": "Table 2", "published": 81.5,
           "note": "no std"}
    table = _table(tmp_path, [row], overrides=["trainer.max_epochs=2", "logger=csv"])
    assert main([str(table), "--sweep-dir", "runs"]) == 0
    results = sorted(tmp_path.glob("runs/planetoid/gcn_cora/*/results.json"))
    assert [p.parent.name for p in results] == ["0", "1"]
    stamps = [p.stat().st_mtime_ns for p in results]
    assert main([str(table), "--sweep-dir", "runs"]) == 0
    assert [p.stat().st_mtime_ns for p in results] == stamps
    assert "| GCN / Cora | Table 2 |" in (tmp_path / "runs/bench.md").read_text()


def test_a_failing_row_does_not_stop_the_others(tmp_path, monkeypatch, capsys):
    from gnnlab import sweeps

    def call(cmd):
        if "experiment=x/b" in cmd:
            raise sweeps.RunFailed(cmd, 1, "DatasetUnavailableError: B is not in the data root")
        _run(tmp_path / "runs/x/a/0", 0, 0.5, ["experiment=x/a"])

    monkeypatch.setattr(sweeps, "run_command", call)
    table = _table(tmp_path, [{**ROW, "experiment": "x/b", "cell": "B / x"}, ROW])
    assert main([str(table), "--sweep-dir", str(tmp_path / "runs"), "--seeds", "1"]) == 1
    assert "runs failed for B / x" in capsys.readouterr().err
    text = (tmp_path / "runs/bench.md").read_text()
    assert "| B / x | Table 1 | run failed |" in text and "| A / x | Table 1 | 50.00 (one seed, no std) |" in text
    assert "- B / x: run failed: DatasetUnavailableError: B is not in the data root" in text


def test_a_row_that_fails_after_some_seeds_keeps_them_and_its_error(tmp_path, monkeypatch):
    from gnnlab import sweeps

    def call(cmd):  # seed 0 finishes, then the multirun fails on seed 1
        _run(tmp_path / "runs/x/a/0", 0, 0.5, ["experiment=x/a"])
        raise sweeps.RunFailed(cmd, 1, "RuntimeError: out of memory")

    monkeypatch.setattr(sweeps, "run_command", call)
    assert main([str(_table(tmp_path)), "--sweep-dir", str(tmp_path / "runs")]) == 1
    text = (tmp_path / "runs/bench.md").read_text()
    assert "| A / x | Table 1 | 50.00 (one seed, no std) |" in text and "| incomplete (1 of 2) |" in text
    assert "- A / x: run failed: RuntimeError: out of memory" in text


def test_a_failed_run_passes_its_stderr_through_and_keeps_its_error_line(capfd):
    """``run_command`` runs a real process: its stderr (a progress bar without newlines, then the error) reaches the
    console as it comes, and the exception carries the error line without the advice after ``;``."""
    from gnnlab.sweeps import RunFailed, run_command

    script = ("import sys; sys.stderr.write('epoch 1/2\\repoch 2/2\\n'); "
              "sys.stderr.write('gnnlab-train: error: DatasetUnavailableError: X is missing; to provide it: ...\\n'); "
              "sys.exit(3)")
    with pytest.raises(RunFailed) as err:
        run_command([sys.executable, "-c", script])
    assert err.value.reason == "DatasetUnavailableError: X is missing"
    assert "exit code 3" in str(err.value)
    assert "epoch 1/2\repoch 2/2" in capfd.readouterr().err
    run_command([sys.executable, "-c", "pass"])  # a run that succeeds raises nothing


@pytest.mark.parametrize("stderr, reason", [
    ("Traceback ...\nValueError: bad\n", "ValueError: bad"),  # no error line: the last line
    ("", None),
    ("a: error: first\nb: error: second; advice\n\n", "second"),
])
def test_failure_reason_is_the_last_error_line(stderr, reason):
    from gnnlab.sweeps import failure_reason

    assert failure_reason(stderr) == reason


def test_a_row_with_fewer_finished_seeds_is_incomplete_not_judged(tmp_path):
    table = _table(tmp_path)  # 2 seeds
    _run(tmp_path / "runs/x/a/0", 0, 0.5, ["experiment=x/a"])
    assert main([str(table), "--sweep-dir", str(tmp_path / "runs"), "--collect"]) == 0
    assert "| 1 | at the epoch of best validation score | incomplete (1 of 2) |" in (tmp_path / "runs/bench.md").read_text()


def test_rows_runs_only_the_named_rows_and_tabulates_every_finished_one(tmp_path, monkeypatch, capsys):
    from gnnlab import sweeps

    calls = []
    monkeypatch.setattr(sweeps, "run_command", calls.append)
    root = tmp_path / "runs"
    _run(root / "x/a/0", 0, 0.5, ["experiment=x/a"])  # finished earlier
    table = _table(tmp_path, [ROW, {**ROW, "experiment": "x/b", "cell": "B / x"}])
    assert main([str(table), "--sweep-dir", str(root), "--seeds", "1", "--rows", "x/b"]) == 0
    assert len(calls) == 1 and "experiment=x/b" in calls[0]
    text = (root / "bench.md").read_text()
    assert "| A / x | Table 1 | 50.00 (one seed, no std) |" in text and "| B / x | Table 1 | not run |" in text
    assert main([str(table), "--sweep-dir", str(root), "--rows", "x/c"]) == 2
    assert "--rows x/c: not a row" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["experiment=x/a", "--rows", "x/a"])


def test_a_launcher_choice_does_not_stop_finished_runs_from_being_reused(tmp_path, monkeypatch):
    """A run's .hydra/overrides.yaml leaves out Hydra's own overrides (hydra/launcher=..., hydra.launcher.*)."""
    from gnnlab import sweeps

    calls = []
    monkeypatch.setattr(sweeps, "run_command", calls.append)
    _run(tmp_path / "runs/x/a/0", 0, 0.5, ["experiment=x/a"])
    args = [str(_table(tmp_path)), "--sweep-dir", str(tmp_path / "runs"), "--seeds", "1", "hydra/launcher=local_parallel",
            "hydra.launcher.n_jobs=2"]
    assert main(args) == 0 and calls == []
