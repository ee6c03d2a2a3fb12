"""Data-parallel training with ``torch.distributed``: one process per device, started by ``torchrun``.

``trainer.strategy=ddp`` turns it on; the same experiment file then runs on one process or on N::

    gnnlab-train experiment=benchgnn/gcn_zinc trainer.strategy=ddp                      # 1 process
    torchrun --standalone --nproc-per-node=4 -m gnnlab.train experiment=benchgnn/gcn_zinc trainer.strategy=ddp

What a run with N processes means:

- ``data.module.batch_size`` is per process: the global batch is N times it. Each epoch's order comes from
  ``torch.utils.data.DistributedSampler`` seeded by the run's seed and the epoch, so it is the same on every
  launch and after a resume, and 1 process with batch ``N * b`` sees the same global batches as N processes
  with batch ``b``.
- Gradients are averaged by ``DistributedDataParallel``; each process's loss is first scaled by its share of
  the global batch's scored rows (nodes, graphs, links), so the update is that of the global batch's mean loss
  even when the processes score different numbers of rows (node-level tasks). Losses that depend on the whole
  batch's statistics (the class-weighted loss of PATTERN/CLUSTER) and batch norm use each process's own part of
  the batch; ``trainer.sync_batchnorm=true`` synchronises batch norm on GPUs (torch's ``SyncBatchNorm`` has no
  CPU path).
- Validation and test are split over the processes without padding and every metric is computed on the
  gathered outputs of all of them: the same numbers as one process gives.
- Only rank 0 writes checkpoints, logs and ``results.json``, in its run folder; the other processes read the
  checkpoints from there (several machines need a shared file system for the run folder). A checkpoint holds the plain model's weights, so a
  run resumes on any number of processes. Dropout draws from a generator reseeded at each epoch from (seed,
  epoch, rank), so a resumed run continues as the uninterrupted one would have.

NCCL is the backend on GPUs, gloo on CPUs (``trainer.ddp_backend`` to choose).
"""
from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

from gnnlab.errors import ConfigError

__all__ = ["DataParallel", "process_rank", "world_size_from_env"]


def process_rank() -> int:
    """This process's rank as ``torchrun`` sets it (``RANK``); 0 outside a distributed launch."""
    return int(os.environ.get("RANK", "0"))


def world_size_from_env() -> int:
    """The number of processes ``torchrun`` started (``WORLD_SIZE``); 1 outside a distributed launch."""
    return int(os.environ.get("WORLD_SIZE", "1"))


class DataParallel:
    """The trainer's handle on a data-parallel run: process group, model wrapping, reductions.

    With one process (no ``torchrun``, or ``--nproc-per-node=1``) no process group is needed and every
    collective is the identity, so the code path is the same as with N.

    Args:
        backend: ``"auto"`` (NCCL for CUDA, gloo otherwise), ``"nccl"`` or ``"gloo"``.
        find_unused_parameters: passed to ``DistributedDataParallel`` (for models whose forward leaves some
            parameters without a gradient).
        sync_batchnorm: convert batch norm layers to ``SyncBatchNorm`` (CUDA only).
        timeout_s: how long a collective waits for the other processes before failing.
    """

    def __init__(self, backend: str = "auto", find_unused_parameters: bool = True, sync_batchnorm: bool = False,
                 timeout_s: float = 1800.0):
        if backend not in ("auto", "nccl", "gloo"):
            raise ConfigError(f"trainer.ddp_backend must be 'auto', 'nccl' or 'gloo', got {backend!r}")
        self.backend = backend
        self.find_unused_parameters = find_unused_parameters
        self.sync_batchnorm = sync_batchnorm
        self.timeout_s = timeout_s
        self.rank = process_rank()
        self.world_size = world_size_from_env()
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self._owns_group = False

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that writes checkpoints, logs and results."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        """More than one process: collectives communicate."""
        return self.world_size > 1

    def setup(self, device: torch.device) -> torch.device:
        """Join the process group (when there are several processes) and return this process's device.

        On CUDA each process takes the GPU of its ``LOCAL_RANK``.
        """
        if device.type == "cuda":
            if self.local_rank >= torch.cuda.device_count():
                raise ConfigError(f"LOCAL_RANK={self.local_rank} but torch sees {torch.cuda.device_count()} GPUs: "
                                  f"start at most one process per GPU (torchrun --nproc-per-node)")
            device = torch.device("cuda", self.local_rank)
            torch.cuda.set_device(device)
        if self.sync_batchnorm and device.type != "cuda":
            raise ConfigError("trainer.sync_batchnorm=true needs CUDA: torch's SyncBatchNorm has no CPU path")
        if self.active and not dist.is_initialized():
            backend = self.backend if self.backend != "auto" else ("nccl" if device.type == "cuda" else "gloo")
            if backend == "nccl" and device.type != "cuda":
                raise ConfigError("trainer.ddp_backend=nccl needs CUDA devices; use gloo on CPUs")
            for key in ("MASTER_ADDR", "MASTER_PORT"):
                if key not in os.environ:
                    raise ConfigError(f"WORLD_SIZE={self.world_size} but {key} is not set: start the processes "
                                      f"with torchrun")
            dist.init_process_group(backend, rank=self.rank, world_size=self.world_size,
                                    timeout=timedelta(seconds=self.timeout_s))
            self._owns_group = True
        if self.active and dist.get_world_size() != self.world_size:
            raise ConfigError(f"WORLD_SIZE={self.world_size} but the process group has {dist.get_world_size()} ranks")
        return device

    def wrap(self, model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
        """The module to train with: ``DistributedDataParallel(model)`` with several processes, else ``model``."""
        if not self.active:
            return model
        if self.sync_batchnorm:
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        ids = [device.index] if device.type == "cuda" else None
        return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids,
                                                         find_unused_parameters=self.find_unused_parameters)

    def sum(self, values: list[float], device: torch.device) -> list[float]:
        """``values`` summed over the processes (float64)."""
        if not self.active:
            return list(values)
        t = torch.tensor(values, dtype=torch.float64, device=device)
        dist.all_reduce(t)
        return t.tolist()

    def gather(self, obj: Any) -> list[Any]:
        """Every process's ``obj``, in rank order (picklable objects; tensors travel on the CPU)."""
        if not self.active:
            return [obj]
        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every process (picklable objects)."""
        if not self.active:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        """Wait for every process (e.g. until rank 0 has written a checkpoint the others read)."""
        if self.active:
            dist.barrier()

    def close(self) -> None:
        """Leave the process group if :meth:`setup` created it."""
        if self._owns_group and dist.is_initialized():
            dist.destroy_process_group()
        self._owns_group = False

    def epoch_seed(self, seed: int, epoch: int) -> int:
        """The torch seed for ``epoch`` on this rank: a function of (seed, epoch, rank) only."""
        return (seed * 1_000_003 + epoch * 10_007 + self.rank * 101) % (2**63 - 1)

    def __repr__(self) -> str:
        return f"DataParallel(rank={self.rank}, world_size={self.world_size}, backend={self.backend!r})"
