"""Every run gets its own folder, also when two runs start in the same second."""
from __future__ import annotations

import datetime
import os
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf

from gnnlab.train.rundir import register_resolvers, unique_dir
from tests.conf.test_configs import compose_cfg
from tests.train.test_run import TINY, _rows

REPO = Path(__file__).resolve().parents[2]


class _Frozen(datetime.datetime):
    """A clock stopped at one second, so that "started in the same second" is certain."""

    @classmethod
    def now(cls, tz=None):
        return cls(2030, 1, 2, 3, 4, 5)


def test_unique_dir_never_hands_out_a_folder_twice(tmp_path):
    with ThreadPoolExecutor(8) as pool:
        dirs = list(pool.map(lambda _: unique_dir(tmp_path / "runs" / "a"), range(16)))
    assert len(set(dirs)) == 16 and all(d.is_dir() for d in dirs)
    assert {d.name for d in dirs} == {"a", *(f"a-{i}" for i in range(1, 16))}


@pytest.mark.parametrize("key", ["hydra.run.dir", "hydra.sweep.dir"])
def test_same_second_same_config_gives_two_folders(tmp_path, monkeypatch, key):
    """The default templates of hydra.run.dir and hydra.sweep.dir, composed as two runs would."""
    register_resolvers()
    monkeypatch.setattr("hydra.core.utils.datetime", _Frozen)
    monkeypatch.setenv("GNNLAB_ROOT", str(tmp_path))  # the sweep folder reads it directly
    folders = []
    try:
        for _ in range(2):
            cfg = compose_cfg(TINY, tmp_path, facts=False)
            if key == "hydra.sweep.dir":
                HydraConfig.instance().cfg = None  # Hydra's sweeper reads it before setting HydraConfig
            folders.append(OmegaConf.select(cfg, key))
            assert OmegaConf.select(cfg, key) == folders[-1]  # read again: the same folder, no new one
    finally:
        HydraConfig.instance().cfg = None
    assert folders[0] != folders[1], folders
    assert folders[1] == folders[0] + "-1"
    assert "2030-01-02_03-04-05" in folders[0] and Path(folders[0]).is_relative_to(tmp_path)
    parent = Path(folders[0]).parent
    assert sorted(p.name for p in parent.iterdir()) == sorted(Path(f).name for f in folders)


def _frozen_clock(tmp_path: Path) -> Path:
    """A sitecustomize that stops the clock of Hydra's ``now`` at one second in the processes started with it."""
    site = tmp_path / "frozen_clock"
    site.mkdir()
    (site / "sitecustomize.py").write_text(textwrap.dedent('''
        import datetime

        import hydra.core.utils

        class _Frozen(datetime.datetime):
            @classmethod
            def now(cls, tz=None):
                return cls(2030, 1, 2, 3, 4, 5)

        hydra.core.utils.datetime = _Frozen
    '''))
    return site


@pytest.mark.slow
def test_two_concurrent_cli_runs_get_two_complete_folders(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    env = dict(os.environ, WANDB_MODE="offline", WANDB_SILENT="true",
               PYTHONPATH=os.pathsep.join([str(_frozen_clock(tmp_path)), str(REPO)]))
    cmd = [sys.executable, "-m", "gnnlab.train", *TINY, "trainer.max_epochs=1"]
    procs = [subprocess.Popen(cmd, cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
    runs = sorted((work / "outputs" / "runs").iterdir())
    assert [r.name for r in runs] == ["2030-01-02_03-04-05_gated_gcn_cluster",
                                     "2030-01-02_03-04-05_gated_gcn_cluster-1"], runs
    for run in runs:
        assert len(_rows(run / "metrics.csv")) == 1, run
        assert (run / "results.json").is_file() and (run / ".hydra" / "config.yaml").is_file()
        assert (run / "checkpoints" / "best.ckpt").is_file() and (run / "checkpoints" / "last.ckpt").is_file()


def test_data_is_built_under_a_lock_on_the_data_root(tmp_path, monkeypatch):
    """A run waits while another process holds the data root's lock (it may be processing the same files)."""
    import time

    from gnnlab.train import run

    hold = ("import sys, time; from filelock import FileLock; lock = FileLock(sys.argv[1]); lock.acquire(); "
            "print('held', flush=True); time.sleep(2); lock.release()")
    holder = subprocess.Popen([sys.executable, "-c", hold, str(tmp_path / ".gnnlab-data.lock")],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    start = time.monotonic()
    monkeypatch.setattr(run, "instantiate", lambda node: time.monotonic())
    built_at = run.load_data(OmegaConf.create({"paths": {"data_dir": str(tmp_path)}, "data": {"module": {}}}))
    assert holder.wait(timeout=60) == 0
    assert built_at - start > 1.0  # it waited for the other process to let go
