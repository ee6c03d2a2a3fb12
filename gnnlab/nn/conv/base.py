r"""The layer contract of gnnlab: how every message-passing convolution and layer is called.

.. code-block:: python

    graph = Graph.from_data(batch)                 # once per batch (a model does this at its entry)
    x_out, edge_out = conv(x, graph, edge_attr)    # every conv, every layer

* ``x``: node features ``[N, in_channels]``; ``graph``: the batch's :class:`gnnlab.ops.Graph` over the
  same ``N`` nodes, messages flowing from ``graph.edge_index[0]`` (source) to ``graph.edge_index[1]``
  (target); ``edge_attr``: ``[E, D]`` rows in the order of ``graph.edge_index``, or ``None``.
* The result is always the pair ``(x_out, edge_out)``: ``x_out`` is ``[N, out_channels]``;
  ``edge_out`` is the updated edge features for layers that update them (GatedGCN, the Graph
  Transformer with edge channels), the given ``edge_attr`` for layers that only read them, and
  ``None`` for convolutions that take no edge features.
* A convolution that reads edge features sets the class attribute ``supports_edge_attr = True`` (or the
  instance attribute, where a constructor argument decides) and then needs them: :class:`gnnlab.models.GNN`
  refuses such a layer without an edge encoder. One that does not read them raises ``ValueError`` when
  given some (instead of ignoring them). Composition blocks
  (:class:`gnnlab.nn.layers.ConvLayer`, :class:`gnnlab.nn.layers.GPSLayer`) hand ``edge_attr`` only to
  convolutions that read it and carry it past the others, so any conv that follows this contract works
  in every block and model.
* A convolution whose output at node ``i`` depends only on ``x_i`` and the edges into ``i`` (with the
  features of their sources) sets ``layerwise = True``; :meth:`gnnlab.models.GNN.layerwise_inference`
  then computes it a chunk of target nodes at a time on their 1-hop subgraph. Unset means no.
* A convolution that sets ``supports_prefix_targets = True`` also accepts a graph with fewer targets than
  sources, ``graph.num_dst <= graph.num_src == x.size(0)``, whose targets are the first ``graph.num_dst``
  rows of ``x`` (local ids shared by both sides: target ``i`` is source ``i``); it then returns
  ``graph.num_dst`` rows and computes nothing for the other sources beyond reading their features.
  Neighbour-sampled batches are numbered so (seeds first, then hop by hop), and
  :class:`gnnlab.models.GNN` uses this to compute each layer only where later layers read it
  (trimming) and :meth:`~gnnlab.models.GNN.layerwise_inference` to compute only a chunk's targets.
  Unset means no (the graph must then be square).

The checks below are what every convolution runs on its inputs (:func:`check_inputs` runs them all).
"""
from __future__ import annotations

import torch
from torch import Tensor

from gnnlab.ops import Graph

__all__ = ["check_conv_inputs", "check_edge_attr", "check_inputs", "check_node_features", "reject_edge_attr"]


