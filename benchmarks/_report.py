"""Result files of the benchmark scripts: ``--out PREFIX`` writes ``PREFIX.txt`` and ``PREFIX.csv``.

``PREFIX.txt`` holds what the script prints, under a first line ``# command: ...`` naming the command
that writes it again (the environment settings that change the figures, then ``python`` and the
script's arguments); ``PREFIX.csv`` holds the rows, with no comment line, for any CSV reader.
"""
from __future__ import annotations

import contextlib
import csv
import os
import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Settings that change what a benchmark measures or where it reads its data; written when set.
ENV = ("GNNLAB_DATA_DIR", "GNNLAB_BENCH_CHUNK", "OMP_NUM_THREADS", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")


def command_line() -> str:
    """The command running this script again, its path relative to the repository when it is inside it."""
    script = Path(sys.argv[0]).resolve()
    if script.is_relative_to(ROOT):
        script = script.relative_to(ROOT)
    env = [f"{name}={os.environ[name]}" for name in ENV if name in os.environ]
    return shlex.join([*env, "python", str(script), *sys.argv[1:]])


class _Tee:
    def __init__(self, *streams):
        self.streams = streams

    def write(self, text: str) -> int:
        for stream in self.streams:
            stream.write(text)
        return len(text)

    def flush(self) -> None:
        for stream in self.streams:
            stream.flush()


@contextlib.contextmanager
def report(prefix: str | None):
    """Print as usual; with a ``prefix``, also copy what is printed to ``PREFIX.txt`` under the command line and
    the machine's load average at the start (timings taken beside other jobs are inflated)."""
    if prefix is None:
        yield
        return
    path = Path(prefix + ".txt")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fh.write(f"# command: {command_line()}\n")
        with contextlib.redirect_stdout(_Tee(sys.stdout, fh)):
            print(f"load average at the start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
            yield


def write_csv(prefix: str | None, header: list[str], rows: list) -> None:
    """Write ``rows`` (lists, or dicts keyed by ``header``) to ``PREFIX.csv``; nothing without a prefix."""
    if prefix is None or not rows:
        return
    with open(prefix + ".csv", "w", newline="") as fh:
        if isinstance(rows[0], dict):
            writer = csv.DictWriter(fh, fieldnames=header, extrasaction="ignore")
            writer.writeheader()
        else:
            writer = csv.writer(fh)
            writer.writerow(header)
        writer.writerows(rows)
