"""Loads the compiled extension ``gnnlab._C`` if it is there, and says which path the ops take.

Set ``GNNLAB_DISABLE_EXTENSION=1`` to force the plain-torch path even when the extension is built.

The path is chosen per block with :func:`backend_scope`, which enters a torch function mode
(:class:`OpPath`); ``gnnlab.ops`` itself keeps no mutable state. The mode lives on torch's own
per-thread mode stack, so a scope in one thread does not change another, and ``torch.compile``
guards on that stack: a compiled model recompiles when it runs inside another scope, and
``fullgraph=True`` holds. Outside any scope the ops take the extension when it is built. The mode
passes every torch call through unchanged, at about a microsecond of Python per call, which both
paths pay alike when a benchmark times each inside its scope.
"""
from __future__ import annotations

import contextlib
import os
import warnings

from torch.overrides import TorchFunctionMode, _get_current_function_mode_stack

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

_DEFAULT = "extension" if _HAS_EXTENSION else "torch"


class OpPath(TorchFunctionMode):
    """Torch function mode that selects the path of ``gnnlab.ops`` within a block (see :func:`backend_scope`)."""

    def __init__(self, name: str):
        super().__init__()
        self.name = name

    def __torch_function__(self, func, types, args=(), kwargs=None):
        return func(*args, **(kwargs or {}))


def extension_available() -> bool:
    """Whether the compiled extension ``gnnlab._C`` was imported."""
    return _HAS_EXTENSION


def extension_error() -> str | None:
    """Why the extension is not in use (``None`` when it is)."""
    return _EXTENSION_ERROR


def backend() -> str:
    """Name of the op path in effect here: ``"extension"`` (compiled ``gnnlab._C``) or ``"torch"`` (reference)."""
    for mode in reversed(_get_current_function_mode_stack()):
        if isinstance(mode, OpPath):
            return mode.name
    return _DEFAULT


def use_extension() -> bool:
    """Whether the public ops dispatch to the compiled extension here."""
    return backend() == "extension"


@contextlib.contextmanager
def backend_scope(name: str):
    """Select the op path, ``"extension"`` or ``"torch"``, for the duration of a block (nests; per thread).

    Raises:
        ValueError: unknown name.
        RuntimeError: ``"extension"`` requested but ``gnnlab._C`` is not built.
    """
    if name not in ("extension", "torch"):
        raise ValueError(f"unknown gnnlab.ops backend {name!r}; choose 'extension' or 'torch'")
    if name == "extension" and not _HAS_EXTENSION:
        raise RuntimeError(f"gnnlab._C is not available ({_EXTENSION_ERROR}); cannot select the extension backend")
    with OpPath(name):
        yield
