"""The protocol shared by global mixers, and the input checks and batch helpers they use."""
from __future__ import annotations

import torch
from torch import Tensor

from gnnlab.nn.conv.base import check_node_features


class GlobalMixer(torch.nn.Module):
    r"""Base class of the global mixers: token mixing across all nodes of each graph.

    A global mixer is the "global" half of a hybrid layer (the local half being a message-passing
    convolution). Every mixer follows one contract, so that a composition block can take any of
    them as an argument:

    * it is built with its width first, ``Mixer(dim, ...)``, and exposes it as ``self.dim``;
    * ``forward(x, batch=None)`` maps node features ``(N, dim)`` to ``(N, dim)``, where ``batch``
      is the ``(N,)`` integer graph id of each node, sorted ascending as in a PyG ``Batch``
      (:obj:`None` for a single graph); a mixer that reads the graph structure sets ``reads_edges``
      and takes it as a further ``edge_index`` argument, which :class:`~gnnlab.nn.layers.GPSLayer`
      then passes;
    * nodes of different graphs never interact: the output of a graph depends on that graph's
      nodes only, and is the same whether the graph is run alone or batched with others;
    * ``reset_parameters()`` re-initialises the learnable parameters;
    * residual connections, normalisation and dropout on the output belong to the enclosing layer
      (e.g. :class:`gnnlab.nn.layers.GPSLayer`), not to the mixer.

    Mixers that see every node of a graph symmetrically (attention, linear attention) are
    equivariant to reordering the nodes within a graph; sequence mixers (e.g. state-space models)
    are not, and say in their docstring which node order they read. Invalid inputs raise
    :class:`ValueError` (see :func:`check_mixer_inputs`).

    Attributes:
        dim (int): Width of the node features read and written.
    """

    dim: int
    #: Whether ``forward`` needs the graph's ``edge_index`` (``forward(x, batch, edge_index=...)``).
    reads_edges: bool = False

    def forward(self, x: Tensor, batch: Tensor | None = None) -> Tensor:  # pragma: no cover - abstract
        """Mix ``x`` ``(N, dim)`` within each graph of ``batch`` ``(N,)``; returns ``(N, dim)``."""
        raise NotImplementedError

    def reset_parameters(self) -> None:  # pragma: no cover - abstract
        """Re-initialise the learnable parameters."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.dim})"


def check_heads(name: str, dim: int, num_heads: int) -> int:
    """Return the per-head width ``dim // num_heads``, raising ``ValueError`` if it is not a positive integer."""
    if num_heads < 1:
        raise ValueError(f"{name}: num_heads must be a positive integer, got {num_heads}")
    if dim < 1 or dim % num_heads != 0:
        raise ValueError(f"{name}: dim={dim} is not divisible by num_heads={num_heads}")
    return dim // num_heads


def check_mixer_inputs(name: str, x: Tensor, batch: Tensor | None, dim: int) -> None:
    """Raise ``ValueError`` unless ``x`` is ``(N, dim)`` and ``batch`` is :obj:`None` or sorted ``(N,)`` graph ids.

    Args:
        name: name of the calling mixer, used in the messages.
        x: node features.
        batch: graph id of each node; integer, non-negative and non-decreasing.
        dim: the width the mixer was built for.
    """
    check_node_features(name, x, dim, "the mixer was built with dim")
    if batch is None:
        return
    if not isinstance(batch, Tensor):
        raise ValueError(f"{name}: batch must be a torch.Tensor or None, got {type(batch).__name__}")
    if batch.dim() != 1 or batch.numel() != x.size(0):
        raise ValueError(
            f"{name}: batch must have shape [num_nodes={x.size(0)}] (one graph id per row of x), "
            f"got {list(batch.shape)}"
        )
    if batch.dtype.is_floating_point or batch.dtype.is_complex or batch.dtype == torch.bool:
        raise ValueError(f"{name}: batch must hold integer graph ids, got dtype {batch.dtype}")
    if batch.numel() and int(batch[0]) < 0:
        raise ValueError(f"{name}: batch has negative graph ids")
    if batch.numel() > 1 and bool((batch[1:] < batch[:-1]).any()):
        raise ValueError(f"{name}: batch must be sorted ascending (nodes grouped by graph, as in a PyG Batch)")


def num_graphs(batch: Tensor) -> int:
    """Number of graphs ``B = batch[-1] + 1`` of a sorted, non-empty ``batch`` (0 when empty)."""
    return int(batch[-1]) + 1 if batch.numel() else 0


def init_projections(in_proj: torch.nn.Linear, out_proj: torch.nn.Linear) -> None:
    """Initialise q/k/v and output projections as :class:`torch.nn.MultiheadAttention` does:
    Xavier-uniform input projection, default output projection, zero biases."""
    torch.nn.init.xavier_uniform_(in_proj.weight)
    out_proj.reset_parameters()
    for lin in (in_proj, out_proj):
        if lin.bias is not None:
            torch.nn.init.zeros_(lin.bias)
