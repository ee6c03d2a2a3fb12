"""Random-walk tokenizer of GMN: walks follow edges, token node sets and induced edges equal Python-set
oracles, scan order, degree ordering for m = 0, seeded determinism and batch invariance, bad input."""
from __future__ import annotations

import pytest
import torch

from gnnlab.nn.tokenizers import (
    RandomWalkTokenizer,
    hashed_uniform,
    neighborhood_tokens,
    node_tokens,
    random_walks,
)
from gnnlab.ops import Graph, coo_to_csr


def _graph(num_nodes: int, num_edges: int, seed: int, isolated: int = 0) -> torch.Tensor:
    """Random undirected graph; the last ``isolated`` nodes have no edges."""
    g = torch.Generator().manual_seed(seed)
    ei = torch.randint(0, num_nodes - isolated, (2, num_edges), generator=g)
    ei = ei[:, ei[0] != ei[1]]
    return torch.cat([ei, ei.flip(0)], 1)


def _edge_set(edge_index):
    return {(int(a), int(b)) for a, b in edge_index.t()}


def test_walks_follow_edges_and_have_the_right_length():
    ei = _graph(20, 30, 0, isolated=2)
    rowptr, col, _ = coo_to_csr(ei, 20)
    start = torch.arange(20).repeat(5)
    walks = random_walks(rowptr, col, start, 6, generator=torch.Generator().manual_seed(1))
    assert walks.shape == (100, 7)
    assert torch.equal(walks[:, 0], start)
    edges = _edge_set(ei)
    degree = torch.bincount(ei[0], minlength=20)
    for walk in walks.tolist():
        for a, b in zip(walk[:-1], walk[1:]):
            assert (a, b) in edges or (a == b and degree[a] == 0)
    assert (walks[18:20] == torch.tensor([[18], [19]])).all()  # isolated nodes stay put


