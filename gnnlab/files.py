"""Writing files that other processes may be reading: write under a temporary name, then rename."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable

__all__ = ["write_atomically"]


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
