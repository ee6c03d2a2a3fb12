"""GSM++: HAC token sequences against plain-Python definitions, the hybrid encoder, the model, its configs."""
from __future__ import annotations

import functools
import re
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from torch_geometric.data import Batch, Data

from gnnlab.cli import config_dir
from gnnlab.models import GSMPlusPlus, build_gsmpp
from gnnlab.nn.conv import GatedGCNConv
from gnnlab.nn.encoders import EmbeddingEncoder
from gnnlab.nn.layers import GSMPlusPlusLayer, HybridSequenceEncoder, gsmpp_layer
from gnnlab.nn.mixer import MultiheadAttentionMixer
from gnnlab.nn.pe import HierarchicalPEEncoder
from gnnlab.nn.ssm import Mamba
from gnnlab.nn.tokenizers import hac_tokens, hierarchical_sequences, hop_sequences, node_sequence
from gnnlab.transforms import HACTree
from tests.facts import with_facts

LEVELS = 4


def _graph(n: int, seed: int, extra: int = 2) -> Data:
    """A connected random graph (a path plus chords) with token features, edge features and its HAC tree."""
    g = torch.Generator().manual_seed(seed)
    src = torch.cat([torch.arange(n - 1), torch.randint(0, n, (extra * n,), generator=g)])
    dst = torch.cat([torch.arange(1, n), torch.randint(0, n, (extra * n,), generator=g)])
    keep = src != dst
    edge_index = torch.stack([torch.cat([src[keep], dst[keep]]), torch.cat([dst[keep], src[keep]])])
    data = Data(x=torch.randint(0, 5, (n,), generator=g), edge_index=edge_index, num_nodes=n,
                edge_attr=torch.randint(0, 3, (edge_index.size(1),), generator=g),
                y=torch.randint(0, 2, (n,), generator=g))
    return HACTree(num_levels=LEVELS)(data)


GRAPHS = [_graph(n, seed, extra) for seed, (n, extra) in enumerate([(9, 1), (14, 0), (6, 2), (20, 1)])]


def _tree(levels: torch.Tensor, n: int) -> dict:
    """children[(level, rep)] -> sorted child reps, level 0 being the nodes, from a plain-Python read of levels."""
    children, below = {}, list(range(n))
    for lvl, row in enumerate(levels.tolist(), start=1):
        for v in range(n):
            children.setdefault((lvl, row[v]), set()).add(below[v])
        below = row
    return {key: sorted(value) for key, value in children.items()}


def _dfs(levels: torch.Tensor, n: int) -> list[int]:
    """Depth-first traversal from the top-level clusters, children in increasing representative order."""
    tree, top = _tree(levels, n), len(levels)

    def visit(level, rep):
        if level == 0:
            return [rep]
        return [v for child in tree[(level, rep)] for v in visit(level - 1, child)]

    return [v for rep in sorted(set(levels[-1].tolist())) for v in visit(top, rep)]


@pytest.mark.parametrize("graph", GRAPHS)
def test_node_sequence_is_the_depth_first_traversal(graph):
    tokens = hac_tokens(graph.hac_index)
    order = tokens.perm.tolist()
    assert order == _dfs(graph.hac_index, graph.num_nodes)
    assert sorted(order) == list(range(graph.num_nodes))  # every node once
    for level in graph.hac_index:  # every cluster of every level is one contiguous run
        runs = [rep for i, rep in enumerate(level[tokens.perm].tolist()) if i == 0 or rep != level[tokens.perm[i - 1]]]
        assert len(runs) == len(set(runs))


@pytest.mark.parametrize("graph", GRAPHS)
def test_hierarchical_sequences_follow_the_definition(graph):
    """Each node reads the distinct clusters on its root-to-node path, coarsest first, as member means."""
    n, x = graph.num_nodes, torch.randn(graph.num_nodes, 3, generator=torch.Generator().manual_seed(0))
    seq, offsets, level = hierarchical_sequences(x, hac_tokens(graph.hac_index))
    rows = graph.hac_index.tolist()
    for v in range(n):
        expected, expected_levels, previous = [], [], {v}
        for lvl, row in enumerate(rows, start=1):
            members = {u for u in range(n) if row[u] == row[v]}
            if members != previous:  # a level where the cluster grew is a new tree node
                expected.append(x[sorted(members)].mean(0))
                expected_levels.append(lvl)
            previous = members
        expected = torch.stack(expected[::-1] + [x[v]])
        got = seq[offsets[v] : offsets[v + 1]]
        torch.testing.assert_close(got, expected)
        assert level[offsets[v] : offsets[v + 1]].tolist() == expected_levels[::-1] + [0]


