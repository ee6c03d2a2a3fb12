"""Input checks, scipy adjacency builders and the cacheable base class shared by the encoding transforms."""
from __future__ import annotations

import hashlib
import numbers

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.transforms import BaseTransform

from gnnlab.ops import validate_edge_index


def check_int(name: str, value, minimum: int = 1) -> int:
    """Return ``value`` as an ``int``; ``ValueError`` unless it is an integer ``>= minimum`` (bools rejected)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_attr(attr) -> str:
    """Return ``attr``; ``ValueError`` unless it is a non-empty string (an attribute name)."""
    if not isinstance(attr, str) or not attr:
        raise ValueError(f"attr must be a non-empty string, got {attr!r}")
    return attr


def check_graph(edge_index: Tensor, num_nodes: int) -> tuple[np.ndarray, int]:
    """Validate a graph and return its edges as a ``[2, E]`` int64 numpy array plus ``num_nodes``."""
    num_nodes = check_int("num_nodes", num_nodes, minimum=0)
    if not isinstance(edge_index, Tensor):
        raise ValueError(f"edge_index must be a torch.Tensor, got {type(edge_index).__name__}")
    validate_edge_index(edge_index, num_nodes)
    return edge_index.detach().cpu().to(torch.int64).numpy(), num_nodes


def graph_of(data) -> tuple[Tensor, int]:
    """``(edge_index, num_nodes)`` of a PyG ``Data``; a graph without ``edge_index`` has no edges."""
    if not isinstance(data, Data):
        raise ValueError(f"expected a torch_geometric Data graph, got {type(data).__name__}")
    num_nodes = data.num_nodes
    if num_nodes is None:
        raise ValueError(f"cannot tell the number of nodes of {data}; set data.num_nodes")
    edge_index = getattr(data, "edge_index", None)
    if edge_index is None:
        edge_index = torch.empty(2, 0, dtype=torch.long)
    return edge_index, int(num_nodes)


def adjacency(
    edges: np.ndarray, num_nodes: int, symmetric: bool = True, self_loops: str = "remove"
) -> sp.csr_array:
    """Binary float64 adjacency ``A`` with ``A[i, j] = 1`` for every edge ``(i, j)``, duplicates merged.

    Args:
        edges: ``[2, E]`` int64 array of valid node ids.
        num_nodes: ``N``.
        symmetric: add every reversed edge (treat the graph as undirected).
        self_loops: ``'remove'`` drops them, ``'keep'`` keeps those in ``edges``, ``'add'`` puts one on
            every node.
    """
    row, col = edges[0], edges[1]
    if self_loops != "keep":
        keep = row != col
        row, col = row[keep], col[keep]
    if symmetric:
        row, col = np.concatenate([row, col]), np.concatenate([col, row])
    if self_loops == "add":
        loop = np.arange(num_nodes, dtype=np.int64)
        row, col = np.concatenate([row, loop]), np.concatenate([col, loop])
    a = sp.csr_array((np.ones(len(row)), (row, col)), shape=(num_nodes, num_nodes))
    a.sum_duplicates()
    a.data[:] = 1.0
    return a


def safe_power(values: np.ndarray, exponent: float) -> np.ndarray:
    """``values ** exponent`` elementwise, with ``0`` where ``values == 0`` (so ``0 ** -0.5`` is 0, not inf)."""
    out = np.zeros_like(values, dtype=np.float64)
    nonzero = values != 0
    out[nonzero] = np.power(values[nonzero], exponent)
    return out


def diag_scale(a: sp.csr_array | np.ndarray, row: np.ndarray, col: np.ndarray) -> sp.csr_array | np.ndarray:
    """``diag(row) @ a @ diag(col)``, dense or sparse like ``a``."""
    if isinstance(a, np.ndarray):
        return row[:, None] * a * col[None, :]
    return sp.csr_array(sp.diags_array(row) @ a @ sp.diags_array(col))


def graph_hash(edges: np.ndarray, num_nodes: int) -> int:
    """A 64-bit digest of the graph's node count and edge set, stable across processes and machines.

    Edge order and duplicates do not matter: the digest is taken over the sorted unique edges.
    """
    keys = np.unique(edges[0].astype(np.int64) * max(num_nodes, 1) + edges[1])
    h = hashlib.blake2b(digest_size=8)
    h.update(np.int64(num_nodes).tobytes())
    h.update(keys.astype("<i8").tobytes())
    return int.from_bytes(h.digest(), "little")


class EncodingTransform(BaseTransform):
    """Base of the encoding transforms: ``repr`` names the class and every parameter, ``cache_key`` adds
    the algorithm version."""

    #: The constructor parameters ``repr`` (and so ``cache_key``) lists, in order.
    _params: tuple[str, ...] = ()
    #: Bumped (per subclass) whenever the computed values change, so stale caches are not reused.
    _version = 1

    @property
    def cache_key(self) -> str:
        """Identifies the computed values: class, every parameter and the algorithm version."""
        return f"{self!r}@v{self._version}"

    def __repr__(self) -> str:
        args = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._params)
        return f"{self.__class__.__name__}({args})"
