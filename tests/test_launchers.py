"""Hydra launchers of ``gnnlab-train -m`` (conf/hydra/launcher): ``slurm`` (submitit) and ``local_parallel``
(joblib).

``local_parallel`` runs a real two-job sweep here. ``slurm`` is checked by composition and by the sbatch
script submitit writes from it, stopped before ``sbatch``: no Slurm cluster is available to the tests, and no
submission is faked.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf

from gnnlab.cli import config_dir
from tests.test_cli import TINY  # a tiny generated CLUSTER: no download, a few seconds per job

pytest.importorskip("hydra_plugins.hydra_joblib_launcher", reason="hydra-joblib-launcher not installed")
pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="hydra-submitit-launcher not installed")
submitit = pytest.importorskip("submitit")

REPO = Path(__file__).resolve().parent.parent
SLURM_TARGET = "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
JOBLIB_TARGET = "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"



def _compose(launcher: str, tmp_path: Path, *overrides: str):
    """The train config with Hydra's own, under ``hydra/launcher=<launcher>`` (the sweep folder in tmp_path)."""
    with initialize_config_dir(str(config_dir()), version_base="1.3"):
        return compose("train", overrides=[f"hydra/launcher={launcher}", f"hydra.sweep.dir={tmp_path / 'sweep'}",
                                           *overrides], return_hydra_config=True)


def test_launcher_files_are_in_the_config_dir():
    for name in ("slurm", "local_parallel"):
        assert (config_dir() / "hydra" / "launcher" / f"{name}.yaml").is_file()


def test_slurm_launcher_composes_on_submitit_slurm(tmp_path):
    cfg = _compose("slurm", tmp_path)
    assert cfg.hydra.runtime.choices["hydra/launcher"] == "slurm"
    launcher = cfg.hydra.launcher
    # Slurm, not submitit's local executor (submitit_local runs the jobs as processes of this machine).
    assert launcher._target_ == SLURM_TARGET
    assert not launcher._target_.endswith("LocalLauncher")
    assert launcher.timeout_min == 720
    assert launcher.cpus_per_task == 8
    assert launcher.gpus_per_node == 1
    assert launcher.tasks_per_node == 1 and launcher.nodes == 1
    assert launcher.mem_gb == 32
    assert launcher.partition is None
    assert launcher.array_parallelism == 32
    assert launcher.submitit_folder == f"{tmp_path / 'sweep'}/.submitit/%j"  # inside the sweep folder
    assert list(launcher.setup) == ["export OMP_NUM_THREADS=8"]
    # The plugin's other keys stay (qos, account, ...): the file builds on submitit_slurm.
    assert "qos" in launcher and "account" in launcher and launcher.max_num_timeout == 0


def test_slurm_launcher_keys_are_overridable(tmp_path):
    cfg = _compose("slurm", tmp_path, "hydra.launcher.partition=gpu", "hydra.launcher.timeout_min=30",
                   "hydra.launcher.cpus_per_task=4", "hydra.launcher.gpus_per_node=null",
                   "hydra.launcher.array_parallelism=4", "hydra.launcher.account=lab")
    launcher = cfg.hydra.launcher
    assert launcher.partition == "gpu" and launcher.timeout_min == 30 and launcher.cpus_per_task == 4
    assert launcher.gpus_per_node is None and launcher.array_parallelism == 4 and launcher.account == "lab"
    assert list(launcher.setup) == ["export OMP_NUM_THREADS=4"]  # follows cpus_per_task


def test_launcher_typos_are_rejected(tmp_path):
    """The plugins' configs are structured: a misspelt key fails at composition, not on the cluster."""
    with pytest.raises(Exception, match="partiton"):
        _compose("slurm", tmp_path, "hydra.launcher.partiton=gpu")
    with pytest.raises(Exception, match="timeout_min"):
        _compose("local_parallel", tmp_path, "hydra.launcher.timeout_min=5")


def test_local_parallel_launcher_composes_on_joblib(tmp_path):
    cfg = _compose("local_parallel", tmp_path)
    assert cfg.hydra.runtime.choices["hydra/launcher"] == "local_parallel"
    launcher = cfg.hydra.launcher
    assert launcher._target_ == JOBLIB_TARGET
    assert launcher.n_jobs == 2 and launcher.backend == "loky" and launcher.prefer == "processes"
    cfg = _compose("local_parallel", tmp_path, "hydra.launcher.n_jobs=3")
    assert cfg.hydra.launcher.n_jobs == 3