def check_node_features(owner: str, x: Tensor, width: int, built: str) -> None:
    """Raise ``ValueError`` unless ``x`` is a 2-D tensor ``[N, width]``; ``built`` ends the width message
    (e.g. ``"the layer was built with in_channels"``)."""
    if not isinstance(x, Tensor):
        raise ValueError(f"{owner}: x must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 2:
        raise ValueError(f"{owner}: x must be 2-D [num_nodes, {width}], got shape {list(x.shape)}")
    if x.size(1) != width:
        raise ValueError(f"{owner}: x has {x.size(1)} features per node but {built}={width}")


def check_conv_inputs(layer: str, x: Tensor, graph: Graph, in_channels: int, prefix_targets: bool = False) -> None:
    """Raise ``ValueError`` unless ``x`` is ``[N, in_channels]`` and ``graph`` a :class:`~gnnlab.ops.Graph` over
    ``N`` nodes (with ``prefix_targets``: ``N`` sources and at most ``N`` targets, the first rows of ``x``).

    Args:
        layer: name of the calling layer, used in the messages.
        x: node features.
        graph: the batch's graph structure.
        in_channels: feature width the layer was built for.
        prefix_targets: the layer supports ``graph.num_dst < graph.num_src`` (``supports_prefix_targets``).
    """
    check_node_features(layer, x, in_channels, "the layer was built with in_channels")
    if not isinstance(graph, Graph):
        hint = " (build it once per batch with gnnlab.ops.Graph.from_edge_index or Graph.from_data)" \
            if isinstance(graph, Tensor) else ""
        raise ValueError(f"{layer}: graph must be a gnnlab.ops.Graph, got {type(graph).__name__}{hint}")
    if prefix_targets:
        if graph.num_src != x.size(0) or graph.num_dst > x.size(0):
            raise ValueError(f"{layer}: x has {x.size(0)} nodes but the graph has {graph.num_src}/{graph.num_dst} "
                             f"sources/targets (it needs one source per row of x and at most as many targets, "
                             f"the first rows of x)")
    elif graph.num_src != x.size(0) or graph.num_dst != x.size(0):
        raise ValueError(f"{layer}: x has {x.size(0)} nodes but the graph has {graph.num_src}/{graph.num_dst}")


def check_edge_attr(layer: str, edge_attr: Tensor | None, num_edges: int, width: int) -> Tensor:
    """Return ``edge_attr`` as ``[E, width]``, raising ``ValueError`` if it is missing or has another shape.

    A 1-D ``edge_attr`` is accepted when ``width == 1``.

    Args:
        layer: name of the calling layer, used in the messages.
        edge_attr: edge features, one row per edge of the graph (``graph.edge_index`` order).
        num_edges: ``E``, the number of edges.
        width: the feature width the layer expects.
    """
    if edge_attr is None:
        raise ValueError(f"{layer} requires edge_attr of shape [num_edges, {width}], got None")
    if not isinstance(edge_attr, Tensor):
        raise ValueError(f"{layer}: edge_attr must be a torch.Tensor, got {type(edge_attr).__name__}")
    if edge_attr.dim() == 1 and width == 1:
        edge_attr = edge_attr.unsqueeze(-1)
    if edge_attr.dim() != 2 or edge_attr.size(0) != num_edges or edge_attr.size(1) != width:
        raise ValueError(
            f"{layer}: edge_attr must have shape [num_edges={num_edges}, {width}], got {list(edge_attr.shape)}"
        )
    return edge_attr


def reject_edge_attr(layer: str, edge_attr: Tensor | None) -> None:
    """Raise ``ValueError`` if edge features were passed to a layer that would silently ignore them."""
    if edge_attr is not None:
        raise ValueError(
            f"{layer} does not use edge features; pass edge_attr=None "
            "(ConvLayer and GPSLayer do this for convolutions whose supports_edge_attr is False)"
        )


def check_inputs(conv: torch.nn.Module, x: Tensor, graph: Graph, edge_attr: Tensor | None,
                 edge_dim: int | None = None, without: str = "") -> Tensor | None:
    """Run the checks of ``conv(x, graph, edge_attr)``, named after the class of ``conv``: :func:`check_conv_inputs`
    against ``conv.in_channels`` (a graph with fewer targets than sources where ``conv.supports_prefix_targets``),
    then :func:`check_edge_attr` against ``edge_dim`` (its result is returned) or,
    with ``edge_dim=None``, :func:`reject_edge_attr` (``without`` follows the name in its message)."""
    name = type(conv).__name__
    check_conv_inputs(name, x, graph, conv.in_channels, bool(getattr(conv, "supports_prefix_targets", False)))
    if edge_dim is None:
        reject_edge_attr(name + without, edge_attr)
        return None
    return check_edge_attr(name, edge_attr, graph.num_edges, edge_dim)
