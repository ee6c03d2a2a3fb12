"""Checkpoints that let a stopped run continue exactly: model, optimizer, scheduler, RNG states, epoch.

A checkpoint holds only tensors and plain Python values (dicts, lists, tuples, strings, numbers,
booleans, ``None``), so it loads with ``torch.load(weights_only=True)``: loading never runs code
stored in the file. It is written atomically (:func:`save_checkpoint`): never a partial one.
"""
from __future__ import annotations

import os
import pickle
import random
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gnnlab.errors import GnnlabError

__all__ = ["CheckpointError", "load_checkpoint", "rng_state", "save_checkpoint", "set_rng_state"]


class CheckpointError(GnnlabError, ValueError):
    """A checkpoint file cannot be used: truncated, corrupt, not written by gnnlab, or of another model.

    The message names the file and what to do about it.
    """


def rng_state(generator: torch.Generator | None = None) -> dict[str, Any]:
    """Capture python, numpy, torch (CPU and CUDA) and an optional data-loader generator's RNG state.

    Every state is stored as tensors and plain values, so it can be saved in a weights-only checkpoint.
    """
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    return {
        "python": {"version": version, "state": torch.tensor(internal, dtype=torch.int64), "gauss": gauss},
        "numpy": {"kind": str(kind), "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        "loader": generator.get_state() if generator is not None else None,
    }


def set_rng_state(state: dict[str, Any], generator: torch.Generator | None = None) -> None:
    """Restore what :func:`rng_state` captured."""
    py = state["python"]
    random.setstate((py["version"], tuple(int(v) for v in py["state"].tolist()), py["gauss"]))
    npy = state["numpy"]
    np.random.set_state((npy["kind"], npy["keys"].numpy().astype(np.uint32), npy["pos"], npy["has_gauss"],
                         npy["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    if generator is not None and state.get("loader") is not None:
        generator.set_state(state["loader"])


def _plain(value: Any, where: str) -> Any:
    """``value`` with numpy scalars turned into Python numbers; a TypeError for anything pickle would need."""
    if isinstance(value, np.generic):  # before the Python types: np.float64 is a float subclass
        return value.item()
    if value is None or isinstance(value, (torch.Tensor, torch.Size, bool, int, float, str, torch.dtype, torch.device)):
        return value
    if isinstance(value, dict):
        out = OrderedDict() if isinstance(value, OrderedDict) else {}
        for key, item in value.items():
            if not isinstance(key, (str, int)):
                raise TypeError(f"checkpoint entry {where!r} has a key of type {type(key).__name__}")
            out[key] = _plain(item, f"{where}.{key}" if where else str(key))
        if hasattr(value, "_metadata"):  # a module state_dict's per-module versions
            out._metadata = value._metadata
        return out
    if isinstance(value, (list, tuple)):
        items = [_plain(item, f"{where}[{i}]") for i, item in enumerate(value)]
        return items if isinstance(value, list) else tuple(items)
    raise TypeError(
        f"checkpoint entry {where!r} is a {type(value).__module__}.{type(value).__qualname__}: a checkpoint "
        f"holds only tensors and plain Python values, so that it loads with torch.load(weights_only=True)"
    )


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> None:
    """Write ``state`` durably and atomically.

    The state goes to ``<path>.tmp``, which is flushed and ``fsync``-ed, then renamed over ``path``
    (and the folder is ``fsync``-ed), so that neither a crash nor a power loss leaves a truncated
    checkpoint in place of a good one.

    Raises:
        TypeError: ``state`` holds a value that is neither a tensor nor a plain Python value (such a
            checkpoint could not be loaded with ``weights_only=True``); nothing is written.
    """
    state = _plain(state, "")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    try:
        folder = os.open(path.parent, os.O_RDONLY)
    except OSError:  # some platforms cannot open a folder; the rename is still atomic there
        return
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu",
                    required: Iterable[str] = ()) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (``torch.load(weights_only=True)``).

    Args:
        required: keys the checkpoint must have (e.g. ``"optimizer"`` to resume training).

    Raises:
        FileNotFoundError: with the path, when there is no checkpoint.
        CheckpointError: the file is truncated or corrupt, holds pickled objects (not written by
            this version of gnnlab), or lacks a ``required`` key; the message names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at '{path}'")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        reason = str(err).splitlines()
        detail = next((line.strip() for line in reason if "Unsupported global" in line), reason[0] if reason else "")
        raise CheckpointError(
            f"checkpoint {path} holds pickled Python objects, which gnnlab does not load (it was not written by "
            f"this version of gnnlab; {detail}). Start a new run instead of resuming from it"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as err:
        raise CheckpointError(
            f"checkpoint {path} is truncated or corrupt ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}). "
            f"Delete it and start a new run, or resume from a copy of the run folder that has a complete checkpoint"
        ) from None
    missing = [key for key in required if not isinstance(state, dict) or key not in state]
    if missing:
        raise CheckpointError(
            f"checkpoint {path} is not a gnnlab training checkpoint: it lacks {', '.join(map(repr, missing))}. "
            f"Resume from a run folder of gnnlab-train (its checkpoints/last.ckpt)"
        )
    return state
