"""Run folders: a new, unique folder per run, created exclusively; a resumed run keeps its own.

``conf/hydra/default.yaml`` sets ``hydra.run.dir`` and ``hydra.sweep.dir`` through the resolver
``gnnlab.run_dir`` (registered by :func:`register_resolvers`, which ``gnnlab-train`` calls before
Hydra composes the config). Two runs started in the same second with the same config get
``<name>`` and ``<name>-1`` instead of sharing one folder and overwriting each other's files.
"""
from __future__ import annotations

import itertools
import os
import tempfile
from pathlib import Path

from omegaconf import OmegaConf

from gnnlab.errors import ConfigError

__all__ = ["RUN_DIR_RESOLVER", "CONFIG_SUBDIR_RESOLVER", "register_resolvers", "resume_config_subdir",
           "run_dir", "unique_dir"]

RUN_DIR_RESOLVER = "gnnlab.run_dir"
CONFIG_SUBDIR_RESOLVER = "gnnlab.config_subdir"


def unique_dir(path: str | os.PathLike) -> Path:
    """Create and return a new folder ``path``, or ``path-1``, ``path-2``, ... (the first that is free).

    Each candidate is created with ``os.mkdir``, which fails when the folder exists, so two processes
    never get the same folder even when they ask at the same moment. Parent folders are created.
    """
    base = Path(path)
    base.parent.mkdir(parents=True, exist_ok=True)
    for n in itertools.count():
        candidate = base if n == 0 else base.with_name(f"{base.name}-{n}")
        try:
            os.mkdir(candidate)
        except FileExistsError:
            continue
        return candidate
    raise AssertionError("unreachable")


def run_dir(template: str, resume: str | None = None) -> str:
    """The folder of a run: the folder being resumed when ``resume`` is set, else a new :func:`unique_dir`.

    In a process of rank > 0 of a ``torchrun`` launch (``RANK`` set), which writes nothing of the run's own
    (rank 0 does), a new temporary folder for Hydra's files instead, so that the processes never race for
    run folders.

    Raises:
        ConfigError: ``resume`` is not an existing folder.
    """
    if resume:
        path = Path(str(resume)).expanduser()
        if not path.is_dir():
            raise ConfigError(f"trainer.resume={resume}: no such run folder")
        return str(path.resolve())
    rank = int(os.environ.get("RANK", "0"))
    if rank > 0:
        return tempfile.mkdtemp(prefix=f"gnnlab-rank{rank}-")
    return str(unique_dir(template))


def resume_config_subdir(resume: str | None, subdir: str = ".hydra") -> str | None:
    """Hydra's ``output_subdir``: ``subdir`` for a new run; none for a resumed one, whose folder keeps the
    config it was started with (``.hydra/config.yaml``, read back on every resume)."""
    return None if resume else subdir


def register_resolvers() -> None:
    """Register ``gnnlab.run_dir`` and ``gnnlab.config_subdir`` with OmegaConf (once per process).

    Both are cached per config, as Hydra's ``now`` is: a run folder is created once, however often
    ``hydra.run.dir`` is read, and every job of a multirun shares its sweep folder.
    """
    if not OmegaConf.has_resolver(RUN_DIR_RESOLVER):
        OmegaConf.register_new_resolver(RUN_DIR_RESOLVER, run_dir, use_cache=True)
    if not OmegaConf.has_resolver(CONFIG_SUBDIR_RESOLVER):
        OmegaConf.register_new_resolver(CONFIG_SUBDIR_RESOLVER, resume_config_subdir, use_cache=True)
