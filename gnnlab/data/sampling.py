"""Neighbour sampling on PyG's own loaders.

PyG's ``NeighborLoader`` (node tasks) and ``LinkNeighborLoader`` (link tasks) do the batching, the
feature filtering and, for links, the negative sampling; their sampling step is a
``torch_geometric.sampler.NeighborSampler``, which needs ``pyg-lib`` or ``torch-sparse``. Where
neither is installed, :class:`GnnlabNeighborSampler` (a subclass) samples with
:func:`gnnlab.ops.neighbor_sample` instead and is handed to the loaders through their
``neighbor_sampler=`` argument. :func:`make_neighbor_sampler` chooses (``engine="auto"``: PyG's own
sampler when it can run, gnnlab's otherwise). The data modules built on these loaders are in
:mod:`gnnlab.data.sampled`.
"""
from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.loader import LinkNeighborLoader, NeighborLoader
from torch_geometric.sampler import NeighborSampler, SamplerOutput
from torch_geometric.sampler.base import SubgraphType

from gnnlab.errors import ConfigError
from gnnlab.ops import neighbor_sample

__all__ = [
    "ENGINES",
    "GnnlabNeighborSampler",
    "link_neighbor_loader",
    "make_neighbor_sampler",
    "node_neighbor_loader",
    "pyg_sampler_available",
]

#: Values of ``engine``: ``"auto"`` (PyG's sampler when pyg-lib or torch-sparse is installed, else
#: gnnlab's), ``"pyg"`` (PyG's, an ``ImportError`` without them), ``"gnnlab"``.
ENGINES = ("auto", "pyg", "gnnlab")


def pyg_sampler_available() -> bool:
    """Whether PyG's own ``NeighborSampler`` can sample here (``pyg-lib`` or ``torch-sparse`` is installed)."""
    import torch_geometric.typing as pyg_typing

    return bool(pyg_typing.WITH_PYG_LIB or pyg_typing.WITH_TORCH_SPARSE)


