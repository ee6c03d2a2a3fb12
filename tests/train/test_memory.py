"""Freed heap pages go back to the OS between batches (glibc), and the option is checked."""
from __future__ import annotations

import platform

import pytest

from gnnlab.train import Trainer
from gnnlab.train.memory import release_free_memory


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is a glibc function")
def test_release_returns_freed_heap_pages():
    import ctypes

    libc = ctypes.CDLL("libc.so.6")
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    libc.mallopt(-3, 2**30)  # M_MMAP_THRESHOLD: serve the blocks below from the heap
    libc.mallopt(-1, 2**30)  # M_TRIM_THRESHOLD: free() alone keeps them resident
    blocks = [libc.malloc(1 << 20) for _ in range(200)]
    for b in blocks:
        ctypes.memset(b, 1, 1 << 20)
    keep = blocks[-1]  # a live block at the top pins the heap: only trimming can return the rest
    for b in blocks[:-1]:
        libc.free(b)
    before = _rss_bytes()
    assert release_free_memory() is True
    after = _rss_bytes()
    libc.free(keep)
    libc.mallopt(-3, 128 * 1024)  # glibc's defaults again for the rest of the session
    libc.mallopt(-1, 128 * 1024)
    assert before - after > 100 * (1 << 20), (before, after)


def test_trainer_checks_the_option(tmp_path):
    with pytest.raises(ValueError, match="release_memory_every must be >= 1 or None"):
        Trainer(output_dir=str(tmp_path), release_memory_every=0)
    assert Trainer(output_dir=str(tmp_path), release_memory_every=None).release_memory_every is None
