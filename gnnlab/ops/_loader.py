"""Loads the compiled extension ``gnnlab._C`` if it is there, and says which path the ops take.

Set ``GNNLAB_DISABLE_EXTENSION=1`` to force the plain-torch path even when the extension is built.

The path is the module global ``_active``, switched by :func:`set_backend` / :func:`backend_scope`: the
one piece of mutable module state in ``gnnlab.ops``, kept because it is the only form ``torch.compile``
handles. Dynamo reads a module global as a constant and guards on its value, so a compiled model
recompiles after a switch and ``fullgraph=True`` holds. A ``contextvars.ContextVar`` does not trace
(torch 2.13: "Dynamo does not know how to trace method `get` of class `ContextVar`"), so every op
call would break the graph; a ``threading.local`` attribute is read without a guard, so compiled code
would keep the path it was traced with after a switch. Passing the path explicitly would put an
argument on every op, layer and model.
"""
from __future__ import annotations

import contextlib
import os
import warnings

_EXTENSION_ERROR: str | None = None
_HAS_EXTENSION = False

if os.environ.get("GNNLAB_DISABLE_EXTENSION", "0") == "1":
    _EXTENSION_ERROR = "disabled by GNNLAB_DISABLE_EXTENSION=1"
else:
    try:
        import importlib

        import torch  # noqa: F401  (the extension's symbols need libtorch loaded first)

        # Importing the module runs its TORCH_LIBRARY initialisers: torch.ops.gnnlab.* appear.
        importlib.import_module("gnnlab._C")

        _HAS_EXTENSION = True
    except ImportError as err:  # not built, or built against another torch
        _EXTENSION_ERROR = str(err)
        warnings.warn(
            "gnnlab._C is not available; gnnlab.ops uses its plain-torch reference path "
            f"(slower, same results). Reason: {err}. Rebuild with `pip install --no-build-isolation -e .`.",
            RuntimeWarning,
            stacklevel=2,
        )

# Which path the public ops take: "extension" (when built) or "torch".
_active = "extension" if _HAS_EXTENSION else "torch"


def extension_available() -> bool:
    """Whether the compiled extension ``gnnlab._C`` was imported."""
    return _HAS_EXTENSION


def extension_error() -> str | None:
    """Why the extension is not in use (``None`` when it is)."""
    return _EXTENSION_ERROR


def backend() -> str:
    """Name of the active op path: ``"extension"`` (compiled ``gnnlab._C``) or ``"torch"`` (reference)."""
    return _active


def use_extension() -> bool:
    """Whether the public ops currently dispatch to the compiled extension."""
    return _active == "extension"


def set_backend(name: str) -> None:
    """Select the op path: ``"extension"`` or ``"torch"``.

    Raises:
        ValueError: unknown name.
        RuntimeError: ``"extension"`` requested but ``gnnlab._C`` is not built.
    """
    global _active
    if name not in ("extension", "torch"):
        raise ValueError(f"unknown gnnlab.ops backend {name!r}; choose 'extension' or 'torch'")
    if name == "extension" and not _HAS_EXTENSION:
        raise RuntimeError(f"gnnlab._C is not available ({_EXTENSION_ERROR}); cannot select the extension backend")
    _active = name


@contextlib.contextmanager
def backend_scope(name: str):
    """Context manager that selects an op path for the duration of a block."""
    previous = _active
    set_backend(name)
    try:
        yield
    finally:
        set_backend(previous)
