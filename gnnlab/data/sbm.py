"""PATTERN and CLUSTER: the stochastic-block-model node-classification benchmarks of Benchmarking GNNs.

The original data sets were sampled without a fixed seed, so this module regenerates statistically
equivalent data from the published generator parameters, deterministically from a seed:

CLUSTER
    6 communities with sizes drawn uniformly from ``[5, 35)``; an edge joins two nodes with probability
    ``p = 0.55`` inside a community and ``q = 0.25`` across. The node label is the community id. In every
    community one node chosen at random carries the token ``community id + 1``; all other nodes carry
    token 0 (so the vocabulary has 7 tokens). The task is semi-supervised clustering from one seed node per
    community.

PATTERN
    5 communities with sizes drawn uniformly from ``[5, 35)``, ``p = 0.5`` inside and ``q = 0.35`` across,
    node tokens uniform over a vocabulary of 3. As in the published data, **100 pattern instances** are
    drawn per data set, each with ``[5, 35)`` nodes, internal edge probability 0.5 and its own node
    tokens; an instance is planted in 100 train, 20 validation and 20 test graphs (graph ``i`` of a split
    holds instance ``i mod 100``, recorded as ``pattern_id``), every pattern node linking to every other
    node with probability ``q_P = 0.55`` (the last version of the authors' generator). A node is
    labelled 1 when it belongs to the pattern (about 17% of nodes). The instances depend only on
    ``seed``, so the splits of one seed share them. These parameters give on average ~117 nodes and
    ~6,060 directed edges per graph (:func:`expected_statistics`); the published files have 118.9
    and 6,098.9 (:data:`PUBLISHED_STATISTICS`).

In both, node order is randomly permuted inside each graph so that labels carry no positional signal.
Graphs are undirected without self loops; ``edge_index`` holds both directions, sorted by (source,
target). Each graph is a :class:`torch_geometric.data.Data` with ``x`` (long ``[N]`` tokens), ``y`` (long
``[N]``), ``edge_index`` (long ``[2, E]``) and ``edge_attr`` (long zeros ``[E]``: a single edge type, so a
model's edge embedding sees a constant input as with the original data).

Each split draws from its own random stream derived from ``(seed, name, split)``, so the splits are
independent and a split does not change when another one's size does.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import numpy as np
import torch
from torch_geometric.data import Data, InMemoryDataset
from tqdm.auto import tqdm

from gnnlab.data._offline import prepare_root
from gnnlab.data.checks import SPLITS, choice
from gnnlab.errors import ConfigError
from gnnlab.files import write_atomically

__all__ = [
    "GENERATOR_VERSION",
    "SBM_NAMES",
    "PUBLISHED_SIZES",
    "PUBLISHED_STATISTICS",
    "expected_statistics",
    "SBMParams",
    "SBM_PARAMS",
    "generate_sbm",
    "SBMDataset",
    "load_sbm",
]

#: Bumped whenever the sampling procedure changes, so stale cached files are not reused.
GENERATOR_VERSION = 2

SBM_NAMES = ("CLUSTER", "PATTERN")

#: Published numbers of graphs per split (train, val, test).
PUBLISHED_SIZES: dict[str, dict[str, int]] = {
    "CLUSTER": {"train": 10000, "val": 1000, "test": 1000},
    "PATTERN": {"train": 10000, "val": 2000, "test": 2000},
}

#: Means per graph of the published files (PyG ``GNNBenchmarkDataset``, ``PATTERN_v2``/``CLUSTER_v2``, all
#: splits): nodes, directed edges, and for PATTERN the share of nodes labelled 1.
PUBLISHED_STATISTICS: dict[str, dict[str, float]] = {
    "CLUSTER": {"graphs": 12000, "nodes": 117.2, "edges": 4303.9},
    "PATTERN": {"graphs": 14000, "nodes": 118.9, "edges": 6098.9},
}


@dataclass(frozen=True)
class SBMParams:
    """Generator parameters of one SBM benchmark (community sizes are uniform in ``[size_min, size_max)``)."""

    num_communities: int
    size_min: int
    size_max: int
    p: float
    q: float
    vocab_size: int
    has_pattern: bool = False
    pattern_size_min: int = 5
    pattern_size_max: int = 35
    p_pattern: float = 0.5
    q_pattern: float = 0.5
    num_patterns: int = 0


SBM_PARAMS: dict[str, SBMParams] = {
    "CLUSTER": SBMParams(num_communities=6, size_min=5, size_max=35, p=0.55, q=0.25, vocab_size=7),
    # Patterns of [5, 35) nodes (the defaults) with p_pattern = 0.5 inside.
    "PATTERN": SBMParams(num_communities=5, size_min=5, size_max=35, p=0.5, q=0.35, vocab_size=3, has_pattern=True,
                         q_pattern=0.55, num_patterns=100),
}

# Fixed integers (not hash(), which is salted per process) that key the random streams.
_NAME_KEYS = {"CLUSTER": 1, "PATTERN": 2}
_STREAM_KEYS = {"train": 0, "val": 1, "test": 2, "pattern": 3}


def _check_int(value: int, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"{name} must be a {'positive' if minimum else 'non-negative'} integer, got {value!r}")
    return int(value)


def _rng(seed: int, name: str, stream: str) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, _NAME_KEYS[name], _STREAM_KEYS[stream]]))


@lru_cache(maxsize=512)
def _upper_pairs(n: int) -> tuple[np.ndarray, np.ndarray]:
    # Graph sizes repeat a lot (at most ~200 distinct values), so the index pairs are worth caching.
    i, j = np.triu_indices(n, k=1)
    i.setflags(write=False)
    j.setflags(write=False)
    return i, j


@dataclass(frozen=True)
class _Pattern:
    src: np.ndarray  # upper-triangle edges of the pattern, local ids
    dst: np.ndarray
    tokens: np.ndarray

    @property
    def size(self) -> int:
        """Number of pattern nodes."""
        return len(self.tokens)


def _draw_pattern(rng: np.random.Generator, params: SBMParams) -> _Pattern:
    n0 = int(rng.integers(params.pattern_size_min, params.pattern_size_max))
    i, j = _upper_pairs(n0)
    keep = rng.random(len(i)) < params.p_pattern
    tokens = rng.integers(0, params.vocab_size, size=n0)
    return _Pattern(src=i[keep].copy(), dst=j[keep].copy(), tokens=tokens)


def _draw_graph(
    rng: np.random.Generator, params: SBMParams, pattern: _Pattern | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Sample one graph before node permutation.

    Returns ``(block, tokens, src, dst)``: the block id of every node (pattern nodes get block
    ``num_communities``), the node tokens and the undirected edges as ``src < dst`` pairs.
    """
    sizes = rng.integers(params.size_min, params.size_max, size=params.num_communities)
    block = np.repeat(np.arange(params.num_communities), sizes)
    n = len(block)
    i, j = _upper_pairs(n)
    prob = np.where(block[i] == block[j], params.p, params.q)
    keep = rng.random(len(i)) < prob
    src, dst = i[keep], j[keep]

    if pattern is None:
        # One seed node per community, chosen uniformly inside it, carries the token id + 1.
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        chosen = starts + rng.integers(0, sizes)
        tokens = np.zeros(n, dtype=np.int64)
        tokens[chosen] = np.arange(1, params.num_communities + 1)
        return block, tokens, src, dst

    tokens = rng.integers(0, params.vocab_size, size=n)
    n0 = pattern.size
    # Pattern nodes get ids n .. n + n0 - 1; every (sbm node, pattern node) pair links with q_pattern.
    cross = rng.random((n, n0)) < params.q_pattern
    cross_src, cross_dst = np.nonzero(cross)
    src = np.concatenate([src, cross_src, pattern.src + n])
    dst = np.concatenate([dst, cross_dst + n, pattern.dst + n])
    block = np.concatenate([block, np.full(n0, params.num_communities)])
    tokens = np.concatenate([tokens, pattern.tokens])
    return block, tokens, src, dst


