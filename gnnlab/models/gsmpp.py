r"""GSM++: hierarchical (HAC) tokenization + local MPNN + hybrid Mamba/Transformer encoder.

Behrouz, Parviz, Karami, Sanford, Perozzi, Mirrokni, "Best of Both Worlds: Advantages of Hybrid Graph
Sequence Models", ICML 2025, arXiv 2411.15671. There is no public code.

.. code-block:: text

    h = cat(node_encoder(x), HPE(data.hac_pe), ...)        # (N, D); pe=hac adds the hierarchical PE
    tokens = hac_tokens(data.hac_index, batch)              # once per batch: tree orders and sequences
    for layer in layers:                                    # GSMPlusPlusLayer
        h = Norm(h + MPNN(h))                               # local encoding
        h = Norm(h + Σ_t g_t · read_t(Enc(tok_t(h))))        # Enc = Mamba × n → Transformer block
        h = Norm(h + FFN(h))
    out = head(pool(h, batch))      # graph tasks; head(h) for node tasks

What the paper fixes and what is chosen here. The paper's full text could not be consulted when
this was written (only its abstract, the caption of its Fig. 2 and public summaries): "GSM++ ... uses
the Hierarchical Affinity Clustering (HAC) algorithm to tokenize the graph into hierarchical
sequences, and then employs a hybrid architecture" of recurrent (SSM) layers and a Transformer
block; Fig. 2 names its three parts, "(1) HAC tokenization, (2) hierarchical PE, and (3) a hybrid
sequence model"; the Mixture of Tokenization (MoT) lets each node use several tokenizations. So no
section or equation numbers beyond those are cited, and every item below is a *choice*:

1. HAC similarity: closed-neighbourhood Jaccard of the endpoints (``similarity='cosine'`` of the
   input features is the alternative), single linkage, ties to the smaller representative
   (:func:`gnnlab.transforms.hac.affinity_clustering`).
2. Traversal (:mod:`gnnlab.nn.tokenizers.hac`): a node's hierarchical sequence is its root-to-node path
   of clusters, coarsest first and the node last; a cluster token is the mean of its members' current
   features plus a learned level embedding. A graph's node-level sequence is the tree's depth-first order.
3. Hierarchical PE: per level, the node's normalised rank among its siblings and the log of the
   branching factor (:func:`gnnlab.transforms.hac.hac_positional_encoding`), batch-normalised and
   projected, concatenated (or added) to the node encoding as any ``pe=`` encoding.
4. Local encoding: one MPNN per layer before the global encoder (default GatedGCN, as GPS).
5. Hybrid encoder: ``num_ssm_layers`` Mamba blocks then one Transformer block, pre-norm residual,
   shared by the tokenizations; per-node read-out at the node's own (last) token. The configs use two
   Mamba blocks: two summaries of the paper describe its Figure 2 encoder as "two SSM layers followed
   by a Transformer block" (the method text itself was not available).
6. MoT: tokenizations ``node`` (graph sequence in tree order), ``hop`` (k-hop summaries) and
   ``hierarchical``; a linear router on the locally encoded node, top-k softmax gating, no
   auxiliary load-balancing loss; every tokenization is computed for every node (the router saves
   no compute).

What secondary summaries of the paper add (its method text is still not available offline, so none of
this is confirmed): the HAC tree is built with Borůvka-style affinity clustering (as item 1); a DFS
path from the root to a leaf is one sequence, the hierarchy of clusters containing that node (as
item 2), and BFS traversal gives one sequence per level of granularity (not built here); the
hierarchical PE is derived from shortest paths between clusters at the tree's granularities, as
multi-scale *relative* encodings (item 3 is an absolute per-node code instead); the hybrid encoder
is a two-layer Mamba + Transformer block (item 5 with ``num_ssm_layers=1``; the configs use 2, after
the other summaries); MoT scores tokenizations with a linear router ``S = σ(X W_r)``, keeps the top 2
per node and concatenates their sequences as the encoder input (item 6 mixes the encoded outputs with
softmax weights instead). These are the known differences to revisit when the text can be read.
"""
from __future__ import annotations

from typing import Callable, Mapping

import torch
from torch import Tensor

from gnnlab.models.gnn import GNN, build_gnn
from gnnlab.nn.tokenizers.hac import hac_tokens

__all__ = ["GSMPlusPlus", "build_gsmpp"]


class GSMPlusPlus(GNN):
    r"""GSM++ (arXiv 2411.15671): a :class:`~gnnlab.models.GNN` whose layers read the batch's HAC tokens.

    Encoders, pooling, head and read-out behave as in :class:`~gnnlab.models.GNN`; the difference is
    that the HAC tree stored by :class:`gnnlab.transforms.HACTree` (``data.{hac_attr}_index``) is
    turned into token sequences once per forward pass (:func:`gnnlab.nn.tokenizers.hac_tokens`)
    and handed to every layer (:class:`gnnlab.nn.layers.GSMPlusPlusLayer`) as ``tokens=``. See the
    module docstring for the choices made where the paper is not specific.

    Args:
        hac_attr (str, optional): Prefix of the HAC attributes. (default: :obj:`'hac'`)
        **kwargs: as :class:`~gnnlab.models.GNN`.
    """

    def __init__(self, *args, hac_attr: str = "hac", **kwargs):
        super().__init__(*args, **kwargs)
        self.hac_attr = hac_attr

    def _layer_inputs(self, data, h: Tensor) -> dict:
        levels = getattr(data, f"{self.hac_attr}_index", None)
        if levels is None:
            raise ValueError(f"GSMPlusPlus: the graph has no `{self.hac_attr}_index`; precompute the HAC tree with "
                             "gnnlab.transforms.HACTree (the `pe=hac` config)")
        batch = getattr(data, "batch", None)
        return {"tokens": hac_tokens(levels, batch, getattr(data, "num_graphs", None) if batch is not None else None)}


def build_gsmpp(
    layer: Callable[[int, int], torch.nn.Module],
    node_encoder: Callable[..., torch.nn.Module],
    out_channels: int,
    hidden_channels: int = 64,
    num_layers: int = 4,
    edge_encoder: Callable[..., torch.nn.Module] | None = None,
    pool: Callable | None = None,
    head: Callable[[int, int], torch.nn.Module] | None = None,
    input_dropout: float = 0.0,
    pe: Mapping[str, Callable[[], torch.nn.Module] | torch.nn.Module] | None = None,
    readout: str = "last",
    pe_combine: str = "concat",
    hac_attr: str = "hac",
) -> GSMPlusPlus:
    """Wire a :class:`GSMPlusPlus` (the ``model=gsmpp`` config targets this function).

    Takes the arguments of :func:`gnnlab.models.build_gnn` (which checks and builds the parts),
    with ``layer`` a GSM++ layer factory (:func:`gnnlab.nn.layers.gsmpp_layer`), plus ``hac_attr``.
    """
    parts = build_gnn(layer, node_encoder, out_channels, hidden_channels, num_layers, edge_encoder, pool, head,
                      input_dropout, pe=pe, readout=readout, pe_combine=pe_combine)
    return GSMPlusPlus(parts.node_encoder, parts.layers, parts.head, parts.edge_encoder, parts.pool, input_dropout,
                       parts.pe_encoders, readout=readout, pe_combine=pe_combine, hac_attr=hac_attr)