def test_batched_tokens_equal_single_graphs():
    batch = Batch.from_data_list(GRAPHS)
    x = torch.randn(batch.num_nodes, 4, generator=torch.Generator().manual_seed(1))
    tokens = hac_tokens(batch.hac_index, batch.batch, batch.num_graphs)
    seq, offsets, level = hierarchical_sequences(x, tokens)
    node_seq, graph_offsets, _ = node_sequence(x, tokens)
    start = 0
    for i, g in enumerate(GRAPHS):
        xi = x[start : start + g.num_nodes]
        ti = hac_tokens(g.hac_index)
        s, o, lv = hierarchical_sequences(xi, ti)
        torch.testing.assert_close(seq[offsets[start] : offsets[start + g.num_nodes]], s)
        assert torch.equal(level[offsets[start] : offsets[start + g.num_nodes]], lv)
        torch.testing.assert_close(node_seq[graph_offsets[i] : graph_offsets[i + 1]], node_sequence(xi, ti)[0])
        start += g.num_nodes


def test_hop_sequences_match_dense_powers():
    g = GRAPHS[0]
    x = torch.randn(g.num_nodes, 3, generator=torch.Generator().manual_seed(2))
    adj = torch.zeros(g.num_nodes, g.num_nodes)
    adj[g.edge_index[1], g.edge_index[0]] = 1.0  # row v: in-neighbours of v (duplicates counted once here)
    unique = torch.unique(g.edge_index, dim=1)
    adj = torch.zeros_like(adj)
    adj.index_put_((unique[1], unique[0]), torch.ones(unique.size(1)), accumulate=True)
    mean = adj / adj.sum(1, keepdim=True).clamp(min=1)
    seq, offsets, hop = hop_sequences(x, unique, 3)
    expected = [x]
    for _ in range(3):
        expected.append(mean @ expected[-1])
    expected = torch.stack(expected[::-1], 1).reshape(-1, 3)
    torch.testing.assert_close(seq, expected)
    assert offsets.tolist() == list(range(0, 4 * g.num_nodes + 1, 4)) and hop[:4].tolist() == [3, 2, 1, 0]


def _encoder(dim=8, ssm=2, attention=True):
    return HybridSequenceEncoder(dim, [Mamba(dim, d_state=4) for _ in range(ssm)],
                                 MultiheadAttentionMixer(dim, 2) if attention else None)


def test_encoder_keeps_sequences_apart():
    """Packed sequences give the same output as each sequence run alone (no token sees another sequence)."""
    torch.manual_seed(0)
    enc = _encoder().eval()
    lengths = [3, 1, 5, 2]
    x = torch.randn(sum(lengths), 8)
    offsets = torch.tensor([0, *torch.tensor(lengths).cumsum(0).tolist()])
    out = enc(x, offsets)
    for a, b in zip(offsets[:-1].tolist(), offsets[1:].tolist()):
        torch.testing.assert_close(out[a:b], enc(x[a:b], torch.tensor([0, b - a])), atol=1e-5, rtol=1e-5)
    # The order inside a sequence matters to the recurrent part (so the tree order is read).
    flipped = enc(x[:3].flip(0), torch.tensor([0, 3]))
    assert not torch.allclose(flipped.flip(0), out[:3], atol=1e-4)


def _model(tokenizations=("hierarchical",), top_k=None, pool=None, out=3, num_levels=LEVELS):
    torch.manual_seed(0)
    layer = functools.partial(
        gsmpp_layer, conv=functools.partial(GatedGCNConv), ssm=functools.partial(Mamba, d_state=4),
        attention=functools.partial(MultiheadAttentionMixer, num_heads=2), num_ssm_layers=1,
        tokenizations=list(tokenizations), top_k=top_k, num_levels=num_levels, local_residual=False)
    return build_gsmpp(layer, functools.partial(EmbeddingEncoder, num_embeddings=5), out_channels=out,
                       hidden_channels=16, num_layers=2,
                       edge_encoder=functools.partial(EmbeddingEncoder, num_embeddings=3), pool=pool,
                       pe={"hac": functools.partial(HierarchicalPEEncoder, LEVELS, 4)})


@pytest.mark.parametrize("tokenizations,top_k,level", [
    (("hierarchical",), None, "node"),
    (("node", "hop", "hierarchical"), 2, "graph"),  # Mixture of Tokenization
    (("node",), None, "graph"),
])
def test_forward_backward_and_batching(tokenizations, top_k, level):
    from torch_geometric.nn import global_mean_pool

    model = _model(tokenizations, top_k, pool=global_mean_pool if level == "graph" else None)
    assert isinstance(model, GSMPlusPlus)
    batch = Batch.from_data_list(GRAPHS)
    out = model(batch)
    assert out.shape == ((batch.num_nodes if level == "node" else len(GRAPHS)), 3)
    out.square().mean().backward()
    grads = {name: p.grad for name, p in model.named_parameters()}
    # The last layer's edge outputs are not read, so its edge batch norm gets no gradient (as in GPS).
    unused = f"layers.{len(model.layers) - 1}.conv.bn_edge"
    missing = [name for name, g in grads.items()
               if not name.startswith(unused) and (g is None or not torch.isfinite(g).all())]
    assert not missing, missing
    model.eval()
    with torch.no_grad():
        together = model(batch)
        alone = torch.cat([model(Batch.from_data_list([g])) for g in GRAPHS])
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=1e-4)