def _to_data(
    rng: np.random.Generator, params: SBMParams, block: np.ndarray, tokens: np.ndarray,
    src: np.ndarray, dst: np.ndarray,
) -> Data:
    n = len(block)
    new_id = rng.permutation(n)  # node old -> new_id[old]
    x = np.empty(n, dtype=np.int64)
    x[new_id] = tokens
    y = np.empty(n, dtype=np.int64)
    y[new_id] = (block == params.num_communities) if params.has_pattern else block

    # A dense boolean adjacency is cheap at these sizes (n < 250) and np.nonzero on it yields the
    # edges already sorted by (source, target), which a sort of the edge list would cost far more.
    adj = np.zeros((n, n), dtype=bool)
    a, b = new_id[src], new_id[dst]
    adj[a, b] = True
    adj[b, a] = True
    edge_index = torch.from_numpy(np.stack(np.nonzero(adj)).astype(np.int64))
    return Data(
        x=torch.from_numpy(x),
        y=torch.from_numpy(y),
        edge_index=edge_index,
        edge_attr=torch.zeros(edge_index.size(1), dtype=torch.long),
    )


def generate_sbm(
    name: str, num_graphs: int, seed: int = 0, split: str = "train", progress: bool = False
) -> list[Data]:
    """Generate ``num_graphs`` graphs of the ``name`` benchmark (``'CLUSTER'`` or ``'PATTERN'``).

    Deterministic in ``(name, seed, split)``; a prefix of a longer run equals a shorter run. For PATTERN
    the pattern instances depend on ``seed`` only (shared by all splits); graph ``i`` holds instance
    ``i mod num_patterns`` (its ``pattern_id``).
    """
    name = choice(name, SBM_NAMES, "SBM dataset")
    split = choice(split, SPLITS, "split", "splits")
    seed = _check_int(seed, "seed", 0)
    num_graphs = _check_int(num_graphs, "num_graphs", 1)
    params = SBM_PARAMS[name]
    pattern_rng = _rng(seed, name, "pattern")
    patterns = [_draw_pattern(pattern_rng, params) for _ in range(params.num_patterns)]
    rng = _rng(seed, name, split)
    graphs = []
    for i in tqdm(range(num_graphs), desc=f"generating {name} {split}", disable=not progress, unit="graph"):
        pattern = patterns[i % len(patterns)] if patterns else None
        block, tokens, src, dst = _draw_graph(rng, params, pattern)
        graphs.append(_to_data(rng, params, block, tokens, src, dst))
        if pattern is not None:
            graphs[-1].pattern_id = torch.tensor([i % len(patterns)])
    return graphs


