"""The command line's batch callback gives freed heap pages back to the OS (glibc); the Trainer runs its
batch callbacks before every batch."""
from __future__ import annotations

import platform

import pytest

from gnnlab.cli import ReleaseFreeMemory
from gnnlab.train import Trainer


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
    assert ReleaseFreeMemory().release() is True
    after = _rss_bytes()
    libc.free(keep)
    libc.mallopt(-3, 128 * 1024)  # glibc's defaults again for the rest of the session
    libc.mallopt(-1, 128 * 1024)
    assert before - after > 100 * (1 << 20), (before, after)


def test_callback_checks_its_option_and_trims_every_nth_batch(monkeypatch):
    with pytest.raises(ValueError, match="every must be a positive int"):
        ReleaseFreeMemory(0)
    callback = ReleaseFreeMemory(3)
    calls = []
    monkeypatch.setattr(callback, "release", lambda: calls.append(1) or True)
    for index in range(7):
        callback(index)
    assert len(calls) == 3  # batches 0, 3, 6


def test_trainer_runs_its_batch_callbacks(tmp_path):
    with pytest.raises(ValueError, match="batch callback must be callable"):
        Trainer(output_dir=str(tmp_path), batch_callbacks=[3])
    assert Trainer(output_dir=str(tmp_path)).batch_callbacks == ()


def test_importing_gnnlab_changes_no_process_state():
    """Importing the library (not the command line) leaves the environment and glibc untouched."""
    import os
    import subprocess
    import sys

    # The third-party libraries first (scikit-learn sets KMP_* variables, torch TORCHINDUCTOR_CACHE_DIR).
    code = ("import os, json, importlib.util; import torch, torch_geometric, sklearn.metrics, hydra, omegaconf; "
            "importlib.util.find_spec('ogb') and __import__('ogb'); before = dict(os.environ); "
            "import gnnlab, gnnlab.ops, gnnlab.nn, gnnlab.train, gnnlab.models, gnnlab.data, gnnlab.transforms; "
            "print(json.dumps(sorted(set(os.environ.items()) ^ set(before.items()))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
