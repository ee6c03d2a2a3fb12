"""Link-prediction splits: NCN's random Planetoid split and the official OGB splits.

A :class:`LinkSplit` holds what a link-prediction run needs; :meth:`LinkSplit.train_edge_index` gives
the graph that message passing sees (both directions).

* :func:`planetoid_link_split` regenerates, for a given seed, the 70/10/20 split of Cora, CiteSeer or
  PubMed that NCN (Wang et al., "Neural Common Neighbor with Completion for Link Prediction", ICLR
  2024, ``GraphPKU/NeuralCommonNeighbor``, ``randomsplit`` in ``dataset.py``/``ogbdataset.py``) uses.
  :func:`ncn_random_split` is the same split on any edge list.
* :func:`ogbl_ddi_split` reads ogbl-ddi with its official split, from the offline copy when there is
  one (without importing ``ogb``) and through ``ogb``'s downloader otherwise; :func:`ogbl_split`
  reads the other OGB link datasets through ``ogb``.
"""
from __future__ import annotations

import logging
import math
import os
import pickle
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from gnnlab.data._offline import copy_offline, download_errors, prepare_root
from gnnlab.data.planetoid import load_planetoid
from gnnlab.errors import ConfigError, DataError
from gnnlab.files import write_atomically

__all__ = ["LinkSplit", "ncn_random_split", "planetoid_link_split", "ogbl_ddi_split", "ogbl_split", "OGBL_DDI_DIR"]

log = logging.getLogger(__name__)

_PAIR_FIELDS = ("train_pos", "valid_pos", "valid_neg", "test_pos", "test_neg")


