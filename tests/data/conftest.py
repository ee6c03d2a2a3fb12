"""Fixtures for the data tests: locating the offline copies and checking that they stay untouched."""
from __future__ import annotations

from pathlib import Path

import pytest

from gnnlab.data import shared_data_dir


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in folder.rglob("*")
    }


@pytest.fixture
def offline_copy():
    """Return ``get(relative, label)``: the offline copy's path, skipping the test when it is absent.

    Every folder requested this way is compared before and after the test, so a loader that wrote into
    the shared copies (a processed/ folder, a partial file) fails the test.
    """
    watched: list[tuple[Path, dict[str, tuple[int, int]]]] = []

    def get(relative: str, label: str) -> Path:
        shared = shared_data_dir()
        if shared is None or not (shared / relative).exists():
            pytest.skip(f"offline copy of {label} not found (GNNLAB_SHARED_DATA, default ../shared/data)")
        folder = shared / relative.split("/")[0]
        watched.append((folder, _snapshot(folder)))
        return shared / relative

    yield get
    for folder, before in watched:
        assert _snapshot(folder) == before, f"{folder} was modified"