class GnnlabNeighborSampler(NeighborSampler):
    """PyG's ``NeighborSampler`` whose homogeneous sampling step is :func:`gnnlab.ops.neighbor_sample`.

    Everything else is PyG's: the CSC conversion of the graph (``colptr``/``row``/``perm``, built once
    here), :meth:`sample_from_nodes` / :meth:`sample_from_edges` (seed handling, negative sampling for
    links, ``subgraph_type="bidirectional"``), and the loaders that filter features with the
    ``SamplerOutput`` this sampler returns: ``node`` (seeds first, then hop by hop), ``row``/``col``
    (local source/target: messages flow from a sampled neighbour to the node it was drawn for),
    ``edge`` (CSC position; the loaders map it through ``perm`` to ``e_id``), ``num_sampled_nodes``
    and ``num_sampled_edges``.

    Supported: homogeneous ``Data``, ``disjoint=False``, ``subgraph_type`` ``"directional"`` or
    ``"bidirectional"``, ``replace`` either way, fan-outs ``-1`` (all) or ``>= 0``. Heterogeneous
    graphs, temporal (``time_attr``), weighted (``weight_attr``), disjoint and induced-subgraph sampling
    raise ``NotImplementedError`` (install ``pyg-lib`` and use ``engine="pyg"`` for them).

    Randomness: every sampling call draws its seed from ``generator``. In the main process (``num_workers=0``)
    pass the loader's generator, so a fixed seed gives the same batches; inside a ``DataLoader``
    worker the call draws from torch's default generator instead, which the loader seeds per worker
    and epoch from its own generator (a generator copied into every worker would repeat one stream).

    Args:
        data: a homogeneous PyG ``Data``.
        num_neighbors: fan-out per hop.
        replace: sample with replacement.
        subgraph_type: ``"directional"`` (default) or ``"bidirectional"``.
        disjoint: must be ``False``.
        generator: source of the sampling seeds (``None``: torch's default generator).
        time_attr, weight_attr: must be ``None``.
        is_sorted, share_memory: as PyG's ``NeighborSampler``.
    """

    def __init__(
        self,
        data: Data,
        num_neighbors: Sequence[int],
        replace: bool = False,
        subgraph_type: str | SubgraphType = "directional",
        disjoint: bool = False,
        generator: torch.Generator | None = None,
        time_attr: str | None = None,
        weight_attr: str | None = None,
        is_sorted: bool = False,
        share_memory: bool = False,
    ):
        name = type(self).__name__
        if not isinstance(data, Data):
            raise NotImplementedError(f"{name} samples homogeneous graphs (a torch_geometric.data.Data), got "
                                      f"{type(data).__name__}; heterogeneous graphs need pyg-lib (engine='pyg')")
        if time_attr is not None:
            raise NotImplementedError(f"{name}: temporal sampling (time_attr={time_attr!r}) is not supported; "
                                      f"it needs pyg-lib (engine='pyg')")
        if weight_attr is not None:
            raise NotImplementedError(f"{name}: weighted sampling (weight_attr={weight_attr!r}) is not supported; "
                                      f"it needs pyg-lib (engine='pyg')")
        if disjoint:
            raise NotImplementedError(f"{name}: disjoint sampling is not supported; it needs pyg-lib (engine='pyg')")
        if SubgraphType(subgraph_type) == SubgraphType.induced:
            raise NotImplementedError(f"{name}: subgraph_type='induced' is not supported; use 'directional' or "
                                      f"'bidirectional', or torch-sparse (engine='pyg')")
        if isinstance(num_neighbors, Mapping):
            raise NotImplementedError(f"{name}: per-edge-type fan-outs are for heterogeneous graphs; give a list")
        with warnings.catch_warnings():
            # PyG warns that sampling without pyg-lib is deprecated: this class is the replacement.
            warnings.filterwarnings("ignore", message=".*pyg-lib.*")
            super().__init__(data, num_neighbors=list(num_neighbors), subgraph_type=subgraph_type, replace=replace,
                             disjoint=False, is_sorted=is_sorted, share_memory=share_memory)
        self.generator = generator
        # The graph's CSC is checked once, here (with the fan-outs); each batch then checks only its seeds.
        neighbor_sample(self.colptr, self.row, self.colptr[:0], self.num_neighbors.values, replace, seed=0)

    def _seed_generator(self) -> torch.Generator | None:
        """The generator of this call's seed: ours in the main process, torch's default one in a loader worker."""
        return None if torch.utils.data.get_worker_info() is not None else self.generator

    def _sample(self, seed, seed_time=None, **kwargs) -> SamplerOutput:
        """Sample the ``num_neighbors`` hops around ``seed`` with :func:`gnnlab.ops.neighbor_sample`."""
        if isinstance(seed, dict):
            raise NotImplementedError(f"{type(self).__name__}: heterogeneous seeds are not supported")
        if seed_time is not None:
            raise NotImplementedError(f"{type(self).__name__}: temporal sampling (seed_time) is not supported")
        out = neighbor_sample(self.colptr, self.row, seed, self.num_neighbors.get_mapped_values(), self.replace,
                              generator=self._seed_generator(), check_graph=False)
        return SamplerOutput(node=out.node, row=out.src, col=out.dst, edge=out.edge, batch=None,
                             num_sampled_nodes=out.num_sampled_nodes, num_sampled_edges=out.num_sampled_edges)


def check_engine(engine: str) -> str:
    """The sampler ``engine`` (one of :data:`ENGINES`) resolves to, ``"pyg"`` or ``"gnnlab"``; ``ImportError``
    for ``"pyg"`` where PyG's sampler cannot run."""
    if engine not in ENGINES:
        raise ConfigError(f"sampler engine must be one of {ENGINES}, got {engine!r}")
    if engine == "pyg" and not pyg_sampler_available():
        raise ImportError("engine='pyg': PyG's NeighborSampler needs pyg-lib or torch-sparse, and neither is "
                          "installed; use engine='gnnlab' (or 'auto')")
    return "pyg" if engine == "pyg" or (engine == "auto" and pyg_sampler_available()) else "gnnlab"


