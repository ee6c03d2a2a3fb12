r"""Random-walk neighbourhood tokens of GMN (Behrouz & Hashemi, "Graph Mamba: Towards Learning on
Graphs with State Space Models", KDD 2024, arXiv:2402.08678).

The paper's first step (section 4.1, "Neighborhood Sampling"; Algorithm 1) is *neighbourhood
tokenization*: for a node ``v`` and each walk length ``0 <= m̂ <= m``, ``M`` random walks of length
``m̂`` start at ``v``; the token ``T_m̂(v)`` is the union of the nodes they visit and the token's graph
is the induced subgraph ``G[T_m̂(v)]``; the sampling is repeated ``s`` times ("Why Not More
Subgraphs?"). Token ordering (section 4.1): the sequence is read in the reverse of the initial
order, from the largest walk length down, so that "the last state of the output corresponds to the
walk with length m̂ = 0, i.e., the node itself" (section 4.2). With ``m = 0`` every node is its own
token and the nodes of a graph are ordered by degree (section 4.3). The paper shuffles the ``s``
tokens of one walk length to make the model robust to their order; here they are ``s`` independent
draws already, so their order carries nothing to shuffle away. Layout:

.. code-block:: text

    sequence(v) = [ G[T_m^(1)(v)], …, G[T_m^(s)(v)],  G[T_{m-1}^(1)(v)], …,  G[T_1^(s)(v)],  G[{v}] ]
    T_m̂^(r)(v) = ∪_{i=1..M} nodes of walk i (length m̂, started at v) of repetition r

so every node has ``L = s·m + 1`` tokens (one ``{v}`` token rather than ``s`` identical ones: a walk
of length 0 visits ``v`` alone).

Walks are sampled from a CSR of ``edge_index`` (rows = sources): each step picks one outgoing edge
uniformly; a node without outgoing edges stays where it is. Two sources of randomness:

* a :class:`torch.Generator` (or the global RNG): fresh walks at every call, as in training;
* a fixed integer ``seed``: every step's uniform number is a hash of (seed, the start node's index
  *within its graph*, the token slot, the walk, the step), so the walks of a graph are the same
  whether it is tokenized alone or inside a batch, and across calls (evaluation).
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from gnnlab.nn.ssm import node_degree, order_within_graphs, positions_in_sequence, sequence_offsets
from gnnlab.ops import Graph, coo_to_csr

__all__ = [
    "NeighborhoodTokens",
    "NodeTokens",
    "RandomWalkTokenizer",
    "hashed_uniform",
    "neighborhood_tokens",
    "node_tokens",
    "random_walks",
]

_P = 2**31 - 1  # Mersenne prime: products of two residues fit in int64


def hashed_uniform(key: Tensor, seed: int) -> Tensor:
    """Counter-based uniform numbers in ``[0, 1)`` (float64): a fixed hash of each int64 ``key`` and ``seed``.

    Equal keys give equal numbers on every call and device; keys are expected to be below ``2**62``.
    """
    if key.dtype != torch.long:
        raise ValueError(f"hashed_uniform: key must be int64, got {key.dtype}")
    if key.numel() and int(key.min()) < 0:
        raise ValueError("hashed_uniform: key must be non-negative")
    lo, hi = key % _P, (key // _P) % _P
    x = (lo * 1103515245 % _P + hi * 69621 % _P + (int(seed) % _P) * 48271 % _P + 12345) % _P
    for mult in (48271, 69621, 16807, 48271):  # Lehmer steps mixed with xor-shifts
        x = x ^ (x >> 13)
        x = (x * mult + 7) % _P
        x = x ^ (x >> 11)
    return x.to(torch.float64) / _P


def random_walks(rowptr: Tensor, col: Tensor, start: Tensor, length: int, generator: torch.Generator | None = None,
                 uniforms: Tensor | None = None) -> Tensor:
    """Uniform random walks on a CSR graph, all walks advanced together.

    Args:
        rowptr: ``(N + 1,)`` int64 offsets of each node's outgoing edges in ``col``.
        col: ``(E,)`` target of each edge, grouped by source.
        start: ``(W,)`` int64 start node of each walk.
        length: number of steps (``>= 0``).
        generator: source of the step choices when ``uniforms`` is not given (default: global RNG).
        uniforms: optional ``(W, length)`` numbers in ``[0, 1)`` deciding each step (the neighbour
            ``floor(u · degree)`` in CSR order) instead of drawing them.

    Returns:
        ``(W, length + 1)`` int64 node ids, column 0 the start; a node without outgoing edges repeats.
    """
    if length < 0:
        raise ValueError(f"random_walks: length must be >= 0, got {length}")
    if rowptr.dim() != 1 or col.dim() != 1 or start.dim() != 1:
        raise ValueError("random_walks: rowptr, col and start must be 1-D")
    num_nodes = rowptr.numel() - 1
    if start.numel() and (int(start.min()) < 0 or int(start.max()) >= num_nodes):
        raise ValueError(f"random_walks: start holds node ids outside [0, {num_nodes})")
    if uniforms is None:
        uniforms = torch.rand(start.numel(), length, generator=generator, dtype=torch.float64, device=start.device)
    elif uniforms.shape != (start.numel(), length):
        raise ValueError(f"random_walks: uniforms must be [{start.numel()}, {length}], got {list(uniforms.shape)}")
    col = col.long()
    steps = [start.long()]
    cur = steps[0]
    for t in range(length):
        lo = rowptr[cur]
        degree = rowptr[cur + 1] - lo
        pick = torch.minimum((uniforms[:, t] * degree).long(), (degree - 1).clamp(min=0))
        if col.numel():
            nxt = col[(lo + pick).clamp(max=col.numel() - 1)]
            cur = torch.where(degree > 0, nxt, cur)
        steps.append(cur)
    return torch.stack(steps, dim=1)


class NeighborhoodTokens(NamedTuple):
    """The subgraph tokens of every node, laid out for one batched pass of a local GNN.

    Tokens are numbered sequence by sequence: the tokens of node ``v`` are ``cu_seqlens[v] …
    cu_seqlens[v + 1] - 1`` in scan order (largest walk length first, ``{v}`` last). The members of
    all tokens are listed one token after another (positions ``token_ptr[t] … token_ptr[t+1] - 1``
    hold token ``t``'s nodes, ascending), and ``edge_index`` connects those positions: one disjoint
    copy of each token's induced subgraph.

    Attributes:
        node: ``(P,)`` node id of each member position.
        token: ``(P,)`` token id of each member position (non-decreasing).
        token_ptr: ``(T + 1,)`` offsets of each token's members.
        edge_index: ``(2, F)`` member positions of each induced edge (source, target as in the graph).
        edge_id: ``(F,)`` column of the original ``edge_index`` each induced edge copies.
        cu_seqlens: ``(N + 1,)`` offsets of each node's token sequence.
        walk_length: ``(T,)`` the walk length ``m̂`` of each token (``0`` for ``{v}``).
        walks: ``(N, s·m, M, m + 1)`` the sampled walks: ``walks[v, j, i]`` is walk ``i`` of node ``v``'s
            token ``j``, of which the first ``walk_length[v·(s·m + 1) + j] + 1`` entries count.
        graph: the :class:`~gnnlab.ops.Graph` of ``edge_index`` over the ``P`` member positions, built
            once with the tokens and read by the local GNN of every layer.
    """

    node: Tensor
    token: Tensor
    token_ptr: Tensor
    edge_index: Tensor
    edge_id: Tensor
    cu_seqlens: Tensor
    walk_length: Tensor
    walks: Tensor
    graph: Graph

    @property
    def num_tokens(self) -> int:
        """Number of tokens ``T``."""
        return self.token_ptr.numel() - 1

    @property
    def last(self) -> Tensor:
        """``(N,)`` id of each node's last (most local) token."""
        return self.cu_seqlens[1:] - 1


def _check_graph(name: str, edge_index: Tensor, num_nodes: int, batch: Tensor | None) -> None:
    if edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise ValueError(f"{name}: edge_index must be [2, E], got {list(edge_index.shape)}")
    if edge_index.numel() and (int(edge_index.min()) < 0 or int(edge_index.max()) >= num_nodes):
        raise ValueError(f"{name}: edge_index holds node ids outside [0, {num_nodes})")
    if batch is not None:
        if batch.shape != (num_nodes,):
            raise ValueError(f"{name}: batch must be [{num_nodes}], got {list(batch.shape)}")
        if batch.numel() > 1 and bool((batch[1:] < batch[:-1]).any()):
            raise ValueError(f"{name}: batch must be sorted (nodes grouped by graph, as in a PyG Batch)")


def neighborhood_tokens(edge_index: Tensor, num_nodes: int, m: int, M: int, s: int = 1, batch: Tensor | None = None,
                        generator: torch.Generator | None = None, seed: int | None = None) -> NeighborhoodTokens:
    """Sample the random-walk subgraph tokens of every node (see the module docstring).

    Args:
        edge_index: ``(2, E)`` edges ``source → target``; walks follow them from source to target.
        num_nodes: ``N``.
        m: largest walk length (``>= 1``).
        M: walks per token (``>= 1``).
        s: tokens per walk length (``>= 1``).
        batch: ``(N,)`` sorted graph id of each node (:obj:`None`: one graph); only used with ``seed``,
            to key the walks by the node's index within its graph.
        generator: RNG for fresh walks (default: the global RNG); ignored when ``seed`` is given.
        seed: fixed walks, a function of ``seed`` and each graph alone.

    Returns:
        :class:`NeighborhoodTokens` with ``s·m + 1`` tokens per node.
    """
    name = "neighborhood_tokens"
    for label, value in (("m", m), ("M", M), ("s", s)):
        if int(value) < 1:
            raise ValueError(f"{name}: {label} must be >= 1, got {value} (m = 0 is node tokenization: node_tokens)")
    _check_graph(name, edge_index, num_nodes, batch)
    device = edge_index.device
    rowptr, col, perm = coo_to_csr(edge_index, num_nodes)
    slots = s * m  # walk tokens per node; token slot j has walk length m - j // s
    per_node = slots + 1
    nodes = torch.arange(num_nodes, device=device)
    # Walk w = ((v · slots + j) · M + i): start v, token slot j, walk i.
    start = nodes.repeat_interleave(slots * M)
    if seed is None:
        uniforms = None
    else:
        local = positions_in_sequence(sequence_offsets(batch, num_nodes).to(device), num_nodes)  # index within graph
        walk_key = (local.repeat_interleave(slots * M) * slots * M
                    + torch.arange(slots * M, device=device).repeat(num_nodes))
        keys = walk_key.unsqueeze(1) * m + torch.arange(m, device=device)  # (W, m): one key per step
        uniforms = hashed_uniform(keys, seed)
    walks = random_walks(rowptr, col, start, m, generator=generator, uniforms=uniforms)  # (W, m + 1)

    slot = torch.arange(slots * M, device=device).repeat(num_nodes) // M  # (W,) token slot of each walk
    walk_len = m - slot // s  # (W,)
    token_of_walk = start * per_node + slot  # (W,)
    valid = torch.arange(m + 1, device=device) <= walk_len.unsqueeze(1)  # (W, m + 1): step within m̂
    member_token = torch.cat([token_of_walk.unsqueeze(1).expand_as(walks)[valid], nodes * per_node + slots])
    member_node = torch.cat([walks[valid], nodes])
    keys = torch.unique(member_token * num_nodes + member_node)  # sorted: by token, then node
    token, node = keys // num_nodes, keys % num_nodes
    num_tokens = num_nodes * per_node
    counts = torch.bincount(token, minlength=num_tokens)
    token_ptr = torch.cat([counts.new_zeros(1), counts.cumsum(0)])

    # Induced edges: every outgoing edge of every member whose target is a member of the same token.
    degree = rowptr[1:] - rowptr[:-1]
    out_deg = degree[node]
    source_pos = torch.arange(node.numel(), device=device).repeat_interleave(out_deg)
    within = torch.arange(source_pos.numel(), device=device) - torch.repeat_interleave(
        out_deg.cumsum(0) - out_deg, out_deg)
    csr_pos = rowptr[node[source_pos]] + within
    target = col[csr_pos].long()
    query = token[source_pos] * num_nodes + target
    target_pos = torch.searchsorted(keys, query).clamp(max=max(keys.numel() - 1, 0))
    found = keys[target_pos] == query if keys.numel() else torch.zeros_like(query, dtype=torch.bool)
    sub_edge_index = torch.stack([source_pos[found], target_pos[found]])
    edge_id = perm[csr_pos[found]]

    walk_length = (m - torch.arange(slots, device=device) // s).repeat(num_nodes)
    walk_length = torch.cat([walk_length.view(num_nodes, slots), walk_length.new_zeros(num_nodes, 1)], 1).view(-1)
    cu_seqlens = torch.arange(num_nodes + 1, device=device) * per_node
    return NeighborhoodTokens(node, token, token_ptr, sub_edge_index, edge_id, cu_seqlens, walk_length,
                              walks.view(num_nodes, slots, M, m + 1), Graph.from_edge_index(sub_edge_index, node.numel()))


class NodeTokens(NamedTuple):
    """GMN's node tokens (``m = 0``): each graph is one sequence of its nodes.

    Attributes:
        perm: ``(N,)`` node ids in scan order (``x[perm]`` is the packed sequence of all graphs).
        cu_seqlens: ``(num_graphs + 1,)`` offsets of each graph's sequence.
    """

    perm: Tensor
    cu_seqlens: Tensor


def node_tokens(edge_index: Tensor, num_nodes: int, batch: Tensor | None = None,
                num_graphs: int | None = None) -> NodeTokens:
    """GMN's ``m = 0`` tokenization: every node is a token, each graph one sequence ordered by degree.

    Nodes are sorted within their graph by out-degree, ascending (so the best-connected nodes come
    last), ties by node index.
    """
    _check_graph("node_tokens", edge_index, num_nodes, batch)
    degree = node_degree(edge_index, num_nodes)
    perm = order_within_graphs(batch, degree)
    return NodeTokens(perm, sequence_offsets(batch, num_nodes, num_graphs).to(edge_index.device))


class RandomWalkTokenizer(torch.nn.Module):
    """GMN's tokenizer as a module: fresh walks in training, fixed seeded walks in evaluation.

    ``m = 0`` gives :func:`node_tokens` (``M`` and ``s`` unused); ``m >= 1`` gives
    :func:`neighborhood_tokens`, drawn from ``generator`` (default: the global RNG) while
    ``self.training`` and from ``eval_seed`` otherwise, so evaluation is deterministic and a graph's
    tokens do not depend on the batch it is in. It has no parameters.

    Args:
        m: largest walk length (``0``: node tokenization).
        M: walks per token.
        s: tokens per walk length.
        eval_seed: seed of the evaluation walks.
        generator: RNG of the training walks.
    """

    def __init__(self, m: int, M: int = 1, s: int = 1, eval_seed: int = 0, generator: torch.Generator | None = None):
        super().__init__()
        if m < 0 or M < 1 or s < 1:
            raise ValueError(f"RandomWalkTokenizer: needs m >= 0, M >= 1 and s >= 1, got m={m}, M={M}, s={s}")
        self.m, self.M, self.s, self.eval_seed, self.generator = int(m), int(M), int(s), int(eval_seed), generator

    @property
    def subgraph_tokens(self) -> bool:
        """Whether the tokens are subgraphs (``m >= 1``) rather than nodes."""
        return self.m >= 1

    def forward(self, edge_index: Tensor, num_nodes: int, batch: Tensor | None = None,
                num_graphs: int | None = None) -> NeighborhoodTokens | NodeTokens:
        """Tokenize a graph or a batch of graphs."""
        if not self.subgraph_tokens:
            return node_tokens(edge_index, num_nodes, batch, num_graphs)
        seed = None if self.training else self.eval_seed
        return neighborhood_tokens(edge_index, num_nodes, self.m, self.M, self.s, batch=batch,
                                   generator=self.generator, seed=seed)

    def extra_repr(self) -> str:
        return f"m={self.m}, M={self.M}, s={self.s}, eval_seed={self.eval_seed}"