def test_router_keeps_top_k_tokenizations():
    layer = _model(("node", "hop", "hierarchical"), top_k=2).layers[0]
    gates = layer.gates(torch.randn(10, 16))
    assert torch.allclose(gates.sum(1), torch.ones(10)) and ((gates > 0).sum(1) == 2).all()
    uniform = _model(("node", "hierarchical")).layers[0].gates(torch.randn(4, 16))
    assert torch.equal(uniform, torch.full((4, 2), 0.5))


def test_bad_inputs():
    enc = _encoder(16)
    with pytest.raises(ValueError, match="unknown tokenizations"):
        GSMPlusPlusLayer(16, None, enc, tokenizations=["walk"])
    with pytest.raises(ValueError, match="top_k"):
        GSMPlusPlusLayer(16, None, enc, tokenizations=["node", "hop"], top_k=3)
    with pytest.raises(ValueError, match="wide"):
        GSMPlusPlusLayer(8, None, enc)
    with pytest.raises(ValueError, match="at least one"):
        HybridSequenceEncoder(8, [], None)
    model = _model()
    data = Batch.from_data_list(GRAPHS[:2])
    del data.hac_index
    with pytest.raises(ValueError, match="HACTree"):
        model(data)
    bad = GRAPHS[0].clone()
    bad.hac_index = bad.hac_index.clone()
    bad.hac_index[1, 3] = 2  # splits a level-1 cluster or names a cluster by a non-member
    with pytest.raises(ValueError, match="hac_index"):
        hac_tokens(bad.hac_index)
    with pytest.raises(ValueError, match="levels"):
        _model(num_levels=2)(Batch.from_data_list(GRAPHS[:1]))
    with pytest.raises(ValueError, match="num_hops"):
        hop_sequences(torch.randn(3, 2), torch.tensor([[0], [1]]), 0)


# ---------------------------------------------------------------- configs

CONF = config_dir()
EXPERIMENTS = sorted(f"gsmpp/{p.stem}" for p in (CONF / "experiment" / "gsmpp").glob("*.yaml"))


def _compose(overrides: list[str], tmp_path: Path):
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=[f"paths.root_dir={tmp_path}", f"paths.output_dir={tmp_path / 'run'}",
                                          *overrides], return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    return with_facts(cfg)


def _tokens_for(encoder, rows, g):
    from gnnlab.nn.encoders import MultiEmbeddingEncoder

    if isinstance(encoder, MultiEmbeddingEncoder):
        return torch.stack([torch.randint(0, k, (rows,), generator=g) for k in encoder.num_embeddings], 1)
    return torch.randint(0, encoder.num_embeddings, (rows,), generator=g)


@pytest.mark.parametrize("overrides,run", [([f"experiment={e}"], e.endswith("peptides_func")) for e in EXPERIMENTS]
                         + [(["model=gsmpp", "data=zinc", "pe=rwse"], False),
                            (["model=gsmpp", "data=cluster", "model.layer.tokenizations=[node,hop,hierarchical]",
                              "model.layer.top_k=2"], True)])
def test_configs_compose_instantiate_and_run(overrides, run, tmp_path):
    """Every GSM++ config builds (experiments: with the parameter count their header states); some run."""
    assert EXPERIMENTS == ["gsmpp/cluster", "gsmpp/pattern", "gsmpp/peptides_func"]
    cfg = _compose(overrides, tmp_path)
    model = instantiate(cfg.model)
    assert isinstance(model, GSMPlusPlus)
    transforms = [instantiate(t) for t in cfg.data.module.pe_transforms.values()]
    assert any(isinstance(t, HACTree) for t in transforms), "model=gsmpp must bring the HAC tree"
    if overrides[0].startswith("experiment="):
        text = (CONF / "experiment" / f"{overrides[0].split('=')[1]}.yaml").read_text()
        stated = int(re.search(r"Parameters here: ([\d,]+)", text).group(1).replace(",", ""))
        assert sum(p.numel() for p in model.parameters()) == stated
    if not run:
        return
    g = torch.Generator().manual_seed(0)
    graphs = []
    for n in (11, 16):
        data = _graph(n, n)
        data.x = _tokens_for(model.node_encoder, n, g)
        data.edge_attr = _tokens_for(model.edge_encoder, data.edge_index.size(1), g)
        del data.hac_index, data.hac_pe
        for t in transforms:
            data = t(data)
        graphs.append(data)
    model.eval()
    with torch.no_grad():
        out = model(Batch.from_data_list(graphs))
    rows = 27 if cfg.data.pool is None else 2
    assert out.shape == (rows, int(cfg.data.num_outputs)) and torch.isfinite(out).all()