def make_neighbor_sampler(data: Data, num_neighbors: Sequence[int], replace: bool = False, engine: str = "auto",
                          generator: torch.Generator | None = None, **kwargs) -> NeighborSampler:
    """The neighbour sampler for PyG's loaders: PyG's own or :class:`GnnlabNeighborSampler`.

    Args:
        engine: ``"auto"`` (PyG's when ``pyg-lib`` or ``torch-sparse`` is installed, else gnnlab's),
            ``"pyg"`` or ``"gnnlab"``.
        generator: seeds gnnlab's sampler (PyG's own draws from torch's default generator).
        kwargs: further arguments of the sampler (``subgraph_type``, ``is_sorted``, ...).

    Raises:
        ConfigError: unknown engine. ImportError: ``engine="pyg"`` without pyg-lib or torch-sparse.
    """
    if check_engine(engine) == "pyg":
        return NeighborSampler(data, num_neighbors=list(num_neighbors), replace=replace, **kwargs)
    return GnnlabNeighborSampler(data, num_neighbors, replace=replace, generator=generator, **kwargs)


def node_neighbor_loader(data: Data, num_neighbors: Sequence[int], input_nodes: Tensor | None, batch_size: int,
                         shuffle: bool = False, replace: bool = False, engine: str = "auto",
                         generator: torch.Generator | None = None, sampler: NeighborSampler | None = None,
                         **kwargs) -> NeighborLoader:
    """PyG's ``NeighborLoader`` over the seeds ``input_nodes`` (a bool mask or node ids; ``None``: all).

    Each batch is a ``Data`` over the sampled nodes: the first ``batch.batch_size`` are the seeds,
    ``n_id``/``e_id`` give the global ids of its nodes/edges, ``edge_index`` holds real edges of
    ``data`` (local ids). ``generator`` shuffles the seeds and seeds gnnlab's sampler; pass ``sampler``
    to reuse one (the CSC conversion of the graph is done once per sampler). Further keyword
    arguments go to the loader (``num_workers``, ``drop_last``, ...).
    """
    if sampler is None:
        sampler = make_neighbor_sampler(data, num_neighbors, replace, engine, generator)
    return NeighborLoader(data, num_neighbors=list(num_neighbors), input_nodes=input_nodes, batch_size=batch_size,
                          shuffle=shuffle, generator=generator, neighbor_sampler=sampler, **kwargs)


def link_neighbor_loader(data: Data, num_neighbors: Sequence[int], edge_label_index: Tensor | None,
                         batch_size: int, edge_label: Tensor | None = None, neg_sampling=None,
                         shuffle: bool = False, replace: bool = False, engine: str = "auto",
                         generator: torch.Generator | None = None, sampler: NeighborSampler | None = None,
                         **kwargs) -> LinkNeighborLoader:
    """PyG's ``LinkNeighborLoader`` over the pairs ``edge_label_index`` ``[2, P]`` (``None``: every edge).

    ``neg_sampling`` is PyG's (``"binary"``, ``"triplet"``, a ``NegativeSampling`` or ``None``); its
    negatives come from torch's default generator (seed it, as ``gnnlab-train`` does). A batch holds
    the sampled subgraph around both ends of its pairs, ``edge_label_index`` in local ids and
    ``edge_label`` (binary: 1 for positives, 0 for negatives), plus ``n_id``/``e_id``. ``generator``
    shuffles the pairs and seeds gnnlab's sampler.
    """
    if sampler is None:
        sampler = make_neighbor_sampler(data, num_neighbors, replace, engine, generator)
    return LinkNeighborLoader(data, num_neighbors=list(num_neighbors), edge_label_index=edge_label_index,
                              edge_label=edge_label, neg_sampling=neg_sampling, batch_size=batch_size,
                              shuffle=shuffle, generator=generator, neighbor_sampler=sampler, **kwargs)
