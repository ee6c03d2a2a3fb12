"""Apply encoding transforms to every graph of a dataset once, and cache the result on disk."""
from __future__ import annotations

import hashlib
import importlib
import json
import logging
import os
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Data, Dataset, InMemoryDataset
from torch_geometric.io import fs
from tqdm.auto import tqdm

from gnnlab.files import write_atomically

__all__ = ["CACHE_FORMAT", "PrecomputedDataset", "dataset_fingerprint", "precompute"]

log = logging.getLogger(__name__)

#: Version of the cache file layout; files of another version are recomputed.
CACHE_FORMAT = 2

# Datasets from this many graphs or nodes up show a progress bar (unless ``progress`` says otherwise).
_PROGRESS_MIN_GRAPHS = 2000
_PROGRESS_MIN_NODES = 200_000


class PrecomputedDataset(InMemoryDataset):
    """An in-memory dataset of graphs carrying precomputed attributes (what :func:`precompute` returns).

    Args:
        data: the collated storage (``InMemoryDataset.collate`` output).
        slices: its slices (``None`` for a single graph).
        transform: applied on access, as for any PyG dataset (the source dataset's transform).
        cache_path: the cache file the graphs were written to or read from, if any.
    """

    def __init__(
        self,
        data: Data,
        slices: dict[str, Tensor] | None,
        transform: Callable | None = None,
        cache_path: Path | None = None,
    ) -> None:
        super().__init__(None, transform=transform)
        self.data, self.slices = data, slices
        self.cache_path = cache_path

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({len(self)})"


def _transform_list(transforms) -> list:
    """Flatten a transform, a sequence or a mapping of them (``None`` entries skipped); check each."""
    if isinstance(transforms, Mapping):
        transforms = list(transforms.values())
    elif not isinstance(transforms, Sequence) or isinstance(transforms, (str, bytes)):
        transforms = [transforms]
    out = []
    for t in transforms:
        if t is None:
            continue
        if isinstance(t, (Mapping, Sequence)) and not isinstance(t, (str, bytes)):
            out.extend(_transform_list(t))
            continue
        key = getattr(t, "cache_key", None)
        if not callable(t) or not isinstance(key, str) or not key:
            raise ValueError(
                f"{t!r} is not a cacheable transform: precompute needs callables with a string "
                "cache_key property (e.g. gnnlab.transforms.RandomWalkSE)"
            )
        out.append(t)
    return out


def _int64_bytes(x) -> bytes:
    return np.ascontiguousarray(np.asarray(x), dtype="<i8").tobytes()


def _raw_graphs(dataset) -> Iterator[Data]:
    """The stored graphs of ``dataset`` in order, before its access-time ``transform``."""
    if isinstance(dataset, Dataset):
        for idx in dataset.indices():
            yield dataset.get(idx)
    else:
        yield from dataset


def _node_counts(dataset: InMemoryDataset) -> np.ndarray | None:
    """Nodes per stored graph, read from the collated storage when it tells (``None`` otherwise)."""
    store, slices = dataset._data, dataset.slices
    if slices is None:
        return np.array([store.num_nodes])
    counts = store._store.get("_num_nodes")  # written by collate when graphs set num_nodes
    if counts is not None:
        return np.asarray(counts, dtype=np.int64)
    x = store._store.get("x")
    if "x" in slices and isinstance(x, Tensor) and store.is_node_attr("x"):
        return np.diff(slices["x"].numpy())
    return None


