"""Graph Mamba Networks (Behrouz & Hashemi, "Graph Mamba: Towards Learning on Graphs with State Space
Models", KDD 2024, arXiv:2402.08678): tokenize → encode inputs (+ PE/SE) → GMN layers → (pool) → head."""
from __future__ import annotations

from typing import Callable, Mapping

import torch
from torch import Tensor

from gnnlab.models.gnn import GNN, EncoderFactory, input_encoders
from gnnlab.models.readout import MLPReadout
from gnnlab.nn.tokenizers import NeighborhoodTokens, RandomWalkTokenizer, node_tokens

__all__ = ["GMN", "build_gmn"]


class GMN(GNN):
    r"""A Graph Mamba Network (the paper's section 4 and Algorithms 1-2), with parts passed in.

    .. code-block:: text

        h = cat(node_encoder(x), *[pe(data, graph) for pe in pe_encoders])   # (N, D); optional PE/SE (step 5)
        e = edge_encoder(edge_attr)                                    # (E, D)
        tokens = tokenizer(edge_index, N, batch)      # step 1 (+ step 2, ordering): sampled once per pass
        node_order = node_tokens(edge_index, N, batch)   # degree order, for layers with a node-level scan
        for layer in layers: h, e = layer(h, graph, e, tokens=tokens, node_order=node_order)
        h = pool(h, batch)      # graph tasks only: (B, D)
        out = head(h)

    The tokens are shared by every layer of one forward pass: new walks on every pass in training, the
    tokenizer's seeded ones in evaluation, where a graph's outputs do not depend on the rest of its batch.

    Args:
        node_encoder, layers, head, edge_encoder, pool, input_dropout, pe_encoders, pe_combine: as in
            :class:`~gnnlab.models.GNN`; each layer is called as
            ``layer(h, graph, edge_attr, tokens=, node_order=)`` (a :class:`~gnnlab.nn.layers.GMNLayer`).
        tokenizer (RandomWalkTokenizer): the tokenization (``m``, ``M``, ``s``, evaluation seed).
    """

    def __init__(self, node_encoder: torch.nn.Module, layers, head: torch.nn.Module, tokenizer: RandomWalkTokenizer,
                 edge_encoder: torch.nn.Module | None = None, pool: Callable | None = None, input_dropout: float = 0.0,
                 pe_encoders: Mapping[str, torch.nn.Module] | None = None, pe_combine: str = "concat"):
        super().__init__(node_encoder=node_encoder, layers=layers, head=head, edge_encoder=edge_encoder, pool=pool,
                         input_dropout=input_dropout, pe_encoders=pe_encoders, pe_combine=pe_combine)
        self.tokenizer = tokenizer

    def _layer_inputs(self, data, h: Tensor) -> dict:
        batch = getattr(data, "batch", None)
        num_graphs = getattr(data, "num_graphs", None) if batch is not None else None
        tokens = self.tokenizer(data.edge_index, h.size(0), batch, num_graphs)
        node_order = None
        if isinstance(tokens, NeighborhoodTokens) and any(getattr(layer, "node_ssm", None) is not None
                                                          for layer in self.layers):
            node_order = node_tokens(data.edge_index, h.size(0), batch, num_graphs)  # degree order per graph
        return {"tokens": tokens, "node_order": node_order}


def build_gmn(
    layer: Callable[..., torch.nn.Module],
    node_encoder: EncoderFactory,
    out_channels: int,
    hidden_channels: int = 64,
    num_layers: int = 4,
    m: int = 2,
    M: int = 2,
    s: int = 1,
    eval_seed: int = 0,
    edge_encoder: EncoderFactory | None = None,
    pool: Callable | None = None,
    head: Callable[[int, int], torch.nn.Module] | None = None,
    input_dropout: float = 0.0,
    pe: Mapping[str, Callable[[], torch.nn.Module] | torch.nn.Module] | None = None,
    pe_combine: str = "concat",
) -> GMN:
    """Wire a :class:`GMN` (the Hydra ``model=gmn`` config targets this; same data/PE interface as :func:`build_gnn`).

    Args:
        layer: ``layer(D, D, subgraph_tokens=m >= 1) -> module``, e.g. a :func:`gnnlab.nn.layers.gmn_layer`
            partial; called ``num_layers`` times.
        m, M, s: tokenization: largest walk length (``0``: node tokens ordered by degree), walks per
            token, tokens per walk length (:class:`~gnnlab.nn.tokenizers.RandomWalkTokenizer`).
        eval_seed: seed of the evaluation walks.
        Other arguments as in :func:`build_gnn`.
    """
    if num_layers < 1:
        raise ValueError(f"build_gmn: num_layers must be >= 1, got {num_layers}")
    tokenizer = RandomWalkTokenizer(m, M, s, eval_seed=eval_seed)
    layers = [layer(hidden_channels, hidden_channels, subgraph_tokens=tokenizer.subgraph_tokens)
              for _ in range(num_layers)]
    return GMN(
        **input_encoders("build_gmn", node_encoder, hidden_channels, edge_encoder, pe, pe_combine),
        layers=layers,
        head=(head or MLPReadout)(hidden_channels, out_channels),
        tokenizer=tokenizer,
        pool=pool,
        input_dropout=input_dropout,
        pe_combine=pe_combine,
    )
