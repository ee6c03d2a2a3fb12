"""Offline copies of benchmark data, and the writable data root.

Machines without internet can keep read-only copies of the public benchmark files in one folder laid out
like the ``raw/`` folders PyG expects (``Planetoid/Cora/raw``, ``TUDataset/MUTAG/raw``, ``AQSOL/raw``, ...).
Every loader takes that folder as its ``offline_dir`` argument (the data configs pass
``paths.offline_data_dir``; ``None`` means ``$GNNLAB_SHARED_DATA``); no other folder is looked at, and it is
only ever read. Before PyG builds a dataset, :func:`copy_offline` copies the raw files the data root lacks, so
PyG finds them and never downloads; without an offline copy PyG downloads as usual.
"""
from __future__ import annotations

import http.client
import logging
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.error import URLError

from gnnlab.errors import DatasetUnavailableError
from gnnlab.files import write_atomically

__all__ = ["ENV_VAR", "shared_data_dir", "prepare_root", "copy_offline", "download_errors", "unavailable_message"]

log = logging.getLogger(__name__)

#: Environment variable naming the offline copies folder when a loader is given no ``offline_dir``.
#: An empty value switches offline copies off (useful to force PyG's own download path).
ENV_VAR = "GNNLAB_SHARED_DATA"


def _origin(offline_dir: str | os.PathLike | None) -> str:
    """Where the offline copies folder comes from, as a message names it."""
    if offline_dir is None:
        return f"{ENV_VAR}={os.environ.get(ENV_VAR)!r}"
    return f"offline_dir (paths.offline_data_dir)={os.fspath(offline_dir)!r}"


def shared_data_dir(offline_dir: str | os.PathLike | None = None) -> Path | None:
    """Return the folder that holds offline dataset copies, or ``None`` when there is none.

    The folder is ``offline_dir`` when given, otherwise ``$GNNLAB_SHARED_DATA``; an empty or unset value
    means no offline copies. A value naming no existing folder raises ``FileNotFoundError``, since a
    mistyped path would otherwise fall back to downloading silently.
    """
    value = os.environ.get(ENV_VAR) if offline_dir is None else os.fspath(offline_dir)
    if not value:
        return None
    path = Path(value).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"offline copies folder {_origin(offline_dir)} is not an existing folder")
    return path.resolve()


def prepare_root(root: str | os.PathLike) -> Path:
    """Create the data root if needed and check that it is writable; return it as an absolute path.

    Raises ``PermissionError`` naming the path when the folder cannot be created (for example because a
    parent is a regular file or read-only) or exists but cannot be written to, so a run fails at start-up
    with a useful hint instead of deep inside PyG.
    """
    path = Path(root).expanduser().absolute()
    hint = f"data root '{path}' is not writable; set paths.data_dir=... to a writable folder"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise PermissionError(f"{hint} ({err.strerror or err})") from err
    if not path.is_dir():
        raise PermissionError(f"{hint} (it exists and is not a folder)")
    # Probe with a real file: os.access can disagree with what the file system allows (ACLs, network
    # mounts, and root passes every permission check).
    try:
        with tempfile.NamedTemporaryFile(dir=path, prefix=".gnnlab-write-test-"):
            pass
    except OSError as err:
        raise PermissionError(f"{hint} ({err.strerror or err})") from err
    return path


def copy_offline(relative: str, dest: str | os.PathLike, offline_dir: str | os.PathLike | None = None) -> bool:
    """Copy ``relative`` from the offline copies folder (:func:`shared_data_dir`) into ``dest`` when
    ``dest`` lacks those files.

    ``relative`` may name a folder (its files are copied one by one, keeping sub-folders) or a single
    file (copied to the path ``dest``). Files already in ``dest`` are never overwritten, so a download
    or an earlier copy stays as it is. Returns ``True`` when at least one file was copied and ``False``
    when there is no offline copy or nothing was missing.
    """
    shared = shared_data_dir(offline_dir)
    if shared is None:
        return False
    src, dest = shared / relative, Path(dest)
    single = src.is_file()
    if single:
        pairs = [(src, dest)]
    elif src.is_dir():
        pairs = [(file, dest / file.relative_to(src)) for file in sorted(p for p in src.rglob("*") if p.is_file())]
    else:
        return False
    copied = 0
    for file, target in pairs:
        if not target.exists():
            # An interrupted copy must not leave a truncated file that PyG would take for a complete raw file.
            write_atomically(target, lambda tmp: shutil.copy2(file, tmp))
            copied += 1
    if copied and single:
        log.info("copied offline %s to %s", src, dest)
    elif copied:
        log.info("copied %d offline file(s) from %s to %s", copied, src, dest)
    return copied > 0


_NETWORK_ERRORS = (URLError, socket.gaierror, socket.herror, ConnectionError, TimeoutError, http.client.HTTPException)


def _network_error(err: BaseException | None) -> BaseException | None:
    """The network error (no DNS, refused, timed out, HTTP failure) in ``err``'s chain, or ``None``.

    PyG downloads with ``urllib`` (``URLError``) or through ``fsspec``'s HTTP file system, whose
    ``aiohttp`` errors are recognised by their module.
    """
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, _NETWORK_ERRORS) or type(err).__module__.split(".")[0] == "aiohttp":
            return err
        err = err.__cause__ or err.__context__
    return None


def unavailable_message(dataset: str, folder: str | os.PathLike, offline: str | None, reason: object,
                        offline_dir: str | os.PathLike | None = None) -> str:
    """One line saying that ``dataset`` is missing: where it was looked for and how to provide it.

    Args:
        dataset: the dataset's name.
        folder: its folder in the data root.
        offline: where its offline copy would be, relative to the offline copies folder; ``None`` when
            the dataset has no offline copy.
        reason: why the download failed (the network error).
        offline_dir: the loader's ``offline_dir`` argument (see :func:`shared_data_dir`).
    """
    if offline is None:
        looked = "this dataset has no offline copy"
        how = "run once with network access, or put its raw files into that folder by hand"
    else:
        value = os.environ.get(ENV_VAR) if offline_dir is None else os.fspath(offline_dir)
        try:
            shared = shared_data_dir(offline_dir)
            looked = (f"no offline copy at {shared / offline} ({_origin(offline_dir)})" if shared is not None
                      else f"offline copies are switched off ({_origin(offline_dir)})" if value == ""
                      else f"no offline copies folder is given (paths.offline_data_dir, offline_dir= or {ENV_VAR})")
        except FileNotFoundError as err:
            looked = str(err)
        how = (f"run once with network access, or put the files at <folder>/{offline} and pass that folder "
               f"(paths.offline_data_dir=<folder>, or {ENV_VAR}=<folder>)")
    reason = " ".join(str(reason).split())
    return (f"{dataset} is not in the data root ({folder}) and could not be downloaded ({reason}); {looked}. "
            f"To provide it: {how}; or choose a data root that already holds it (paths.data_dir=... or "
            "GNNLAB_DATA_DIR).")


@contextmanager
def download_errors(dataset: str, folder: str | os.PathLike, offline: str | None,
                    offline_dir: str | os.PathLike | None = None) -> Iterator[None]:
    """Turn a failed download inside the block into a :class:`~gnnlab.errors.DatasetUnavailableError`.

    The message (:func:`unavailable_message`) names the dataset, the data-root folder, the offline copy
    that was looked for and how to provide the files; other errors pass through unchanged.
    """
    try:
        yield
    except Exception as err:
        network = _network_error(err)
        if network is None:
            raise
        raise DatasetUnavailableError(unavailable_message(dataset, folder, offline, network, offline_dir)) from err
