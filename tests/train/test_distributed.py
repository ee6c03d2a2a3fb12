"""Data-parallel training (trainer.strategy=ddp) with 2 gloo processes on the CPU, started by torchrun."""
from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from gnnlab.data import DataModule
from gnnlab.errors import ConfigError
from gnnlab.train import Trainer
from gnnlab.train.checkpoint import load_checkpoint

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent


def _env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", GNNLAB_MALLOC_TUNING="0", WANDB_MODE="offline", GNNLAB_ROOT=str(tmp_path))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    return env


def _torchrun(n: int, *args: str) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={n}", *args]


def _one_and_two(tmp_path: Path, batches: tuple[int, int], *mode: str) -> tuple[dict, dict]:
    """3 epochs of ``ddp_worker.py`` on 1 process with the global batch ``batches[0]`` and on 2 with
    ``batches[1]`` each: what rank 0 saved of each (weights, metrics)."""
    runs = []
    for n, batch in zip((1, 2), batches):
        out = tmp_path / f"{'_'.join(mode) or 'graphs'}{n}.pt"
        proc = subprocess.run(_torchrun(n, str(HERE / "ddp_worker.py"), str(out), str(batch), "3",
                                        str(tmp_path / f"run{n}"), *mode),
                              env=_env(tmp_path), capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        runs.append(torch.load(out))
    assert [r["world_size"] for r in runs] == [1, 2]
    return runs[0], runs[1]


def _assert_same_run(one: dict, two: dict, rel: float = 1e-6, abs: float = 1e-7) -> None:
    """The same weights (to 1e-5) and, computed on the outputs gathered from both processes, the same metrics."""
    for key, value in one["params"].items():
        torch.testing.assert_close(two["params"][key], value, rtol=1e-5, atol=1e-6, msg=key)
    for metrics in ("last", "final"):
        assert one[metrics].keys() == two[metrics].keys()
        for key, value in one[metrics].items():
            assert two[metrics][key] == pytest.approx(value, rel=rel, abs=abs), (metrics, key)


def _worker(name: str):
    sys.path.insert(0, str(HERE))
    try:
        import ddp_worker
    finally:
        sys.path.remove(str(HERE))
    return getattr(ddp_worker, name)


def test_two_processes_reach_the_parameters_of_one_process_with_the_global_batch(tmp_path):
    """Graphs of different sizes: the processes score different numbers of nodes in each step, so this also
    checks that each process's loss is weighted by its share of the global batch."""
    one, two = _one_and_two(tmp_path, (8, 4))
    _assert_same_run(one, two)
    # Training moved the weights: the comparison is not between two untouched initialisations.
    torch.manual_seed(0)
    init = _worker("Net")().state_dict()
    assert max((one["params"][k] - init[k]).abs().max().item() for k in init) > 1e-2


def test_sampled_training_on_two_processes_reaches_the_parameters_of_one_process(tmp_path):
    """Neighbour-sampled node classification (every neighbour, so a batch is a function of its seeds): 2
    processes with 5 seeds per batch against 1 with 10, 3 epochs; evaluation is layer-wise on the whole
    graph, each process scoring its share of the split."""
    _assert_same_run(*_one_and_two(tmp_path, (10, 5), "sampled"))


def test_link_prediction_on_two_processes_reaches_the_parameters_of_one_process(tmp_path):
    """NCN with target-link removal: 2 processes with 24 positives per step against 1 with 48 (the last global
    batch is partial, so the processes' shares differ), 3 epochs; val/test split over the processes."""
    one, two = _one_and_two(tmp_path, (48, 24), "link")
    assert {"val/hits@10", "val/auc", "val/loss"} <= one["last"].keys()
    _assert_same_run(one, two, rel=1e-5, abs=1e-6)
    init = _worker("link")(48)[1].state_dict()
    assert max((one["params"][k] - init[k]).abs().max().item() for k in init) > 1e-2


def test_the_link_distributed_loader_shares_each_global_batch_and_split_once():
    datamodule, _ = _worker("link")(10)
    n = datamodule.split.train_pos.size(1)
    for epoch in (0, 1):
        whole = list(datamodule.distributed_loader("train", 0, 1, epoch))
        parts = [list(datamodule.distributed_loader("train", r, 3, epoch)) for r in range(3)]
        # 1 process with batch 30 and 3 with batch 10: the same global batches, each hidden in full on every process.
        wide = list(type(datamodule)(datamodule.split, batch_size=30, seed=5, drop_last=False)
                    .distributed_loader("train", 0, 1, epoch))
        assert len(wide) == len(parts[0]) == len(parts[2]) == -(-n // 30)
        for step, batch in enumerate(wide):
            shares = [p[step] for p in parts]
            assert torch.equal(torch.cat([b.pos for b in shares], 1), batch.pos)
            assert torch.equal(torch.cat([b.neg for b in shares], 1), batch.neg)
            assert all(torch.equal(b.hidden, batch.pos) for b in shares) and batch.hidden is None
        assert sum(b.pos.size(1) for b in whole) == n
    # Another epoch, another order; the same epoch, the same order.
    first = lambda e: next(iter(datamodule.distributed_loader("train", 0, 2, e))).pos  # noqa: E731
    assert torch.equal(first(4), first(4)) and not torch.equal(first(4), first(5))
    for split in ("val", "test"):
        (whole,) = datamodule.loader(split)
        shares = [datamodule.distributed_loader(split, r, 3)[0] for r in range(3)]
        assert torch.equal(torch.cat([b.pos for b in shares], 1), whole.pos)
        assert torch.equal(torch.cat([b.neg for b in shares], 1), whole.neg)
        assert all(b.totals == (whole.pos.size(1), whole.neg.size(1)) for b in shares)
    with pytest.raises(ConfigError, match="rank 3"):
        datamodule.distributed_loader("val", 3, 3)
    with pytest.raises(ConfigError, match="fewer than one global batch"):
        type(datamodule)(datamodule.split, batch_size=n // 2, seed=5).distributed_loader("train", 0, 3)


def test_the_sampled_distributed_loader_shares_seeds_and_scored_nodes_once():
    from gnnlab.data import SampledNodeDataModule

    one_graph = _worker("one_graph")

    def module(batch):
        return SampledNodeDataModule.from_data(one_graph(), [2, 2], batch_size=batch, eval_batch_size=8,
                                               engine="gnnlab", seed=3)

    dm = module(4)
    data = dm.data

    def seeds(loader):
        return [b.n_id[: b.batch_size].tolist() for b in loader]

    parts = [seeds(dm.distributed_loader("train", r, 2, epoch=1)) for r in range(2)]
    one = seeds(module(8).distributed_loader("train", 0, 1, epoch=1))
    assert [sorted(a + b) for a, b in zip(*parts)] == [sorted(batch) for batch in one]  # batch by batch
    assert sorted(sum(parts[0] + parts[1], [])) == data.train_mask.nonzero().view(-1).tolist()
    assert parts == [seeds(dm.distributed_loader("train", r, 2, epoch=1)) for r in range(2)]  # every launch
    assert parts != [seeds(dm.distributed_loader("train", r, 2, epoch=2)) for r in range(2)]  # every epoch
    for split in ("val", "test"):
        shares = [dm.distributed_loader(split, r, 3)[0].data[f"{split}_mask"] for r in range(3)]
        assert torch.equal(sum(s.long() for s in shares), data[f"{split}_mask"].long())  # each node once
        assert dm.distributed_loader(split, 1, 3)[0] is dm.distributed_loader(split, 1, 3)[0]  # one whole-graph pass
    sampled_eval = SampledNodeDataModule.from_data(one_graph(), [2, 2], batch_size=4, eval_batch_size=8,
                                                   engine="gnnlab", eval_mode="sampled")
    scored = [seeds(sampled_eval.distributed_loader("val", r, 2)) for r in range(2)]
    assert sorted(sum(scored[0] + scored[1], [])) == data.val_mask.nonzero().view(-1).tolist()
    with pytest.raises(ConfigError, match="rank 2"):
        dm.distributed_loader("train", 2, 2)


TINY = ["data.module.splits.num_train=16", "data.module.splits.num_val=6", "data.module.splits.num_test=6",
        "data.module.batch_size=4", "model.hidden_channels=8", "model.num_layers=2", "trainer.progress=false",
        "logger=csv", "trainer.strategy=ddp", "model.layer.dropout=0.3"]  # dropout: the RNG must resume too


def _epochs(run_dir: Path) -> list[int]:
    path = run_dir / "metrics.csv"
    if not path.is_file():
        return []
    with open(path) as f:
        return [int(row["epoch"]) for row in csv.DictReader(f) if row.get("epoch")]


def _only_run(root: Path) -> Path:
    runs = [p for p in (root / "outputs" / "runs").iterdir() if p.is_dir()]
    assert len(runs) == 1, f"one run folder expected (rank 0 writes it), found {runs}"
    return runs[0]


@pytest.mark.slow
def test_a_killed_ddp_run_resumes_where_it_stopped_and_ends_as_the_uninterrupted_run(tmp_path):
    env = _env(tmp_path / "full")
    full = subprocess.run(_torchrun(2, "-m", "gnnlab.train", *TINY, "trainer.max_epochs=4"), env=env,
                          capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert full.returncode == 0, full.stderr[-3000:]
    full_dir = _only_run(tmp_path / "full")
    assert _epochs(full_dir) == [1, 2, 3, 4]
    assert (full_dir / "results.json").is_file()

    # The same run, killed (SIGKILL to torchrun and both workers) once epoch 2 is logged.
    env = _env(tmp_path / "killed")
    proc = subprocess.Popen(_torchrun(2, "-m", "gnnlab.train", *TINY, "trainer.max_epochs=4"), env=env, cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 300
    run_dir = None
    while time.monotonic() < deadline and proc.poll() is None:
        runs = list((tmp_path / "killed" / "outputs" / "runs").glob("*")) if (tmp_path / "killed" / "outputs").exists() else []
        if runs and len(_epochs(runs[0])) >= 2:
            run_dir = runs[0]
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert run_dir is not None, "the run ended or timed out before epoch 2 was logged"
    assert not (run_dir / "results.json").exists()
    # A row is logged just before its epoch's checkpoint is written: a kill between the two leaves the
    # checkpoint one epoch behind metrics.csv, whose extra row the resume drops.
    stopped_at = load_checkpoint(run_dir / "checkpoints" / "last.ckpt")["epoch"]
    assert 1 <= stopped_at < 4

    resumed = subprocess.run(_torchrun(2, "-m", "gnnlab.train", f"trainer.resume={run_dir}", "trainer.max_epochs=4"),
                             env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert _epochs(run_dir) == [1, 2, 3, 4]
    a = load_checkpoint(full_dir / "checkpoints" / "last.ckpt")["model"]
    b = load_checkpoint(run_dir / "checkpoints" / "last.ckpt")["model"]
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=1e-5, atol=1e-6, msg=key)

    # The checkpoint holds the plain model's weights: the run continues on one process as well.
    single = subprocess.run([sys.executable, "-m", "gnnlab.train", f"trainer.resume={run_dir}", "trainer.max_epochs=5"],
                            env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert single.returncode == 0, single.stderr[-3000:]
    assert _epochs(run_dir) == [1, 2, 3, 4, 5]


def test_ddp_without_torchrun_is_one_process_and_refuses_data_it_cannot_split(tmp_path, monkeypatch):
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(key, raising=False)
    trainer = Trainer(max_epochs=1, output_dir=str(tmp_path), accelerator="cpu", strategy="ddp", progress=False)
    assert trainer.dist.world_size == 1 and trainer.is_main and not trainer.dist.active

    class NoSplit:
        def loader(self, split):
            return []

    with pytest.raises(ConfigError, match="cannot split its data over processes"):
        trainer._loader(NoSplit(), "train")
    from gnnlab.data import SampledLinkDataModule  # its parent's full-graph shares are switched off

    with pytest.raises(ConfigError, match="SampledLinkDataModule cannot split"):
        trainer._loader(object.__new__(SampledLinkDataModule), "train")
    with pytest.raises(ConfigError, match="trainer.strategy"):
        Trainer(strategy="horovod")
    with pytest.raises(ConfigError, match="SyncBatchNorm has no CPU path"):
        Trainer(accelerator="cpu", strategy="ddp", sync_batchnorm=True)


def test_the_distributed_loader_splits_each_split_once_and_shuffles_by_seed_and_epoch():
    from torch_geometric.data import Data

    graphs = [Data(x=torch.full((1, 1), float(i)), edge_index=torch.empty(2, 0, dtype=torch.long)) for i in range(10)]
    dm = DataModule({"train": graphs, "val": graphs[:7], "test": graphs[:3]}, batch_size=2, seed=3)

    def ids(split, rank, world, epoch=0):
        return [int(v) for b in dm.distributed_loader(split, rank, world, epoch) for v in b.x.view(-1)]

    assert sorted(ids("val", 0, 2) + ids("val", 1, 2)) == list(range(7))  # no padding outside training
    assert ids("test", 3, 4) == []
    parts = [ids("train", r, 2, epoch=1) for r in range(2)]
    assert sorted(parts[0] + parts[1]) == list(range(10))
    assert parts == [ids("train", r, 2, epoch=1) for r in range(2)]  # the same on every launch
    assert parts != [ids("train", r, 2, epoch=2) for r in range(2)]  # a new order each epoch
    # One process with twice the batch sees the union of the two processes' batches, batch by batch.
    one = [sorted(int(v) for v in b.x.view(-1)) for b in DataModule({"train": graphs, "val": graphs, "test": graphs},
                                                                     batch_size=4, seed=3).distributed_loader("train", 0, 1, 1)]
    two = [list(dm.distributed_loader("train", r, 2, 1)) for r in range(2)]
    assert one == [sorted(int(v) for b in pair for v in b.x.view(-1)) for pair in zip(*two)]
    with pytest.raises(ConfigError, match="rank 2"):
        dm.distributed_loader("train", 2, 2)
