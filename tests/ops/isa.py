"""Choosing the compiled CPU kernel variant in a test."""
from __future__ import annotations

import contextlib
import os


@contextlib.contextmanager
def cpu_isa(name):
    """Force the CPU kernel variant (``GNNLAB_CPU_ISA``); ``auto`` lets the kernel choose."""
    old = os.environ.pop("GNNLAB_CPU_ISA", None)
    if name != "auto":
        os.environ["GNNLAB_CPU_ISA"] = name
    try:
        yield
    finally:
        os.environ.pop("GNNLAB_CPU_ISA", None)
        if old is not None:
            os.environ["GNNLAB_CPU_ISA"] = old