def expected_statistics(name: str) -> dict[str, float]:
    """Expected nodes, directed edges and (PATTERN) share of pattern nodes per graph under the generator's
    parameters, in closed form (community and pattern sizes uniform on ``[size_min, size_max)``)."""
    params = SBM_PARAMS[choice(name, SBM_NAMES, "SBM dataset")]

    def moments(lo: int, hi: int) -> tuple[float, float]:  # E[s], E[s^2] of s uniform on [lo, hi)
        values = np.arange(lo, hi, dtype=float)
        return values.mean(), (values**2).mean()

    m1, m2 = moments(params.size_min, params.size_max)
    k = params.num_communities
    nodes = k * m1
    within = k * (m2 - m1) / 2  # E[sum_c C(s_c, 2)]
    all_pairs = (k * (m2 - m1**2) + nodes**2 - nodes) / 2  # E[C(n, 2)], n = sum of k independent sizes
    edges = params.p * within + params.q * (all_pairs - within)
    out = {"nodes": nodes, "edges": 2 * edges}
    if params.has_pattern:
        p1, p2 = moments(params.pattern_size_min, params.pattern_size_max)
        edges += params.p_pattern * (p2 - p1) / 2 + params.q_pattern * nodes * p1
        out = {"nodes": nodes + p1, "edges": 2 * edges, "positive": p1 / (nodes + p1)}
    return out


