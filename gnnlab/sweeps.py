"""Running the seeds or folds of a table row: one command per run or multirun, the state of a run folder,
setting aside a run that stopped before its first checkpoint, and reusing a finished run only when it was
made with the overrides asked for now. Used by :mod:`gnnlab.benchmark_table` and :mod:`gnnlab.cross_validation`.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

from gnnlab.errors import ConfigError
from gnnlab.table import run_overrides


def run_state(run_dir: Path) -> str:
    """``finished`` (results.json), ``interrupted`` (a last checkpoint), ``empty`` or ``missing``."""
    if (run_dir / "results.json").is_file():
        return "finished"
    if (run_dir / "checkpoints" / "last.ckpt").is_file():
        return "interrupted"
    return "missing" if not run_dir.exists() else "empty"


def set_aside(run_dir: Path) -> None:
    """Rename a run folder that stopped before finishing to ``<name>.incomplete-<time>`` (kept, never deleted)."""
    run_dir.rename(run_dir.with_name(f"{run_dir.name}.incomplete-{time.strftime('%Y%m%d-%H%M%S')}"))


#: Overrides that do not change a run's result: ignored when deciding whether a finished run can be reused.
NOT_COMPARED = ("seed=", "hydra.", "hydra/", "logger=", "paths.", "trainer.progress=")


def check_same_overrides(run_dir: Path, wanted: list[str]) -> None:
    """A finished run is reused only when it was made with the overrides asked for now."""
    recorded = [o for o in run_overrides(run_dir) if not o.startswith(NOT_COMPARED)]
    if sorted(recorded) != sorted(o for o in wanted if not o.startswith(NOT_COMPARED)):
        raise ConfigError(f"'{run_dir}' was run with overrides {recorded}, this table asks for {wanted}: "
                          "use another --sweep-dir, or remove that folder")


class RunFailed(RuntimeError):
    """A run exited with an error; ``reason`` is its last error line (``gnnlab-train: error: ...``), if any."""

    def __init__(self, cmd: list[str], returncode: int, reason: str | None):
        super().__init__(f"a run failed (exit code {returncode}): {' '.join(cmd)}")
        self.reason = reason


def run_command(cmd: list[str]) -> None:
    """Run ``cmd`` with its stderr passed through as it comes (progress bars included), keeping its tail."""
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE)
    tail = b""
    out = getattr(sys.stderr, "buffer", None)
    try:
        while chunk := os.read(proc.stderr.fileno(), 1 << 16):
            if out is not None:
                out.write(chunk)
            else:
                sys.stderr.write(chunk.decode(errors="replace"))
            sys.stderr.flush()
            tail = (tail + chunk)[-(1 << 14):]
    except BaseException:  # interrupted: the run does not outlive the command that started it
        proc.kill()
        proc.wait()
        raise
    finally:
        proc.stderr.close()
    if proc.wait() != 0:
        raise RunFailed(cmd, proc.returncode, failure_reason(tail.decode(errors="replace")))


def failure_reason(stderr: str) -> str | None:
    """The last ``<program>: error: ...`` line of a run's stderr, without the program name and cut at its first
    ``;`` (where the advice on fixing it starts); the last non-empty line when there is none."""
    lines = [line.strip() for line in re.split(r"[\r\n]+", stderr) if line.strip()]
    for line in reversed(lines):
        if ": error: " in line:
            return line.split(": error: ", 1)[1].split("; ", 1)[0]
    return lines[-1] if lines else None
