"""Command-line entry points.

``gnnlab-train`` (also ``python -m gnnlab.train``): Hydra app over the configs in ``conf/``.
``gnnlab-table``: run an experiment over several seeds and write a markdown table beside the
published number stored in the experiment config.
"""
from __future__ import annotations

import logging
import os
import platform
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig


def config_dir() -> Path:
    """The Hydra config folder: ``gnnlab/conf`` in an installed wheel, ``<repo>/conf`` in a source tree."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "conf", here.parent / "conf"):
        if (candidate / "train.yaml").is_file():
            return candidate
    raise FileNotFoundError(f"gnnlab configs not found next to {here} (looked for conf/train.yaml)")


# Errors that come from a user's input (configs, data paths, values): reported as one line.
USER_ERRORS = (ValueError, KeyError, FileNotFoundError, PermissionError, IndexError, TypeError)


# glibc serves every allocation above its mmap threshold (at most 32 MB when set at run time) with a
# fresh mmap and returns it on free, so each E x F message tensor of a big batch is page-faulted in
# again: on 2 CPU cores a GatedGCN step on 128 CLUSTER graphs spent ~2/3 of its time in the kernel.
# These settings, read by glibc only at process start, keep freed memory for reuse.
_MALLOC_ENV = {
    "MALLOC_MMAP_THRESHOLD_": str(2**32),
    "MALLOC_TRIM_THRESHOLD_": str(2**32),
    "MALLOC_TOP_PAD_": str(2**30),
}


def _reexec_with_malloc_settings() -> None:
    """Restart the process once with :data:`_MALLOC_ENV` (glibc Linux only; opt out: GNNLAB_MALLOC_TUNING=0)."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return
    if os.environ.get("GNNLAB_MALLOC_TUNING", "1") == "0" or all(k in os.environ for k in _MALLOC_ENV):
        return
    env = {**_MALLOC_ENV, **os.environ, "GNNLAB_MALLOC_TUNING": "0"}
    argv = [sys.executable, "-m", "gnnlab.train", *sys.argv[1:]]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, argv, env)


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="train")
def _hydra_train(cfg: DictConfig) -> float:
    """Train one model; returns the best monitored validation metric (for Hydra sweepers)."""
    from gnnlab.train.run import train

    try:
        return train(cfg)
    except USER_ERRORS as err:
        if logging.getLogger().isEnabledFor(logging.DEBUG):
            raise
        print(f"gnnlab-train: error: {type(err).__name__}: {err}", file=sys.stderr)
        raise SystemExit(1) from None


def train_main() -> None:
    """Entry point of ``gnnlab-train`` and ``python -m gnnlab.train``: Hydra app over ``conf/train.yaml``."""
    _reexec_with_malloc_settings()
    _hydra_train()


def table_main(argv: list[str] | None = None) -> int:
    """Entry point of ``gnnlab-table`` (see :mod:`gnnlab.table`)."""
    from gnnlab.table import main

    return main(argv)