def dataset_fingerprint(dataset) -> dict:
    """A cheap summary of a dataset's graph structure, which keys (with the transforms) its PE cache.

    Holds the number of graphs, total nodes and edges and a digest of the node counts and
    ``edge_index`` of the selected graphs. For an ``InMemoryDataset`` the digest is taken over the
    collated storage and its slices plus the selected indices, without separating graphs; other
    datasets are iterated. Access-time transforms are not applied.
    """
    h = hashlib.blake2b(digest_size=16)
    if isinstance(dataset, InMemoryDataset) and isinstance(dataset._data, Data):
        store, slices = dataset._data, dataset.slices
        index = np.asarray(dataset.indices(), dtype=np.int64)
        edge_index = store._store.get("edge_index")
        h.update(b"storage")
        h.update(_int64_bytes(store.num_nodes or 0))
        if isinstance(edge_index, Tensor):
            h.update(_int64_bytes(edge_index.cpu()))
        for key in sorted(slices or {}):
            h.update(key.encode())
            h.update(_int64_bytes(slices[key].cpu()))
        counts = _node_counts(dataset)
        if counts is not None:
            h.update(_int64_bytes(counts))
        h.update(_int64_bytes(index))
        if slices is not None and "edge_index" in slices:
            num_edges = int(np.diff(slices["edge_index"].numpy())[index].sum())
        else:
            num_edges = int(edge_index.size(1)) if isinstance(edge_index, Tensor) else 0
        num_nodes = int(counts[index].sum()) if counts is not None else None
        return {"num_graphs": len(index), "num_nodes": num_nodes, "num_edges": num_edges,
                "digest": h.hexdigest()}

    num_graphs = num_nodes = num_edges = 0
    h.update(b"graphs")
    for graph in _raw_graphs(dataset):
        n = int(graph.num_nodes or 0)
        edge_index = getattr(graph, "edge_index", None)
        h.update(_int64_bytes([n]))
        if isinstance(edge_index, Tensor):
            h.update(_int64_bytes(edge_index.cpu()))
            num_edges += int(edge_index.size(1))
        h.update(b"|")
        num_graphs += 1
        num_nodes += n
    return {"num_graphs": num_graphs, "num_nodes": num_nodes, "num_edges": num_edges,
            "digest": h.hexdigest()}


def _default_cache_dir(dataset) -> Path | None:
    root = getattr(dataset, "root", None)
    if not isinstance(dataset, Dataset) or not isinstance(root, str) or root in ("", "???"):
        return None  # no root (e.g. built in memory): nothing to cache next to
    return Path(dataset.processed_dir) / "pe"


def _load(path: Path, keys: list[str], fingerprint: dict) -> tuple[Data, dict | None] | None:
    """The cached storage at ``path``, or ``None`` (with a warning) when it is unreadable or stale."""
    try:
        # Plain containers, tensors and strings only, so the safe loader reads it (no pickled classes).
        payload = torch.load(str(path), map_location="cpu", weights_only=True)
        if not isinstance(payload, dict) or payload.get("format") != CACHE_FORMAT:
            raise ValueError(f"not a PE cache file of format {CACHE_FORMAT}")
        if payload["keys"] != keys or payload["fingerprint"] != fingerprint:
            warnings.warn(f"PE cache {path} was written for other transforms or data; recomputing",
                          stacklevel=3)
            return None
        data = _data_class(payload["data_cls"]).from_dict(payload["data"])
        return data, payload["slices"]
    except Exception as err:  # a truncated or foreign file must not stop training: recompute it
        warnings.warn(f"could not read PE cache {path} ({err!r}); recomputing", stacklevel=3)
        return None


def _data_class(name: str) -> type:
    """The ``Data`` (sub)class named ``module:qualname`` in a cache file."""
    module, _, qualname = str(name).partition(":")
    cls = importlib.import_module(module)
    for part in qualname.split("."):
        cls = getattr(cls, part)
    if not (isinstance(cls, type) and issubclass(cls, Data)):
        raise ValueError(f"{name!r} is not a torch_geometric Data class")
    return cls


def _save(path: Path, keys: list[str], fingerprint: dict, data: Data, slices: dict | None) -> None:
    payload = {"format": CACHE_FORMAT, "keys": keys, "fingerprint": fingerprint,
               "data": data.to_dict(), "slices": slices,
               "data_cls": f"{type(data).__module__}:{type(data).__qualname__}"}
    # Several jobs may share a data root: a reader must never see a partial file.
    write_atomically(path, lambda tmp: fs.torch_save(payload, tmp))