class SBMDataset(InMemoryDataset):
    """One split of PATTERN or CLUSTER, generated on first use and cached on disk.

    Args:
        root: data root; files go to ``root/SBM_<name>/processed/``.
        name: ``'CLUSTER'`` or ``'PATTERN'`` (case-insensitive).
        split: ``'train'``, ``'val'`` or ``'test'``.
        num_graphs: number of graphs; defaults to the published size of the split.
        seed: data set seed; each split derives its own stream from it.
        transform: optional PyG transform applied on access.
        progress: show a progress bar while generating.
        force_reload: regenerate even when a cached file exists.

    The cached file name holds every parameter (name, split, size, seed and generator version), so
    data sets of different sizes or seeds never overwrite each other.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        name: str,
        split: str = "train",
        num_graphs: int | None = None,
        seed: int = 0,
        transform: Callable | None = None,
        progress: bool = True,
        force_reload: bool = False,
    ) -> None:
        self.name = choice(name, SBM_NAMES, "SBM dataset")
        self.split = choice(split, SPLITS, "split", "splits")
        self.seed = _check_int(seed, "seed", 0)
        if num_graphs is None:
            num_graphs = PUBLISHED_SIZES[self.name][self.split]
        self.num_graphs = _check_int(num_graphs, "num_graphs", 1)
        self.progress = progress
        base = prepare_root(root)
        super().__init__(str(base / f"SBM_{self.name}"), transform=transform, force_reload=force_reload)
        self.load(self.processed_paths[0])

    @property
    def raw_file_names(self) -> list[str]:
        """No raw files: the graphs are generated."""
        return []

    @property
    def processed_file_names(self) -> list[str]:
        """The cache file, keyed by every generation parameter."""
        return [
            f"{self.name.lower()}_{self.split}_n{self.num_graphs}_seed{self.seed}_v{GENERATOR_VERSION}.pt"
        ]

    def process(self) -> None:
        """Generate the graphs and write the cache file.

        The file is written under a temporary name and renamed into place, so a concurrent run that
        finds the cache file never reads a half-written one (two runs may both generate; the last
        rename wins, with the same content).
        """
        graphs = generate_sbm(self.name, self.num_graphs, self.seed, self.split, progress=self.progress)
        write_atomically(self.processed_paths[0], lambda tmp: self.save(graphs, tmp))

    def __repr__(self) -> str:
        return f"SBMDataset({self.name}, split={self.split!r}, num_graphs={self.num_graphs}, seed={self.seed})"


def load_sbm(
    root: str | os.PathLike,
    name: str,
    num_train: int = 10000,
    num_val: int | None = None,
    num_test: int | None = None,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, SBMDataset]:
    """Load (generating on first use) the train/val/test splits of PATTERN or CLUSTER.

    ``num_val`` and ``num_test`` default to the published sizes (CLUSTER 1000/1000, PATTERN 2000/2000).
    Returns ``{'train': ..., 'val': ..., 'test': ...}``.
    """
    name = choice(name, SBM_NAMES, "SBM dataset")
    sizes = {
        "train": num_train,
        "val": PUBLISHED_SIZES[name]["val"] if num_val is None else num_val,
        "test": PUBLISHED_SIZES[name]["test"] if num_test is None else num_test,
    }
    return {
        split: SBMDataset(root, name, split=split, num_graphs=n, seed=seed, progress=progress)
        for split, n in sizes.items()
    }