def _slurm_launcher(tmp_path: Path, *overrides: str):
    cfg = _compose("slurm", tmp_path, *overrides)
    launcher = instantiate(cfg.hydra.launcher)
    launcher.config = cfg  # what Launcher.setup stores; launch() reads only the config before submitting
    return launcher


@pytest.mark.skipif(shutil.which("srun") is not None, reason="a Slurm cluster is here: this would submit jobs")
def test_slurm_launcher_needs_slurm_and_never_runs_locally(tmp_path):
    """Without Slurm the launcher stops with submitit's error instead of running the jobs some other way."""
    launcher = _slurm_launcher(tmp_path)
    with pytest.raises(RuntimeError, match="srun"):
        launcher.launch([["seed=0"], ["seed=1"]], initial_job_idx=0)


class _StopBeforeSbatch(Exception):
    pass


def test_slurm_launcher_writes_the_sbatch_script_of_its_config(tmp_path, monkeypatch):
    """The launcher's real submission path, stopped where submitit would call ``sbatch``: the script it would
    submit carries the config's settings. Nothing is submitted, and no job runs."""
    from submitit.slurm.slurm import SlurmExecutor

    scripts = []

    def stop(self, command):  # SlurmExecutor._submit_command: writes the script, then runs sbatch on it
        scripts.append(self._make_submission_file_text(command, "uid"))
        raise _StopBeforeSbatch

    monkeypatch.setattr(SlurmExecutor, "affinity", classmethod(lambda cls: 2))  # as if srun were on PATH
    monkeypatch.setattr(SlurmExecutor, "_submit_command", stop)
    launcher = _slurm_launcher(tmp_path, "hydra.launcher.partition=gpu", "hydra.launcher.timeout_min=30")
    with pytest.raises(_StopBeforeSbatch):
        launcher.launch([["seed=0"], ["seed=1"]], initial_job_idx=0)
    (script,) = scripts
    lines = script.splitlines()
    for flag in ("--partition=gpu", "--time=30", "--cpus-per-task=8", "--gpus-per-node=1", "--ntasks-per-node=1",
                 "--nodes=1", "--mem=32GB", "--array=0-1%2"):
        assert f"#SBATCH {flag}" in lines, (flag, script)
    assert "export OMP_NUM_THREADS=8" in lines
    assert f"#SBATCH --output={tmp_path / 'sweep'}/.submitit/%A_%a/%A_%a_0_log.out" in lines
    assert (tmp_path / "sweep").is_dir()


def test_local_parallel_runs_two_jobs_in_their_own_folders(tmp_path):
    """``gnnlab-train -m hydra/launcher=local_parallel``: two seeds in two worker processes at once.

    The sweep folder is the default template (conf/hydra/default.yaml, under GNNLAB_ROOT), which the
    ``gnnlab.run_dir`` resolver creates exclusively: the workers must find the same one, not make their own.
    """
    env = dict(os.environ, WANDB_MODE="offline", WANDB_SILENT="true", GNNLAB_MALLOC_TUNING="0",
               GNNLAB_ROOT=str(tmp_path), OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    cmd = [sys.executable, "-m", "gnnlab.train", "-m", "hydra/launcher=local_parallel", "hydra.launcher.n_jobs=2",
           "seed=0,1", f"paths.data_dir={tmp_path / 'data'}", *TINY]
    out = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    log = out.stdout + out.stderr
    assert "Joblib.Parallel(n_jobs=2,backend=loky" in log, log[-3000:]
    (sweep,) = (tmp_path / "outputs" / "multiruns").iterdir()  # one sweep folder for both jobs
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir())
    assert [p.name for p in jobs] == ["0", "1"]
    seeds = []
    for job in jobs:
        assert (job / "results.json").is_file(), job
        seeds.append(OmegaConf.load(job / ".hydra" / "config.yaml").seed)
        assert "hydra/launcher=local_parallel" in (job / ".hydra" / "hydra.yaml").read_text()
    assert sorted(seeds) == [0, 1]
