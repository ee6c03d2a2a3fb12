"""The package's own files (its config folder), and writing files that other processes may be reading: write
under a temporary name, then rename."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable

__all__ = ["config_dir", "write_atomically"]


def config_dir() -> Path:
    """The Hydra config folder: ``gnnlab/conf`` in an installed wheel, ``<repo>/conf`` in a source tree."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "conf", here.parent / "conf"):
        if (candidate / "train.yaml").is_file():
            return candidate
    raise FileNotFoundError(f"gnnlab configs not found next to {here} (looked for conf/train.yaml)")


def write_atomically(path: str | os.PathLike, write: Callable[[str], None]) -> None:
    """Call ``write(tmp)`` on a unique hidden ``.<name>.*.partial`` file beside ``path``, then rename it to ``path``.

    The rename is atomic on one file system, so a concurrent reader finds either no file or a complete
    one, never a half-written one (several runs may share a data root and build the same cache; the last
    rename wins), and two processes writing at once never collide. ``tmp`` is created private (mode 0600).
    The temporary file is removed if ``write`` raises.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