def precompute(
    dataset,
    transforms,
    cache_dir: str | os.PathLike | None = None,
    desc: str | None = None,
    progress: bool | None = None,
) -> PrecomputedDataset:
    """Apply cacheable transforms to every graph of ``dataset`` and return the graphs with their output.

    The transforms (e.g. :class:`LaplacianEigenpairs`, :class:`RandomWalkSE`, :class:`FastRP`) run once
    per graph, in order, on the stored graphs (before the dataset's access-time ``transform``, which
    the returned dataset keeps applying). The result goes to one file per (dataset, transform set),
    ``<cache_dir>/pe_<hash>.pt``, the hash covering every transform's ``cache_key`` and the
    :func:`dataset_fingerprint`; a later call with the same transforms and data loads it instead of
    recomputing. A file that cannot be read, or whose stored keys or fingerprint differ, is recomputed
    with a warning. Node-level attributes are stored like ``x``, so PyG data loaders concatenate them
    node-wise.

    .. code-block:: python

        train = precompute(train, [LaplacianEigenpairs(k=8), RandomWalkSE(k=20)])
        batch = next(iter(DataLoader(train, batch_size=32)))
        batch.lappe_vec.shape, batch.rwse.shape  # (num_nodes, 8), (num_nodes, 20)

    Args:
        dataset: a PyG ``InMemoryDataset`` (subsets with ``_indices`` included), another PyG
            ``Dataset``, or a list of ``Data``. A node-level dataset is a single graph.
        transforms: a transform, a sequence of them or a mapping name -> transform (or -> sequence);
            each needs a string ``cache_key``.
        cache_dir: folder of the cache file. ``None`` takes ``<dataset.processed_dir>/pe``, or no
            caching at all for a dataset without a root folder.
        desc: label of the progress bar and log lines (defaults to the dataset's class name).
        progress: show a progress bar; ``None`` shows one for large datasets only.

    Returns:
        A :class:`PrecomputedDataset` holding the selected graphs in order.

    Raises:
        ValueError: an empty dataset, a transform without ``cache_key``, or no transform at all.
    """
    transforms = _transform_list(transforms)
    if not transforms:
        raise ValueError("precompute needs at least one transform")
    if len(dataset) == 0:
        raise ValueError("cannot precompute encodings of an empty dataset")
    desc = desc or type(dataset).__name__
    keys = [t.cache_key for t in transforms]
    transform = getattr(dataset, "transform", None) if isinstance(dataset, Dataset) else None

    fingerprint = dataset_fingerprint(dataset)
    cache_dir = Path(cache_dir) if cache_dir is not None else _default_cache_dir(dataset)
    path = None
    if cache_dir is not None:
        digest = hashlib.sha256(json.dumps([keys, fingerprint], sort_keys=True).encode()).hexdigest()
        path = cache_dir / f"pe_{digest[:20]}.pt"
        if path.exists():
            loaded = _load(path, keys, fingerprint)
            if loaded is not None:
                log.info("%s: loaded %s from %s", desc, ", ".join(keys), path)
                return PrecomputedDataset(*loaded, transform=transform, cache_path=path)

    num_graphs = fingerprint["num_graphs"]
    if progress is None:
        progress = num_graphs >= _PROGRESS_MIN_GRAPHS or (fingerprint["num_nodes"] or 0) >= _PROGRESS_MIN_NODES
    log.info("%s: computing %s for %d graphs", desc, ", ".join(keys), num_graphs)
    graphs = []
    for graph in tqdm(_raw_graphs(dataset), total=num_graphs, desc=desc, unit="graph",
                      disable=not progress):
        for t in transforms:
            graph = t(graph)
        graphs.append(graph)
    data, slices = InMemoryDataset.collate(graphs)
    if path is not None:
        _save(path, keys, fingerprint, data, slices)
        log.info("%s: cached in %s", desc, path)
    return PrecomputedDataset(data, slices, transform=transform, cache_path=path)
