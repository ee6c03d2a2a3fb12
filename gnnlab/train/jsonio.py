"""Strict JSON: every JSON file gnnlab writes goes through :func:`write_json`.

Python's ``json`` writes ``NaN`` and ``Infinity`` by default, which are not JSON and which strict
readers (``jq``, JavaScript, many dashboards) reject. Non-finite floats are written as ``null``.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any


def python_scalar(value: Any) -> Any:
    """A tensor or numpy scalar as a Python number (not ``tensor(0.5)``); anything else as it is."""
    item = getattr(value, "item", None)
    return item() if callable(item) and getattr(value, "ndim", None) == 0 else value


def finite_or_none(value: Any) -> Any:
    """``value`` with every non-finite float (also in nested dicts, lists, tuples) replaced by :obj:`None`.

    Tensor and numpy scalars become Python numbers first (:func:`python_scalar`).
    """
    value = python_scalar(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite_or_none(v) for key, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_none(v) for v in value]
    return value


def write_json(path: str | os.PathLike, obj: Any, indent: int | None = 2) -> Path:
    """Write ``obj`` after :func:`finite_or_none` as strict JSON to ``path`` (replaced in one step); return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(finite_or_none(obj), allow_nan=False, indent=indent) + "\n")
    os.replace(tmp, path)
    return path
