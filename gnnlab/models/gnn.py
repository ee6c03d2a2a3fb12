"""Message-passing networks for node- and graph-level tasks: encoder → layers → (pool) → MLP head."""
from __future__ import annotations

from typing import Callable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from gnnlab.nn.pe.base import graph_index
from gnnlab.ops import Graph, coo_to_csr, neighbor_sample

LayerFactory = Callable[[int, int], torch.nn.Module]
EncoderFactory = Callable[..., torch.nn.Module]


class _ReLUMLP(torch.nn.Module):
    """Hidden maps ``widths[0] → … → widths[-1]`` (ReLU after each), then ``widths[-1] → out``."""

    def __init__(self, widths: list[int], out_channels: int):
        super().__init__()
        self.lins = torch.nn.ModuleList(torch.nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.out = torch.nn.Linear(widths[-1], out_channels)

    def forward(self, x: Tensor) -> Tensor:
        """Apply the MLP row-wise."""
        for lin in self.lins:
            x = F.relu(lin(x))
        return self.out(x)


class MLPReadout(_ReLUMLP):
    r"""The Benchmarking-GNNs readout MLP: widths halve at each hidden layer.

    ``in → in/2 → in/4 → … → out`` with ReLU between layers (``num_hidden`` hidden layers).

    Args:
        in_channels (int): Input width.
        out_channels (int): Output width (classes or targets).
        num_hidden (int, optional): Number of hidden layers. (default: :obj:`2`)
    """

    def __init__(self, in_channels: int, out_channels: int, num_hidden: int = 2):
        super().__init__([max(in_channels // 2**k, 1) for k in range(num_hidden + 1)], out_channels)


class MLPHead(_ReLUMLP):
    r"""A constant-width MLP head (GraphGym's ``layers_post_mp``, as GraphGPS uses it).

    ``in → hidden → … → hidden → out`` with ReLU after every hidden layer: ``num_layers`` linear
    maps in all, no normalisation or dropout.

    Args:
        in_channels (int): Input width.
        out_channels (int): Output width.
        num_layers (int, optional): Number of linear maps (>= 1). (default: :obj:`3`)
        hidden_channels (int, optional): Hidden width. (default: ``in_channels``)
    """

    def __init__(self, in_channels: int, out_channels: int, num_layers: int = 3, hidden_channels: int | None = None):
        if num_layers < 1:
            raise ValueError(f"MLPHead: num_layers must be >= 1, got {num_layers}")
        hidden = hidden_channels or in_channels
        super().__init__([in_channels] + [hidden] * (num_layers - 1), out_channels)


class LayerSumReadout(torch.nn.Module):
    r"""GIN's readout over every depth: one linear map per layer output, summed.

    .. code-block:: text

        out = Σ_k lin_k(h_k)      # h_0 = encoded input, h_k = output of layer k (pooled for graph tasks)

    This is Xu et al.'s graph readout (a linear map of the concatenation of the per-depth readouts,
    written as a sum of per-depth maps), as Benchmarking-GNNs' GIN implements it for graph and node
    tasks.

    Args:
        widths (Sequence[int]): Width of each ``h_k`` (input encoding first).
        out_channels (int): Output width.
    """

    def __init__(self, widths: Sequence[int], out_channels: int):
        super().__init__()
        if len(widths) < 1:
            raise ValueError("LayerSumReadout: needs at least one width")
        self.lins = torch.nn.ModuleList(torch.nn.Linear(w, out_channels) for w in widths)

    def forward(self, hs: Sequence[Tensor]) -> Tensor:
        """Sum of ``lin_k(hs[k])`` over the depths."""
        if len(hs) != len(self.lins):
            raise ValueError(f"LayerSumReadout: got {len(hs)} representations for {len(self.lins)} linear maps")
        out = self.lins[0](hs[0])
        for lin, h in zip(self.lins[1:], hs[1:]):
            out = out + lin(h)
        return out


class GNN(torch.nn.Module):
    r"""A message-passing network assembled from modules.

    .. code-block:: text

        graph = Graph.from_data(data)                # once per pass, shared by PEs and layers
        h = cat(node_encoder(x), *[pe(data, graph) for pe in pe_encoders])   # (N, D); pe_combine="add": a sum
        e = edge_encoder(edge_attr)
        for layer in layers: h, e = layer(h, graph, e)          # each (N, D)
        h = pool(h, batch)      # graph tasks only: (B, D)
        out = head(h)           # (N or B, out); readout="every_layer": head([h_0, …, h_L])

    Every part is passed in, so any layer following the layer contract (:mod:`gnnlab.nn.conv.base`) can be
    used; see :func:`build_gnn`. ``graph`` is a :class:`gnnlab.ops.Graph` with the batch's graph index of every node.

    Args:
        node_encoder (Module): Maps ``data.x`` to ``(N, D)``.
        layers (Sequence[Module]): Message-passing layers.
        head (Module): Maps ``(·, D)`` to the outputs.
        edge_encoder (Module, optional): Maps ``data.edge_attr`` (or, when the graph has none, a
            dummy per-edge input) to ``(E, D)``; :obj:`None` leaves edges without features.
        pool (callable, optional): ``pool(h, batch) -> (B, D)`` for graph-level outputs; :obj:`None`
            for node-level outputs.
        input_dropout (float, optional): Dropout on the encoded node features. (default: :obj:`0.0`)
        pe_encoders (Mapping[str, Module], optional): Positional/structural encoders
            (:mod:`gnnlab.nn.pe`), each ``encoder(data, graph) -> (N, D_pe)``.
        pe_combine (str, optional): ``"concat"`` concatenates the PE encodings to the node encoding, so
            ``node_encoder`` outputs ``D - Σ D_pe`` (GraphGPS); ``"add"`` adds them to it, every encoder then
            being ``D`` wide (Benchmarking-GNNs' GatedGCN-PE, Dwivedi & Bresson's GT). (default: :obj:`"concat"`)
        readout (str, optional): ``"last"`` feeds the head the last layer's output; ``"every_layer"``
            feeds it the list ``[h_0, h_1, …, h_L]`` (each pooled for graph tasks), for a head such as
            :class:`LayerSumReadout`. (default: :obj:`"last"`)
    """

    def __init__(
        self,
        node_encoder: torch.nn.Module,
        layers: Sequence[torch.nn.Module],
        head: torch.nn.Module,
        edge_encoder: torch.nn.Module | None = None,
        pool: Callable[[Tensor, Tensor | None], Tensor] | None = None,
        input_dropout: float = 0.0,
        pe_encoders: Mapping[str, torch.nn.Module] | None = None,
        readout: str = "last",
        pe_combine: str = "concat",
    ):
        super().__init__()
        if readout not in ("last", "every_layer"):
            raise ValueError(f"GNN: readout must be 'last' or 'every_layer', got {readout!r}")
        if pe_combine not in ("concat", "add"):
            raise ValueError(f"GNN: pe_combine must be 'concat' or 'add', got {pe_combine!r}")
        self.readout, self.pe_combine = readout, pe_combine
        self.node_encoder = node_encoder
        self.edge_encoder = edge_encoder
        self.layers = torch.nn.ModuleList(layers)
        self.head = head
        self.pool = pool
        self.input_dropout = input_dropout
        self.pe_encoders = torch.nn.ModuleDict(pe_encoders) if pe_encoders else None

    def node_embeddings(self, data) -> Tensor:
        """Encoders and layers only (no pooling, no head): ``(N, D)``; link-level models use this."""
        return self._embed(data, every_layer=False)[-1]

    def _graph(self, data) -> Graph:
        """The batch's graph structure, built once per forward pass and handed to encoders and layers."""
        if getattr(data, "x", None) is None:
            raise ValueError(f"{type(self).__name__}: the graph has no node features `x`")
        return Graph.from_data(data)

    def _encode_inputs(self, data, graph: Graph) -> tuple[Tensor, Tensor | None]:
        """Encoded node features ``(N, D)`` (with PE, after input dropout) and edge features ``(E, D)`` or None."""
        h = self.node_encoder(data.x)  # (N, D - sum of PE widths) to concatenate, (N, D) to add
        if self.pe_encoders is not None:
            # Each PE encoder reads its own precomputed attributes: (N, D_pe) each.
            encodings = [encoder(data, graph) for encoder in self.pe_encoders.values()]
            if self.pe_combine == "concat":
                h = torch.cat([h, *encodings], dim=-1)  # (N, D)
            else:
                h = h + torch.stack(encodings).sum(0)  # (N, D)
        h = F.dropout(h, p=self.input_dropout, training=self.training)
        edge_attr = None
        if self.edge_encoder is not None:
            raw = getattr(data, "edge_attr", None)
            if raw is None:  # featureless edges: one dummy row per edge
                raw = data.edge_index.new_zeros(data.edge_index.size(1))
            edge_attr = self.edge_encoder(raw)  # (E, D)
        return h, edge_attr

    def _layer_inputs(self, data, h: Tensor) -> dict:
        """Further keyword arguments of every layer call, built once per pass after the inputs are encoded
        (the token sequences of :class:`~gnnlab.models.GMN` and :class:`~gnnlab.models.GSMPlusPlus`)."""
        return {}

    def _embed(self, data, every_layer: bool) -> list[Tensor]:
        """``[h_0, …, h_L]`` (encoded input, then every layer's output) or just ``[h_L]``; every layer is called
        as ``layer(h, graph, edge_attr, **self._layer_inputs(data, h_0))``."""
        graph = self._graph(data)
        h, edge_attr = self._encode_inputs(data, graph)
        layer_kwargs = self._layer_inputs(data, h)
        hs = [h] if every_layer else []
        for layer in self.layers:
            h, edge_attr = layer(h, graph, edge_attr, **layer_kwargs)
            if every_layer:
                hs.append(h)
        return hs if every_layer else [h]

    def forward(self, data) -> Tensor:
        """Run on a PyG ``Data``/``Batch``; returns node outputs ``(N, out)`` or graph outputs ``(B, out)``."""
        hs = self._embed(data, every_layer=self.readout == "every_layer")
        if self.pool is not None:
            batch = graph_index(data, hs[0].size(0), hs[0].device)
            hs = [self.pool(h, batch) for h in hs]  # each (B, D_k)
        return self.head(hs) if self.readout == "every_layer" else self.head(hs[-1])

    @torch.no_grad()
    def layerwise_inference(self, data, batch_size: int = 4096) -> Tensor:
        """Node outputs ``(N, out)`` on the whole graph, computed layer by layer, ``batch_size`` targets at a time.

        For each layer in turn, the targets are cut into chunks; each chunk is run through the layer
        on its 1-hop subgraph (the chunk, all its in-neighbours and every edge into the chunk,
        :func:`gnnlab.ops.neighbor_sample` with fan-out ``-1``), reading the previous layer's outputs
        of all nodes. Memory is ``O(N · D)`` for two layers' outputs plus one chunk's subgraph, never the
        L-hop neighbourhood a mini-batch forward would expand, so this is how a model trained on sampled
        batches is evaluated on a graph too large for :meth:`forward`. In eval mode the result equals
        ``self(data)`` up to float rounding.

        Args:
            data: a PyG ``Data`` with ``x`` and ``edge_index``.
            batch_size: target nodes per chunk.

        Raises:
            RuntimeError: the model is in training mode (batch norm and dropout would not act per node).
            ValueError: a part that cannot be computed per chunk of targets: graph pooling, positional
                encoders, edge features, per-pass layer inputs (GMN, GSM++), or a layer whose output at a
                node depends on more than the node and its in-edges (``layer.layerwise`` is not true:
                a global mixer, GCN's degree normalisation of the neighbours).
        """
        name = type(self).__name__
        if self.training:
            raise RuntimeError(f"{name}.layerwise_inference runs in eval mode (call model.eval()): in training "
                               f"mode batch norm and dropout would not act node by node")
        problems = []
        if self.pool is not None:
            problems.append("graph pooling (graph-level outputs)")
        if self.pe_encoders is not None:
            problems.append(f"positional encoders {sorted(self.pe_encoders)}")
        if self.edge_encoder is not None:
            problems.append("an edge encoder (edge features)")
        if type(self)._layer_inputs is not GNN._layer_inputs:
            problems.append("per-pass layer inputs (token sequences)")
        not_local = [f"{i} ({type(getattr(layer, 'conv', layer)).__name__})"
                     for i, layer in enumerate(self.layers) if not getattr(layer, "layerwise", False)]
        if not_local:
            problems.append(f"layers {', '.join(not_local)} whose output at a node depends on more than the node "
                            f"and its in-edges")
        if problems:
            raise ValueError(f"{name}.layerwise_inference cannot run this model chunk by chunk: it has "
                             f"{'; '.join(problems)}. Use model(data) on the whole graph instead")
        if batch_size < 1:
            raise ValueError(f"{name}.layerwise_inference: batch_size must be >= 1, got {batch_size}")
        if getattr(data, "x", None) is None:
            raise ValueError(f"{name}: the graph has no node features `x`")
        num_nodes = data.x.size(0)
        # Rows = targets: row i lists the sources of the edges j -> i (the neighbours i aggregates).
        rowptr, col, _ = coo_to_csr(data.edge_index.flip(0), num_nodes)
        h = self.node_encoder(data.x)  # (N, D), row-wise
        hs = [h] if self.readout == "every_layer" else []
        for layer in self.layers:
            out = None
            for start in range(0, num_nodes, batch_size):
                targets = torch.arange(start, min(start + batch_size, num_nodes), device=h.device)
                # Fan-out -1 draws nothing at random: the chunk first, then its in-neighbours.
                hop = neighbor_sample(rowptr, col, targets, [-1], seed=0, check_graph=False)  # CSR built above
                sub = Graph.from_edge_index(torch.stack([hop.src, hop.dst]), hop.node.numel())
                chunk, _ = layer(h.index_select(0, hop.node), sub, None)  # (chunk + neighbours, D')
                if out is None:
                    out = chunk.new_empty(num_nodes, chunk.size(1))
                out[start:start + targets.numel()] = chunk[: targets.numel()]
            h = out if out is not None else h.new_empty(0, h.size(1))
            if hs:
                hs.append(h)
        return self.head(hs) if self.readout == "every_layer" else self.head(h)


def input_encoders(
    caller: str,
    node_encoder: EncoderFactory,
    hidden_channels: int,
    edge_encoder: EncoderFactory | None = None,
    pe: Mapping[str, Callable[[], torch.nn.Module] | torch.nn.Module] | None = None,
    pe_combine: str = "concat",
) -> dict:
    """Node, PE and edge encoders of a ``hidden_channels``-wide model, as :func:`build_gnn` sizes them.

    Returns the keyword arguments ``node_encoder``, ``pe_encoders`` and ``edge_encoder`` of
    :class:`GNN`; with ``pe_combine="concat"`` the PE widths are taken from the node encoder's share.
    """
    pe_encoders = {name: enc if isinstance(enc, torch.nn.Module) else enc() for name, enc in (pe or {}).items()}
    if pe_combine == "add":
        wrong = {n: e.out_channels for n, e in pe_encoders.items() if int(e.out_channels) != hidden_channels}
        if wrong:
            raise ValueError(f"{caller}: pe_combine='add' needs every PE encoder {hidden_channels} wide "
                             f"(hidden_channels), got {wrong}")
    pe_width = sum(int(enc.out_channels) for enc in pe_encoders.values()) if pe_combine == "concat" else 0
    if pe_width >= hidden_channels:
        raise ValueError(
            f"{caller}: the positional encodings take {pe_width} of hidden_channels={hidden_channels} "
            f"({', '.join(f'{n}={e.out_channels}' for n, e in pe_encoders.items())}); "
            "the node features need at least one channel"
        )
    return dict(
        node_encoder=node_encoder(out_channels=hidden_channels - pe_width),
        pe_encoders=pe_encoders or None,
        edge_encoder=edge_encoder(out_channels=hidden_channels) if edge_encoder is not None else None,
    )


def build_gnn(
    layer: LayerFactory,
    node_encoder: EncoderFactory,
    out_channels: int,
    hidden_channels: int = 64,
    num_layers: int = 4,
    edge_encoder: EncoderFactory | None = None,
    pool: Callable | None = None,
    head: Callable[[int, int], torch.nn.Module] | None = None,
    input_dropout: float = 0.0,
    last_layer_out: int | None = None,
    pe: Mapping[str, Callable[[], torch.nn.Module] | torch.nn.Module] | None = None,
    readout: str = "last",
    pe_combine: str = "concat",
) -> GNN:
    """Wire a :class:`GNN` from factories (the Hydra ``model`` configs target this function).

    Args:
        layer: ``layer(in, out) -> module``; called ``num_layers`` times.
        node_encoder: ``node_encoder(out_channels=D) -> module``.
        out_channels: number of outputs (classes or regression targets).
        hidden_channels: width ``D``.
        num_layers: number of message-passing layers.
        edge_encoder: ``edge_encoder(out_channels=D) -> module``, or :obj:`None`.
        pool: graph pooling ``(h, batch) -> (B, D)``, or :obj:`None` for node-level tasks.
        head: ``head(D, out_channels)``; default :class:`MLPReadout`.
        input_dropout: dropout on the encoded node features.
        last_layer_out: width of the last layer's output (Benchmarking-GNNs uses ``out_dim`` ≠
            ``hidden_dim`` for some rows); the head then reads that width.
        pe: positional/structural encoders by name (the ``pe=`` config group fills this):
            modules or zero-argument factories, each with an ``out_channels`` width.
        pe_combine: ``"concat"`` (each encoder's width is taken from the node encoder's share of
            ``hidden_channels``) or ``"add"`` (every encoder ``hidden_channels`` wide, summed onto it).
        readout: ``"last"`` (``head(D_L, out_channels)`` on the last layer) or ``"every_layer"``
            (GIN's readout: the head sees every depth; default head :class:`LayerSumReadout`, a
            custom one is called as ``head(widths, out_channels)`` with the ``L + 1`` widths).
    """
    if num_layers < 1:
        raise ValueError(f"build_gnn: num_layers must be >= 1, got {num_layers}")
    widths = [hidden_channels] * num_layers + [last_layer_out or hidden_channels]
    layers = [layer(widths[i], widths[i + 1]) for i in range(num_layers)]
    inputs = input_encoders("build_gnn", node_encoder, hidden_channels, edge_encoder, pe, pe_combine)
    return GNN(
        **inputs,
        layers=layers,
        head=(head or LayerSumReadout)(widths, out_channels) if readout == "every_layer"
        else (head or MLPReadout)(widths[-1], out_channels),
        pool=pool,
        input_dropout=input_dropout,
        readout=readout,
        pe_combine=pe_combine,
    )


class ConvStack(torch.nn.Module):
    r"""The plain stack of the original GCN/GAT papers: dropout → conv → act, repeated; no encoder/head.

    .. code-block:: text

        h = x
        for conv in convs[:-1]: h = act(conv(dropout(h), graph)[0])
        out = convs[-1](dropout(h), graph)[0]

    With ``conv=GCNConv``, 2 layers, 16 hidden units and dropout 0.5 this is Kipf & Welling's
    Cora model.

    Args:
        conv: factory ``conv(in, out) -> module`` returning a tensor.
        in_channels: raw feature width.
        hidden_channels: hidden width.
        out_channels: number of classes.
        num_layers: number of convolutions (>= 1).
        dropout: dropout on the input of every convolution.
        act: activation factory. (default: :class:`torch.nn.ReLU`)
        last_conv: factory for the last convolution (default: ``conv``); e.g. GAT's single averaged
            output head.
    """

    def __init__(
        self,
        conv: LayerFactory,
        in_channels: int,
        hidden_channels: int,
        out_channels: int,
        num_layers: int = 2,
        dropout: float = 0.5,
        act: Callable[[], torch.nn.Module] = torch.nn.ReLU,
        last_conv: LayerFactory | None = None,
    ):
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"ConvStack: num_layers must be >= 1, got {num_layers}")
        widths = [in_channels] + [hidden_channels] * (num_layers - 1) + [out_channels]
        factories = [conv] * (num_layers - 1) + [last_conv or conv]
        self.convs = torch.nn.ModuleList(f(a, b) for f, a, b in zip(factories, widths[:-1], widths[1:]))
        self.act = act()
        self.dropout = dropout

    def forward(self, data) -> Tensor:
        """Run on a PyG ``Data``; returns ``(N, out_channels)`` logits in the dtype of float ``data.x``.

        Float features keep their dtype (float64 for gradcheck, bfloat16 for mixed precision);
        integer features (counts, one-hot stored as integers) are cast to the parameters' dtype.
        """
        h = data.x
        if not h.is_floating_point():
            h = h.to(next(self.parameters()).dtype)
        graph = Graph.from_edge_index(data.edge_index, h.size(0))
        for i, conv in enumerate(self.convs):
            h = F.dropout(h, p=self.dropout, training=self.training)
            h, _ = conv(h, graph)
            if i < len(self.convs) - 1:
                h = self.act(h)
        return h
