"""Message-passing networks for node- and graph-level tasks: encoder → layers → (pool) → MLP head."""
from __future__ import annotations

import warnings
from typing import Callable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from gnnlab.errors import ConfigError
from gnnlab.models.hops import SampledHops, sampled_hops
from gnnlab.models.readout import LayerSumReadout, MLPReadout
from gnnlab.nn.pe.base import graph_index
from gnnlab.ops import Graph, coo_to_csr, neighbor_sample

__all__ = ["GNN", "build_gnn", "input_encoders"]

LayerFactory = Callable[[int, int], torch.nn.Module]
EncoderFactory = Callable[..., torch.nn.Module]


#: Values of ``GNN(trim_sampled=...)``.
TRIM_MODES = ("auto", "always", "never")


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
        trim_sampled (str or bool, optional): per-layer trimming of neighbour-sampled batches (below):
            ``"auto"`` trims where that is exact and runs the plain forward otherwise; ``"always"``
            (or :obj:`True`) raises ``ValueError`` where it is not; ``"never"`` (or :obj:`False`) never
            trims. (default: :obj:`"auto"`)

    **Trimming sampled batches.** A batch of PyG's ``NeighborLoader`` numbers its nodes seeds first, then
    hop by hop, and lists the edges hop by hop (:func:`sampled_hops`). Only the seeds' outputs are scored,
    and the output of layer ``l`` (0-based, ``L`` layers) at a node reaches the seeds only from within
    ``L - 1 - l`` hops. So, trimmed, layer ``l`` computes its outputs only for the nodes within
    ``L - 1 - l`` hops of the seeds (the last layer: the seeds only), from the edges into them (a prefix of
    ``edge_index``) and the previous outputs of the nodes within ``L - l`` hops, through a
    :class:`~gnnlab.ops.Graph` whose targets are the first rows of its sources (the
    ``supports_prefix_targets`` contract of :mod:`gnnlab.nn.conv.base`); the node encoder reads the nodes
    within ``L`` hops, the head the seeds. :meth:`forward` then returns the seeds' outputs only,
    ``(batch_size, out)``, equal to the first ``batch_size`` rows of the untrimmed forward (the same
    arithmetic per node, up to float rounding; dropout draws other masks from the same distribution).

    Trimming is exact only where no output at a seed depends on nodes outside that neighbourhood other than
    through edges, so it is refused (``"auto"``: the plain forward runs) for graph pooling, positional
    encoders, edge features, per-pass layer inputs, layers without ``layerwise`` and
    ``supports_prefix_targets`` (GCN: its edge weight reads the in-degree of the neighbour, which the
    trimmed graph does not hold), batches without a checked hop structure, and **batch norm in training
    mode**: there its statistics are the mean and variance over the rows a layer computes, all sampled
    nodes untrimmed but only the nodes within ``L - 1 - l`` hops trimmed, so the seeds' outputs, the
    gradients and the running statistics would all change. Keeping them identical would mean computing
    every layer on every node, which is what trimming avoids, so the model keeps the untrimmed semantics
    instead (trimmed statistics would be a different model, not a faster one). In eval mode batch norm
    uses its running statistics row by row, and trimming applies.
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
        trim_sampled: str | bool = "auto",
    ):
        super().__init__()
        if readout not in ("last", "every_layer"):
            raise ValueError(f"GNN: readout must be 'last' or 'every_layer', got {readout!r}")
        if pe_combine not in ("concat", "add"):
            raise ValueError(f"GNN: pe_combine must be 'concat' or 'add', got {pe_combine!r}")
        if edge_encoder is None:
            for i, layer in enumerate(layers):
                readers = [type(m).__name__ for m in layer.modules() if getattr(m, "supports_edge_attr", False)]
                if readers:
                    raise ConfigError(
                        f"GNN: layer {i} ({readers[-1]}) reads edge features, but the model has no edge encoder "
                        "(the data config's edge_encoder is null: this dataset has none). Give it one, e.g. for "
                        "featureless edges 'data.edge_encoder={_target_:gnnlab.nn.encoders.ConstantEncoder,"
                        "_partial_:true}', or choose a conv that reads no edge features (model/conv=gcn, gin, "
                        "sage, gat)")
        self.readout, self.pe_combine = readout, pe_combine
        self.node_encoder = node_encoder
        self.edge_encoder = edge_encoder
        self.layers = torch.nn.ModuleList(layers)
        self.head = head
        self.pool = pool
        self.input_dropout = input_dropout
        self.pe_encoders = torch.nn.ModuleDict(pe_encoders) if pe_encoders else None
        self.trim_sampled = trim_sampled

    @property
    def trim_sampled(self) -> str:
        """Trimming of sampled batches: ``"auto"``, ``"always"`` or ``"never"`` (see the class docstring)."""
        return self._trim_sampled

    @trim_sampled.setter
    def trim_sampled(self, mode: str | bool) -> None:
        mode = {True: "always", False: "never"}.get(mode, mode) if isinstance(mode, bool) else mode
        if mode not in TRIM_MODES:
            raise ValueError(f"{type(self).__name__}: trim_sampled must be one of {TRIM_MODES} (or a bool), "
                             f"got {mode!r}")
        self._trim_sampled = mode

    def _whole_graph_parts(self, flags: tuple[str, ...], unfit: str) -> list[str]:
        """The parts of this model that read more than a node and its in-edges (so neither trimming a sampled
        batch nor layer-wise inference can compute it node by node), and the layers without every one of the
        layer ``flags`` (``unfit`` says what they cannot do)."""
        problems = []
        if self.pool is not None:
            problems.append("graph pooling (graph-level outputs)")
        if self.pe_encoders is not None:
            problems.append(f"positional encoders {sorted(self.pe_encoders)} (computed on the whole batch graph)")
        if self.edge_encoder is not None:
            problems.append("an edge encoder (edge features)")
        if type(self)._layer_inputs is not GNN._layer_inputs:
            problems.append("per-pass layer inputs (token sequences)")
        layers = [f"{i} ({type(getattr(layer, 'conv', layer)).__name__})" for i, layer in enumerate(self.layers)
                  if not all(getattr(layer, flag, False) for flag in flags)]
        if layers:
            problems.append(f"layers {', '.join(layers)} {unfit}")
        return problems

    def trim_obstacles(self) -> list[str]:
        """Why this model, in its current mode, cannot trim sampled batches exactly (empty: it can)."""
        problems = self._whole_graph_parts(("layerwise", "supports_prefix_targets"),
                                           "that cannot compute a prefix of the nodes from their in-edges alone "
                                           "(layerwise and supports_prefix_targets)")
        if self.training:
            norms = sorted({name.split(".")[0] or "model" for name, m in self.named_modules()
                            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)})
            if norms:
                problems.append(f"batch norm in training mode (in {', '.join(norms)}): its statistics over the "
                                f"trimmed rows would differ from those over every sampled node")
        return problems

    def _trim_plan(self, data) -> SampledHops | None:
        """The hop structure to trim ``data`` by, or ``None`` for the plain forward.

        Under ``"always"`` a batch that cannot be trimmed exactly raises ``ValueError`` with the reasons; under
        ``"auto"`` it runs untrimmed, with a warning when the model could trim but a batch that carries
        per-hop counts breaks the hop order (a silent fall-back would hide a slow path)."""
        if self._trim_sampled == "never":
            return None
        strict = self._trim_sampled == "always"
        if getattr(data, "num_sampled_nodes", None) is None and not strict:
            return None  # not a sampled batch: nothing to trim
        problems = self.trim_obstacles()
        if not problems:
            hops, reason = sampled_hops(data)
            if hops is not None:
                return hops
            problems = [reason]
            if not strict:
                warnings.warn(f"{type(self).__name__}: running this sampled batch untrimmed: {reason}", stacklevel=3)
        if strict:
            raise ValueError(f"{type(self).__name__}: cannot trim this batch exactly (trim_sampled='always'): "
                             f"{'; '.join(problems)}. Use trim_sampled='auto' (untrimmed where trimming is not "
                             f"exact) or 'never'")
        return None

    def _trimmed_embed(self, data, hops: SampledHops, every_layer: bool) -> list[Tensor]:
        """The seeds' ``[h_0, …, h_L]`` (or ``[h_L]``), each ``(num_seeds, D_k)``, computing layer ``l`` only on the
        nodes within ``L - 1 - l`` hops of the seeds (see the class docstring)."""
        num_layers, seeds = len(self.layers), hops.num_seeds
        edge_index = data.edge_index
        h = self.node_encoder(data.x[: hops.within(num_layers)])  # nodes within L hops: all a seed can read
        h = F.dropout(h, p=self.input_dropout, training=self.training)
        hs = [h[:seeds]] if every_layer else []
        graphs: dict[tuple[int, int, int], Graph] = {}
        for l, layer in enumerate(self.layers):
            reach = num_layers - 1 - l  # this layer's outputs are read from within `reach` hops of the seeds
            num_out, num_in, num_edges = hops.within(reach), hops.within(reach + 1), hops.edges_into(reach)
            key = (num_out, num_in, num_edges)
            if key not in graphs:
                # The edges into the first num_out nodes are the first num_edges (checked by sampled_hops).
                graphs[key] = Graph.from_edge_index(edge_index[:, :num_edges], num_in, num_dst=num_out)
            if h.size(0) != num_in:  # pragma: no cover (the counts above are consistent by construction)
                raise RuntimeError(f"trimmed layer {l}: {h.size(0)} input rows, expected {num_in}")
            h, _ = layer(h, graphs[key], None)
            if every_layer:
                hs.append(h[:seeds])
        return hs if every_layer else [h[:seeds]]

    def node_embeddings(self, data) -> Tensor:
        """Encoders and layers only (no pooling, no head): ``(N, D)``, never trimmed; link-level models use this."""
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
        """Run on a PyG ``Data``/``Batch``; returns node outputs ``(N, out)`` or graph outputs ``(B, out)``.

        On a neighbour-sampled batch that is trimmed (``trim_sampled``, see the class docstring) it returns the
        seeds' outputs only, ``(batch_size, out)``: the first ``batch_size`` rows of the untrimmed result.
        """
        every_layer = self.readout == "every_layer"
        hops = self._trim_plan(data)
        if hops is not None:
            if getattr(data, "x", None) is None:
                raise ValueError(f"{type(self).__name__}: the graph has no node features `x`")
            hs = self._trimmed_embed(data, hops, every_layer)
            return self.head(hs) if every_layer else self.head(hs[-1])
        hs = self._embed(data, every_layer=every_layer)
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
        of all nodes; a layer with ``supports_prefix_targets`` computes the chunk's rows only (the chunk
        comes first in the subgraph), any other one every row of the subgraph. Memory is ``O(N · D)`` for
        two layers' outputs plus one chunk's subgraph, never the L-hop neighbourhood a mini-batch forward
        would expand, so this is how a model trained on sampled batches is evaluated on a graph too large
        for :meth:`forward`. In eval mode the result equals
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
        problems = self._whole_graph_parts(("layerwise",), "whose output at a node depends on more than the node and "
                                           "its in-edges")
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
                # The chunk's nodes come first in hop.node and every edge goes into one of them: a layer that
                # supports it computes the chunk's rows only, any other one all rows (the chunk's kept).
                prefix = getattr(layer, "supports_prefix_targets", False)
                sub = Graph.from_edge_index(torch.stack([hop.src, hop.dst]), hop.node.numel(),
                                            num_dst=targets.numel() if prefix else None)
                chunk, _ = layer(h.index_select(0, hop.node), sub, None)  # (chunk [+ neighbours], D')
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
    last_layer: LayerFactory | None = None,
    pe: Mapping[str, Callable[[], torch.nn.Module] | torch.nn.Module] | None = None,
    readout: str = "last",
    pe_combine: str = "concat",
    trim_sampled: str | bool = "auto",
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
        last_layer: factory for the last layer only (default: ``layer``), e.g. the single-head GAT
            layer that ends the Benchmarking-GNNs GAT.
        pe: positional/structural encoders by name (the ``pe=`` config group fills this):
            modules or zero-argument factories, each with an ``out_channels`` width.
        pe_combine: ``"concat"`` (each encoder's width is taken from the node encoder's share of
            ``hidden_channels``) or ``"add"`` (every encoder ``hidden_channels`` wide, summed onto it).
        readout: ``"last"`` (``head(D_L, out_channels)`` on the last layer) or ``"every_layer"``
            (GIN's readout: the head sees every depth; default head :class:`LayerSumReadout`, a
            custom one such as :class:`~gnnlab.models.readout.ConcatReadout` is called as ``head(widths, out_channels)`` with the
            ``L + 1`` widths).
        trim_sampled: per-layer trimming of neighbour-sampled batches, ``"auto"``, ``"always"`` or
            ``"never"`` (:class:`GNN`).
    """
    if num_layers < 1:
        raise ValueError(f"build_gnn: num_layers must be >= 1, got {num_layers}")
    widths = [hidden_channels] * num_layers + [last_layer_out or hidden_channels]
    factories = [layer] * (num_layers - 1) + [last_layer or layer]
    layers = [make(widths[i], widths[i + 1]) for i, make in enumerate(factories)]
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
        trim_sampled=trim_sampled,
    )
