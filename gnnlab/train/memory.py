"""Returning freed heap memory to the operating system during long runs.

``gnnlab-train`` raises glibc's mmap and trim thresholds (see :mod:`gnnlab.cli`) so the large
per-batch temporaries are served from the heap instead of fresh, page-faulted mappings. The price
is fragmentation: batches of varying size leave free holes the heap never gives back, and the
resident size creeps up by hundreds of MB per epoch (measured: 0.8 GB to 2.0 GB over 300 GCN steps
on Peptides-sized batches). ``malloc_trim(0)`` hands every whole free page back (the heap keeps
its layout, so later allocations reuse the addresses); called every few dozen steps it holds the
resident size flat (0.40 to 0.48 GB in the same loop) at the cost of re-faulting those pages once.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import platform

__all__ = ["release_free_memory"]

_TRIM = None


def _malloc_trim():
    global _TRIM
    if _TRIM is None:
        _TRIM = False
        if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
            try:
                _TRIM = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
            except (OSError, AttributeError):
                _TRIM = False
    return _TRIM


def release_free_memory() -> bool:
    """Give freed heap pages back to the OS (glibc ``malloc_trim(0)``); ``False`` where unavailable."""
    trim = _malloc_trim()
    if not trim:
        return False
    trim(0)
    return True