def test_walks_reproducible_with_a_seeded_generator():
    ei = _graph(15, 40, 1)
    rowptr, col, _ = coo_to_csr(ei, 15)
    start = torch.arange(15).repeat(4)
    a = random_walks(rowptr, col, start, 5, generator=torch.Generator().manual_seed(7))
    b = random_walks(rowptr, col, start, 5, generator=torch.Generator().manual_seed(7))
    c = random_walks(rowptr, col, start, 5, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("hashed", [False, True])
def test_neighbour_choice_is_uniform(hashed):
    # A star: every step from the centre picks one of 5 leaves with probability 1/5.
    leaves = torch.arange(1, 6)
    ei = torch.stack([torch.cat([torch.zeros(5, dtype=torch.long), leaves]), torch.cat([leaves, torch.zeros(5, dtype=torch.long)])])
    rowptr, col, _ = coo_to_csr(ei, 6)
    n = 20000
    uniforms = hashed_uniform(torch.arange(n), seed=3).unsqueeze(1) if hashed else None
    walks = random_walks(rowptr, col, torch.zeros(n, dtype=torch.long), 1, generator=torch.Generator().manual_seed(0),
                         uniforms=uniforms)
    freq = torch.bincount(walks[:, 1], minlength=6)[1:].double() / n
    assert torch.allclose(freq, torch.full((5,), 0.2, dtype=torch.float64), atol=0.015)


def _token_sets_oracle(tokens, num_nodes, m, M, s):
    """Python sets from the returned walks: the expected members of every token, in scan order."""
    expected = []
    for v in range(num_nodes):
        for j in range(s * m):
            length = m - j // s
            expected.append({int(u) for i in range(M) for u in tokens.walks[v, j, i, : length + 1]})
        expected.append({v})
    return expected


@pytest.mark.parametrize("m,M,s", [(1, 1, 1), (3, 2, 2), (2, 4, 1)])
def test_token_sets_and_induced_edges_equal_oracles(m, M, s):
    num_nodes = 14
    ei = _graph(num_nodes, 25, m * 10 + M, isolated=1)
    ei = torch.cat([ei, torch.tensor([[3], [3]])], 1)  # a self loop is an induced edge too
    tokens = neighborhood_tokens(ei, num_nodes, m, M, s, generator=torch.Generator().manual_seed(2))
    per_node = s * m + 1
    assert tokens.num_tokens == num_nodes * per_node
    assert torch.equal(tokens.cu_seqlens, torch.arange(num_nodes + 1) * per_node)
    expected = _token_sets_oracle(tokens, num_nodes, m, M, s)
    edges = [(int(a), int(b)) for a, b in ei.t()]
    for t in range(tokens.num_tokens):
        lo, hi = int(tokens.token_ptr[t]), int(tokens.token_ptr[t + 1])
        members = tokens.node[lo:hi].tolist()
        assert members == sorted(expected[t]), t
        assert (tokens.token[lo:hi] == t).all()
        # Induced edges of token t: original edges with both ends in the set, each once, by edge id.
        want = sorted((a, b, e) for e, (a, b) in enumerate(edges) if a in expected[t] and b in expected[t])
        mine = (tokens.edge_index[0] >= lo) & (tokens.edge_index[0] < hi)
        assert ((tokens.edge_index[1][mine] >= lo) & (tokens.edge_index[1][mine] < hi)).all()
        got = sorted(zip(tokens.node[tokens.edge_index[0][mine]].tolist(), tokens.node[tokens.edge_index[1][mine]].tolist(),
                         tokens.edge_id[mine].tolist()))
        assert got == want, t
    # Walks of the tokens start at their node and follow edges.
    assert (tokens.walks[..., 0] == torch.arange(num_nodes).view(-1, 1, 1)).all()
    # The Graph of the induced edges over the member positions, edges in the order of tokens.edge_index.
    graph = tokens.graph
    assert isinstance(graph, Graph) and graph.batch is None
    assert graph.num_src == graph.num_dst == tokens.node.numel()
    assert torch.equal(graph.edge_index, tokens.edge_index)
    assert torch.equal(graph.in_degree(), torch.bincount(tokens.edge_index[1], minlength=tokens.node.numel()))


def test_tokens_ordered_from_largest_walk_length_to_the_node_itself():
    m, s = 3, 2
    tokens = neighborhood_tokens(_graph(10, 20, 3), 10, m, 2, s, generator=torch.Generator().manual_seed(0))
    want = torch.tensor([3, 3, 2, 2, 1, 1, 0])
    assert torch.equal(tokens.walk_length.view(10, -1), want.expand(10, -1))
    last = tokens.last
    for v in range(10):  # the last token of every node is {v}
        assert tokens.node[tokens.token_ptr[last[v]]: tokens.token_ptr[last[v] + 1]].tolist() == [v]


def test_node_tokens_order_by_degree_within_each_graph():
    g = torch.Generator().manual_seed(4)
    sizes = [6, 9, 5]
    edge_index, batch, offset = [], [], 0
    for b, n in enumerate(sizes):
        edge_index.append(torch.randint(0, n, (2, 2 * n), generator=g) + offset)
        batch += [b] * n
        offset += n
    ei = torch.cat(edge_index, 1)
    batch = torch.tensor(batch)
    perm, cu = node_tokens(ei, offset, batch)
    degree = torch.bincount(ei[0], minlength=offset).tolist()
    want, start = [], 0
    for n in sizes:
        want += sorted(range(start, start + n), key=lambda v: (degree[v], v))
        start += n
    assert perm.tolist() == want
    assert cu.tolist() == [0, 6, 15, 20]


def test_seeded_tokens_are_deterministic_and_independent_of_the_batch():
    graphs = [_graph(n, 2 * n, n) for n in (9, 12, 7)]
    offsets = [0, 9, 21, 28]
    ei = torch.cat([g + o for g, o in zip(graphs, offsets)], 1)
    batch = torch.repeat_interleave(torch.arange(3), torch.tensor([9, 12, 7]))
    batched = neighborhood_tokens(ei, 28, 2, 3, 2, batch=batch, seed=5)
    again = neighborhood_tokens(ei, 28, 2, 3, 2, batch=batch, seed=5)
    other = neighborhood_tokens(ei, 28, 2, 3, 2, batch=batch, seed=6)
    assert torch.equal(batched.walks, again.walks) and not torch.equal(batched.walks, other.walks)
    alone = neighborhood_tokens(graphs[1], 12, 2, 3, 2, seed=5)
    assert torch.equal(batched.walks[9:21], alone.walks + 9)


def test_tokenizer_module_fresh_in_training_fixed_in_eval():
    ei = _graph(12, 30, 6)
    tok = RandomWalkTokenizer(m=2, M=2, s=1, eval_seed=1)
    tok.train()
    a, b = tok(ei, 12), tok(ei, 12)
    assert not torch.equal(a.walks, b.walks)
    assert a.graph.num_nodes == a.node.numel() and torch.equal(a.graph.edge_index, a.edge_index)
    tok.eval()
    assert torch.equal(tok(ei, 12).walks, tok(ei, 12).walks)
    assert torch.equal(tok(ei, 12).walks, neighborhood_tokens(ei, 12, 2, 2, 1, seed=1).walks)
    assert not RandomWalkTokenizer(m=0).subgraph_tokens


def test_bad_inputs_raise_value_error():
    ei = _graph(6, 8, 0)
    with pytest.raises(ValueError, match="m must be >= 1"):
        neighborhood_tokens(ei, 6, 0, 1)
    with pytest.raises(ValueError, match="M must be >= 1"):
        neighborhood_tokens(ei, 6, 1, 0)
    with pytest.raises(ValueError, match="s must be >= 1"):
        neighborhood_tokens(ei, 6, 1, 1, s=0)
    with pytest.raises(ValueError, match="outside"):
        neighborhood_tokens(ei, 3, 1, 1)
    with pytest.raises(ValueError, match="edge_index must be"):
        neighborhood_tokens(ei[0], 6, 1, 1)
    with pytest.raises(ValueError, match="sorted"):
        neighborhood_tokens(ei, 6, 1, 1, batch=torch.tensor([1, 0, 0, 0, 0, 0]), seed=0)
    with pytest.raises(ValueError, match="batch must be"):
        node_tokens(ei, 6, batch=torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError, match="int64"):
        hashed_uniform(torch.arange(3, dtype=torch.int32), 0)
    rowptr, col, _ = coo_to_csr(ei, 6)
    with pytest.raises(ValueError, match="length"):
        random_walks(rowptr, col, torch.arange(6), -1)
    with pytest.raises(ValueError, match="uniforms"):
        random_walks(rowptr, col, torch.arange(6), 2, uniforms=torch.rand(6, 3))
    with pytest.raises(ValueError, match="RandomWalkTokenizer"):
        RandomWalkTokenizer(m=-1)