@dataclass(repr=False)
class LinkSplit:
    """One link-prediction split of one graph. Every pair tensor is ``long`` ``[2, E]`` (row 0 the
    source node, row 1 the target).

    Attributes:
        num_nodes: number of nodes; every index lies in ``[0, num_nodes)``.
        x: node features ``[num_nodes, F]``, or ``None`` for a featureless graph (ogbl-ddi).
        train_pos: positive training pairs, each undirected edge stored once with ``i < j`` (as NCN does).
        valid_pos, valid_neg: positive and negative validation pairs.
        test_pos, test_neg: positive and negative test pairs.
        name: the dataset's name (for ``repr`` and logs).
    """

    num_nodes: int
    x: Tensor | None
    train_pos: Tensor
    valid_pos: Tensor
    valid_neg: Tensor
    test_pos: Tensor
    test_neg: Tensor
    name: str = ""

    def __post_init__(self) -> None:
        if isinstance(self.num_nodes, bool) or not isinstance(self.num_nodes, int) or self.num_nodes < 1:
            raise DataError(f"LinkSplit: num_nodes must be a positive int, got {self.num_nodes!r}")
        if self.x is not None and (self.x.dim() < 1 or self.x.size(0) != self.num_nodes):
            raise DataError(f"LinkSplit: x has shape {list(self.x.shape)}, expected {self.num_nodes} rows")
        for key in _PAIR_FIELDS:
            pairs = getattr(self, key)
            if not isinstance(pairs, Tensor) or pairs.dim() != 2 or pairs.size(0) != 2:
                shape = list(pairs.shape) if isinstance(pairs, Tensor) else type(pairs).__name__
                raise DataError(f"LinkSplit: {key} must be a [2, E] tensor, got {shape}")
            if pairs.dtype != torch.long:
                raise DataError(f"LinkSplit: {key} must hold int64 node indices, got {pairs.dtype}")
            if pairs.numel() and (int(pairs.min()) < 0 or int(pairs.max()) >= self.num_nodes):
                raise DataError(f"LinkSplit: {key} has node indices outside [0, {self.num_nodes})")
        if self.train_pos.numel() and bool((self.train_pos[0] >= self.train_pos[1]).any()):
            raise DataError("LinkSplit: train_pos must store each undirected edge once with i < j")

    def train_edge_index(self, include_valid: bool = False) -> Tensor:
        """The message-passing graph: ``train_pos`` in both directions, coalesced (sorted, no duplicates).

        With ``include_valid=True`` the validation positives are added as well (NCN's
        ``--use_valedges_as_input``, used on ogbl-collab to score the test pairs).
        """
        pairs = torch.cat([self.train_pos, self.valid_pos], dim=1) if include_valid else self.train_pos
        both = torch.cat([pairs, pairs.flip(0)], dim=1)
        key = torch.unique(both[0] * self.num_nodes + both[1])  # sorted row-major, duplicates dropped
        return torch.stack([torch.div(key, self.num_nodes, rounding_mode="floor"), key % self.num_nodes])

    def to(self, device: torch.device | str) -> LinkSplit:
        """A copy with every tensor on ``device`` (the object itself is left unchanged)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return LinkSplit(**{key: v.to(device) if isinstance(v, Tensor) else v for key, v in values.items()})

    def sizes(self) -> dict[str, int]:
        """Number of pairs in each of ``train_pos``, ``valid_pos``, ``valid_neg``, ``test_pos``, ``test_neg``."""
        return {key: getattr(self, key).size(1) for key in _PAIR_FIELDS}

    def __repr__(self) -> str:
        n = self.sizes()
        x = "None" if self.x is None else str(list(self.x.shape))
        return (f"LinkSplit(name={self.name!r}, num_nodes={self.num_nodes}, x={x}, train={n['train_pos']}, "
                f"valid={n['valid_pos']}+/{n['valid_neg']}-, test={n['test_pos']}+/{n['test_neg']}-, "
                f"device={self.train_pos.device})")


# ----------------------------------------------------------------------------------- NCN split


def _canonical_pairs(pairs: Tensor, num_nodes: int) -> Tensor:
    """NCN's ``removerepeated``: ``to_undirected`` then keep ``i < j``; i.e. every unordered pair once as
    ``(min, max)``, self-loops dropped, sorted row-major."""
    lo, hi = torch.minimum(pairs[0], pairs[1]), torch.maximum(pairs[0], pairs[1])
    keep = lo < hi
    key = torch.unique(lo[keep] * num_nodes + hi[keep])
    return torch.stack([torch.div(key, num_nodes, rounding_mode="floor"), key % num_nodes])


def _sample_non_edges(row: Tensor, col: Tensor, num_nodes: int, count: int, generator: torch.Generator) -> Tensor:
    """The negatives of PyG's ``train_test_split_edges``, without its dense ``N x N`` mask.

    PyG lists the non-edges ``(i, j)``, ``i < j``, in row-major order (``nonzero`` of the upper triangle
    with the edges ``(row, col)`` zeroed), draws ``torch.randperm(#non-edges)`` and keeps the first
    ``count`` positions. Here the same ``randperm`` is drawn and its positions are mapped to pairs
    arithmetically, so the result is identical while the memory is ``O(#non-edges)`` int64 for the
    permutation only (PyG also materialises the mask and the list of all non-edges).
    """
    n = num_nodes
    ar = torch.arange(n, dtype=torch.long)
    starts = ar * (2 * n - ar - 1) // 2  # position of (i, i + 1) in the row-major upper triangle
    edges = torch.unique(starts[row] + (col - row - 1))  # sorted positions of the edges
    num_free = n * (n - 1) // 2 - edges.numel()
    pick = torch.randperm(num_free, generator=generator)[:count]
    # The t-th non-edge sits at t + #{edges e_k with e_k - k <= t} (e_k - k non-edges precede edge k).
    shift = edges - torch.arange(edges.numel(), dtype=torch.long)
    position = pick + torch.searchsorted(shift, pick, right=True)
    i = torch.searchsorted(starts, position, right=True) - 1
    j = position - starts[i] + i + 1
    return torch.stack([i, j])


def ncn_random_split(
    edge_index: Tensor,
    num_nodes: int,
    seed: int,
    *,
    val_ratio: float = 0.10,
    test_ratio: float = 0.20,
    x: Tensor | None = None,
    name: str = "",
) -> LinkSplit:
    """NCN's ``randomsplit`` of an undirected graph, regenerated from ``seed``; see :func:`planetoid_link_split`.

    The steps, with ``E`` the entries ``(i, j)`` of ``edge_index`` with ``i < j`` in their stored order:

    1. PyG's ``train_test_split_edges(data, val_ratio=test_ratio, test_ratio=test_ratio)`` (NCN passes
       ``test_ratio`` for both): ``n_v = n_t = floor(test_ratio * |E|)``; ``perm = randperm(|E|)``;
       ``E[perm]`` gives validation (first ``n_v``), test (next ``n_t``) and training (the rest)
       positives. Negatives: ``randperm(#non-edges)`` over the pairs ``i < j`` that are not in ``E``,
       listed row-major; the first ``n_v`` are the validation negatives, the next ``n_t`` the test ones.
    2. ``num_val = int(n_v * val_ratio / test_ratio)``; ``randperm(n_v)`` shuffles the validation
       positives; the last ``num_val`` stay in validation, the others go back to training.
    3. Every set goes through ``removerepeated`` (``to_undirected``, then ``i < j``): each pair once as
       ``(min, max)``, sorted row-major.

    The three ``randperm`` calls draw, in that order, from a fresh ``torch.Generator`` seeded with
    ``seed``. It yields the same numbers as the global generator after ``torch.manual_seed(seed)``, which
    is what NCN's ``set_seed(run)`` does right before ``randomsplit``, so seed ``r`` gives NCN's split of
    run ``r`` (as long as ``torch.randperm`` itself is unchanged between the torch versions). The global
    RNG state is neither used nor changed.

    Raises:
        ValueError: ``seed`` not an int, ratios outside ``(0, 1)``, or a graph so small that a split is empty.
    """
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ConfigError(f"ncn_random_split: seed must be an int, got {seed!r}")
    if not (0 < val_ratio <= test_ratio < 0.5):
        raise ConfigError(f"ncn_random_split: need 0 < val_ratio <= test_ratio < 0.5, got {val_ratio}, {test_ratio}")
    if edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise DataError(f"ncn_random_split: edge_index must be [2, E], got {list(edge_index.shape)}")
    generator = torch.Generator().manual_seed(seed)
    row, col = edge_index.detach().cpu().long()
    upper = row < col
    row, col = row[upper], col[upper]
    m = row.numel()
    n_v = n_t = int(math.floor(test_ratio * m))  # NCN passes test_ratio for both
    num_val = int(n_v * val_ratio / test_ratio)  # NCN's expression, evaluated left to right
    if num_val == 0:
        raise DataError(f"ncn_random_split: {m} undirected edges are too few for a {val_ratio}/{test_ratio} split")

    perm = torch.randperm(m, generator=generator)  # RNG call 1
    row, col = row[perm], col[perm]
    valid = torch.stack([row[:n_v], col[:n_v]])
    test = torch.stack([row[n_v:n_v + n_t], col[n_v:n_v + n_t]])
    train = torch.stack([row[n_v + n_t:], col[n_v + n_t:]])

    negatives = _sample_non_edges(row, col, num_nodes, n_v + n_t, generator)  # RNG call 2
    valid_neg, test_neg = negatives[:, :n_v], negatives[:, n_v:n_v + n_t]

    valid = valid[:, torch.randperm(n_v, generator=generator)]  # RNG call 3
    train = torch.cat([train, valid[:, : n_v - num_val]], dim=1)
    valid = valid[:, n_v - num_val:]

    return LinkSplit(
        num_nodes=num_nodes,
        x=x,
        train_pos=_canonical_pairs(train, num_nodes),
        valid_pos=_canonical_pairs(valid, num_nodes),
        valid_neg=_canonical_pairs(valid_neg, num_nodes),
        test_pos=_canonical_pairs(test, num_nodes),
        test_neg=_canonical_pairs(test_neg, num_nodes),
        name=name,
    )


def planetoid_link_split(
    name: str,
    root: str | os.PathLike,
    seed: int,
    *,
    normalize_features: bool = False,
) -> LinkSplit:
    """Cora, CiteSeer or PubMed with NCN's random 70/10/20 edge split for ``seed`` (NCN's runs use 0..9).

    The graph comes from :func:`~gnnlab.data.load_planetoid` (offline copy when present, download
    otherwise); the split is :func:`ncn_random_split` (its steps are listed there), which reproduces NCN's
    ``randomsplit`` pair for pair; the tests check it against that code run literally. PyG's function is
    not called here because it is deprecated (slated for removal) and builds a dense ``N x N`` mask.

    On Cora (5278 undirected edges) every seed gives 3696 training positives, 527 validation positives
    with 1055 validation negatives, and 1055 test positives with 1055 test negatives.

    What NCN's code does that a reader of "random 70/10/20 split" would not assume:

    * The validation set has half the positives of the test set but as many negatives (1055 on
      Cora): the negatives are drawn for the 20/20 split and never halved.
    * The negatives are one fixed draw, without replacement, of pairs that are edges of neither split
      (non-edges of the full graph), so they never collide with positives of any split.
    * The ratios are floored: ``floor(0.2 * 5278) = 1055`` and ``int(1055 * 0.1 / 0.2) = 527`` on Cora, so
      training gets 70.03 %, validation 9.98 %, test 19.99 % of the edges.
    * Features are the raw Planetoid bag-of-words (NCN loads ``Planetoid`` without a transform), hence
      ``normalize_features=False`` by default; pass ``True`` for row-normalised features.
    * Every split is sorted row-major (``removerepeated`` coalesces), so the order carries no randomness.

    PubMed needs about 1.6 GB for the permutation of its ~194 million non-edges (PyG's version needs
    about 5 GB: it also builds the dense mask and the list of all non-edges).
    """
    dataset = load_planetoid(root, name, normalize_features=normalize_features)["train"]
    data = dataset[0]
    return ncn_random_split(data.edge_index, int(data.num_nodes), seed, x=data.x, name=dataset.name)


# ------------------------------------------------------------------------------------- ogbl-ddi

#: Folder of ogbl-ddi below the data root (and below the offline copies); the name ``ogb`` uses.
OGBL_DDI_DIR = "ogbl_ddi"
_DDI_FILES = ("raw/edge.csv.gz", "raw/num-node-list.csv.gz", "split/target/valid.pt", "split/target/test.pt")


def _numpy_safe_globals() -> list:
    """The globals that OGB's split files (pickled numpy int64 arrays) need under ``weights_only=True``."""
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct
    dtype_classes = {type(np.dtype(t)) for t in ("int64", "int32", "float32", "float64")}
    # Files pickled under numpy 1 name numpy.core.multiarray; under numpy 2, numpy._core.multiarray.
    names = {"numpy.core.multiarray._reconstruct", "numpy._core.multiarray._reconstruct"}
    return [*((_reconstruct, name) for name in sorted(names)), np.ndarray, np.dtype, *dtype_classes]


def _load_split_file(path: Path) -> dict:
    """``torch.load`` an OGB split file: a dict of ``[E, 2]`` numpy arrays (or tensors).

    The numpy reconstruction functions are allow-listed so that the file loads with
    ``weights_only=True`` and nothing else in it can run code. Only on a torch too old for that
    allow-list (where ``weights_only`` defaults to ``False`` anyway) is the plain load used.
    """
    try:
        context = torch.serialization.safe_globals(_numpy_safe_globals())
    except (AttributeError, TypeError):  # torch without safe_globals / tuple entries
        log.debug("torch.serialization.safe_globals unavailable; loading %s with weights_only=False", path)
        return torch.load(path, weights_only=False)
    with context:
        try:
            return torch.load(path, weights_only=True)
        except pickle.UnpicklingError as err:
            raise pickle.UnpicklingError(
                f"{path} holds more than OGB's edge arrays; refusing to unpickle it ({err})"
            ) from err


def _pairs(array, key: str, path: Path) -> Tensor:
    t = torch.as_tensor(np.asarray(array) if not isinstance(array, Tensor) else array).long()
    if t.dim() != 2 or t.size(1) != 2:
        raise DataError(f"{path}: '{key}' should be [E, 2], got {list(t.shape)}")
    return t.t().contiguous()


def _download_ogbl_ddi(base: Path, folder: Path) -> None:
    try:
        from ogb.linkproppred import PygLinkPropPredDataset
    except ImportError as err:
        raise ImportError(
            f"ogbl-ddi is not in {folder} and no offline copy ({OGBL_DDI_DIR}/ in shared/data) was found; "
            "downloading it needs the `ogb` package: pip install ogb"
        ) from err
    if folder.is_dir() and not (folder / "RELEASE_v1.txt").exists():
        # ogb would ask on stdin whether to delete the folder.
        raise FileNotFoundError(f"{folder} is an incomplete ogbl-ddi folder; delete it to download ogbl-ddi again")
    from torch_geometric.data.data import Data, DataEdgeAttr, DataTensorAttr
    from torch_geometric.data.storage import GlobalStorage

    log.info("downloading ogbl-ddi into %s with ogb", base)
    # ogb 1.3.x reloads its processed file with torch.load's default, weights_only=True since torch 2.6.
    with torch.serialization.safe_globals([Data, DataEdgeAttr, DataTensorAttr, GlobalStorage]):
        with download_errors("ogbl-ddi", folder, OGBL_DDI_DIR):
            PygLinkPropPredDataset(name="ogbl-ddi", root=str(base))


def ogbl_ddi_split(root: str | os.PathLike) -> LinkSplit:
    """ogbl-ddi (drug-drug interactions) with its official protocol split; the metric is Hits@20.

    4267 nodes, no node features (``x`` is ``None``); 1,067,911 training edges, 133,489 validation
    edges with 101,882 negatives, 133,489 test edges with 95,599 negatives.

    The files live in ``root/ogbl_ddi/`` in OGB's layout. An offline copy (``shared/data/ogbl_ddi``)
    is copied there first; otherwise ``ogb``'s ``PygLinkPropPredDataset`` downloads the dataset (``ogb``
    is imported only then). The files are read directly, so ``ogb`` is not needed when they are present.
    OGB's training split is the whole edge list ``raw/edge.csv.gz``; when ``split/target/train.pt``
    is missing (the offline copy lacks it) it is rebuilt from that list, as ``{"edge": [E, 2] int64}``,
    so the folder is a complete OGB dataset again.

    ``train_pos`` keeps OGB's order but stores every edge as ``(min, max)`` (ogbl-ddi has no self-loops
    or repeated edges); the validation and test pairs are OGB's arrays, transposed, unchanged.
    """
    base = prepare_root(root)
    folder = base / OGBL_DDI_DIR
    copy_offline(OGBL_DDI_DIR, folder)
    if not all((folder / f).exists() for f in _DDI_FILES):
        _download_ogbl_ddi(base, folder)
    missing = [f for f in _DDI_FILES if not (folder / f).exists()]
    if missing:
        raise FileNotFoundError(f"ogbl-ddi in {folder} lacks {', '.join(missing)}")

    num_nodes = int(np.loadtxt(folder / "raw/num-node-list.csv.gz", dtype=np.int64).reshape(-1)[0])
    train_path = folder / "split/target/train.pt"
    if train_path.exists():
        train = _pairs(_load_split_file(train_path)["edge"], "edge", train_path)
    else:
        edges = np.loadtxt(folder / "raw/edge.csv.gz", delimiter=",", dtype=np.int64).reshape(-1, 2)

        def save(tmp: str) -> None:
            torch.save({"edge": torch.from_numpy(edges)}, tmp)
            os.chmod(tmp, 0o644)  # mkstemp creates it private

        write_atomically(train_path, save)
        log.info("rebuilt %s from raw/edge.csv.gz", train_path)
        train = torch.from_numpy(edges).t().contiguous()
    train = torch.stack([torch.minimum(train[0], train[1]), torch.maximum(train[0], train[1])])

    parts = {}
    for split in ("valid", "test"):
        path = folder / f"split/target/{split}.pt"
        content = _load_split_file(path)
        parts[f"{split}_pos"] = _pairs(content["edge"], "edge", path)
        parts[f"{split}_neg"] = _pairs(content["edge_neg"], "edge_neg", path)
    return LinkSplit(num_nodes=num_nodes, x=None, train_pos=train, name="ogbl-ddi", **parts)


OGBL_NAMES = ("ogbl-collab", "ogbl-ppa", "ogbl-citation2", "ogbl-ddi")


def ogbl_split(name: str, root: str | os.PathLike) -> LinkSplit:
    """An OGB link-prediction dataset with its official split, through ``ogb``'s loader (downloads when online).

    ``ogbl-ddi`` goes to :func:`ogbl_ddi_split` (which also reads the offline copy). For the others:

    - ``ogbl-collab``: ``x`` the 128-d paper-embedding features; the training pairs are the unique
      undirected collaborations (OGB lists one entry per year); metric Hits@50, and the test pairs
      are scored on the training graph plus the validation positives (``valid_edges_as_input``).
    - ``ogbl-ppa``: ``x`` the 58-d one-hot species (as float); metric Hits@100.
    - ``ogbl-citation2``: citations taken as undirected for message passing, as NCN does; each
      validation/test positive ``(s, t)`` has 1000 negatives ``(s, t'_1..1000)``, stored row-major in
      ``valid_neg``/``test_neg`` (``[2, 1000·P]``) so :func:`gnnlab.train.metrics.mrr` can view them as
      ``[P, 1000]``.

    Raises:
        ValueError: an unknown name. ImportError: ``ogb`` is not installed (``pip install ogb``).
    """
    if name not in OGBL_NAMES:
        raise ConfigError(f"ogbl_split: unknown dataset {name!r}; expected one of {OGBL_NAMES}")
    if name == "ogbl-ddi":
        return ogbl_ddi_split(root)
    try:
        from ogb.linkproppred import PygLinkPropPredDataset
    except ImportError as err:
        raise ImportError(f"ogbl_split({name!r}) needs the `ogb` package: pip install ogb") from err
    base = prepare_root(root)
    with download_errors(name, base / name.replace("-", "_"), None):
        dataset = PygLinkPropPredDataset(name, root=str(base))
    data, split = dataset[0], dataset.get_edge_split()
    num_nodes = int(data.num_nodes)
    x = None if getattr(data, "x", None) is None else data.x.float()

    parts = {}
    if name == "ogbl-citation2":
        train = _canonical_pairs(torch.stack([split["train"]["source_node"], split["train"]["target_node"]]), num_nodes)
        for key in ("valid", "test"):
            src, dst, neg = split[key]["source_node"], split[key]["target_node"], split[key]["target_node_neg"]
            parts[f"{key}_pos"] = torch.stack([src, dst])
            parts[f"{key}_neg"] = torch.stack([src.repeat_interleave(neg.size(1)), neg.reshape(-1)])
    else:
        train = _canonical_pairs(split["train"]["edge"].t(), num_nodes)
        for key in ("valid", "test"):
            parts[f"{key}_pos"] = split[key]["edge"].t().contiguous()
            parts[f"{key}_neg"] = split[key]["edge_neg"].t().contiguous()
    return LinkSplit(num_nodes=num_nodes, x=x, train_pos=train, name=name, **parts)
