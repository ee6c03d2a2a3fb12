"""The command line's batch callback gives freed heap pages back to the OS (glibc); the Trainer runs its
batch callbacks before every batch; importing gnnlab changes no process state."""
from __future__ import annotations

import json
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


_PROCESS_STATE = """
import json, logging, os, random, signal, sys, warnings
import numpy as np, torch

def state():
    return {
        "environment": dict(os.environ),
        "sys.path": list(sys.path),
        "cwd": os.getcwd(),
        "warning filters": [repr(f) for f in warnings.filters],
        "root logger": [logging.root.level, [repr(h) for h in logging.root.handlers]],
        "excepthook": repr(sys.excepthook),
        "signal handlers": [repr(signal.getsignal(s)) for s in (signal.SIGINT, signal.SIGTERM)],
        "numpy": [np.geterr(), repr(np.get_printoptions())],
        "random states": [random.getstate()[1][:8], np.random.get_state()[1][:8].tolist(),
                          torch.random.get_rng_state()[:64].tolist()],
        "torch flags": [str(torch.get_default_dtype()), str(torch.get_default_device()), torch.get_num_threads(),
                        torch.get_num_interop_threads(), torch.are_deterministic_algorithms_enabled(),
                        torch.is_grad_enabled(), torch.is_anomaly_enabled(), torch.is_inference_mode_enabled(),
                        torch.get_float32_matmul_precision(), torch.backends.cudnn.benchmark,
                        torch.backends.cudnn.deterministic, torch.backends.cudnn.allow_tf32,
                        torch.backends.cuda.matmul.allow_tf32, torch.backends.mkldnn.enabled],
    }
"""


def test_importing_gnnlab_changes_no_process_state():
    """Importing any module of gnnlab, the command line's included (its settings apply when a command runs),
    leaves the process as it was: environment (allocator settings included), import path, warning and
    logging setup, signal handlers, random states and torch's global flags."""
    import subprocess
    import sys

    # The third-party libraries first (scikit-learn sets KMP_* variables, torch TORCHINDUCTOR_CACHE_DIR).
    code = _PROCESS_STATE + """
import importlib, importlib.util, pkgutil
import torch_geometric, sklearn.metrics, hydra, omegaconf
importlib.util.find_spec("ogb") and __import__("ogb")
before = state()
import gnnlab
names = [m.name for m in pkgutil.walk_packages(gnnlab.__path__, "gnnlab.") if not m.name.endswith("__main__")]
for name in names:
    importlib.import_module(name)
after = state()
changed = {key: [before[key], after[key]] for key in before if before[key] != after[key]}
if "environment" in changed:
    changed["environment"] = sorted(set(before["environment"].items()) ^ set(after["environment"].items()))
print(json.dumps({"modules": names, "changed": changed}, default=str))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert {"gnnlab.ops._loader", "gnnlab.nn.conv.gcn", "gnnlab.data.zinc", "gnnlab.cli"} <= set(result["modules"])
    assert result["changed"] == {}
