"""GMN: packed bidirectional scan over token sequences, forward/backward at node and graph level,
deterministic evaluation, batch invariance, the m = 0 path, the MPNN branch, PE configs, bad input."""
from __future__ import annotations

import pytest
import torch
from torch_geometric.data import Batch, Data
from torch_geometric.nn import global_mean_pool

from gnnlab.models import GMN, build_gmn
from gnnlab.nn.conv import GatedGCNConv, GINEConv
from gnnlab.nn.encoders import EmbeddingEncoder
from gnnlab.nn.layers import GMNLayer, TokenEncoder, gmn_layer
from gnnlab.nn.ssm import BiMamba
from gnnlab.nn.tokenizers import neighborhood_tokens, node_tokens
from gnnlab.ops import Graph


def _graph(num_nodes: int, seed: int, vocab: int = 4) -> Data:
    g = torch.Generator().manual_seed(seed)
    ring = torch.arange(num_nodes)
    chords = torch.randint(0, num_nodes, (2, num_nodes // 2), generator=g)
    src, dst = torch.cat([ring, chords[0]]), torch.cat([(ring + 1) % num_nodes, chords[1]])
    keep = src != dst
    ei = torch.stack([torch.cat([src[keep], dst[keep]]), torch.cat([dst[keep], src[keep]])])
    return Data(x=torch.randint(0, vocab, (num_nodes,), generator=g), edge_index=ei,
                edge_attr=torch.randint(0, 3, (ei.size(1),), generator=g), num_nodes=num_nodes)


def _model(m=2, M=2, s=1, pool=None, conv=None, out=3, seed=0, **kwargs) -> GMN:
    torch.manual_seed(seed)
    layer = lambda i, o, subgraph_tokens: gmn_layer(  # noqa: E731
        i, o, ssm=lambda d: BiMamba(d, d_state=4, d_conv=3, expand=2), token_conv=GatedGCNConv,
        conv=conv, subgraph_tokens=subgraph_tokens, **kwargs)
    return build_gmn(layer, lambda out_channels: EmbeddingEncoder(4, out_channels), out, hidden_channels=16,
                     num_layers=2, m=m, M=M, s=s, eval_seed=3,
                     edge_encoder=lambda out_channels: EmbeddingEncoder(3, out_channels), pool=pool)


def test_packed_scan_over_token_sequences_equals_each_node_alone():
    torch.manual_seed(0)
    data = _graph(9, 1)
    tokens = neighborhood_tokens(data.edge_index, 9, m=2, M=2, s=2, generator=torch.Generator().manual_seed(0))
    encoder = TokenEncoder([GatedGCNConv(8, 8)]).eval()
    x, e = torch.randn(9, 8), torch.randn(data.edge_index.size(1), 8)
    seq = encoder(x, e, tokens)  # (T, 8)
    bi = BiMamba(8, d_state=4, d_conv=3).eval()
    packed = bi(seq, tokens.cu_seqlens)
    for v in range(9):
        lo, hi = int(tokens.cu_seqlens[v]), int(tokens.cu_seqlens[v + 1])
        alone = bi(seq[lo:hi].unsqueeze(0))[0]
        torch.testing.assert_close(packed[lo:hi], alone, rtol=1e-5, atol=1e-5)


def test_token_encoder_is_a_local_gnn_on_each_induced_subgraph():
    """Token vectors equal the conv run on each token's induced subgraph alone, then averaged."""
    data = _graph(8, 2)
    tokens = neighborhood_tokens(data.edge_index, 8, m=2, M=3, s=1, generator=torch.Generator().manual_seed(1))
    torch.manual_seed(1)
    conv = GINEConv(6, 6, mlp_batch_norm=False)
    encoder = TokenEncoder([conv])
    x, e = torch.randn(8, 6), torch.randn(data.edge_index.size(1), 6)
    out = encoder(x, e, tokens)
    for t in range(tokens.num_tokens):
        members = tokens.node[tokens.token_ptr[t]: tokens.token_ptr[t + 1]]
        local = {int(v): i for i, v in enumerate(members)}
        ei = data.edge_index
        keep = torch.tensor([int(a) in local and int(b) in local for a, b in ei.t()], dtype=torch.bool)
        sub = torch.tensor([[local[int(a)] for a in ei[0, keep]], [local[int(b)] for b in ei[1, keep]]],
                           dtype=torch.long).view(2, -1)
        want = conv(x[members], Graph.from_edge_index(sub, members.numel()), e[keep])[0].mean(0)
        torch.testing.assert_close(out[t], want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("m", [2, 0])
@pytest.mark.parametrize("level", ["node", "graph"])
def test_forward_backward(m, level):
    model = _model(m=m, pool=global_mean_pool if level == "graph" else None)
    batch = Batch.from_data_list([_graph(7, 0), _graph(10, 1), _graph(5, 2)])
    out = model(batch)
    assert out.shape == ((3, 3) if level == "graph" else (22, 3))
    out.square().sum().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    # A GatedGCN's edge output is unused after the last token encoding; m = 0 (no token encoder, no
    # MPNN branch here) does not read edges at all.
    assert all("bn_edge" in n or ".C." in n or (m == 0 and "edge_encoder" in n) for n in missing), missing
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


@pytest.mark.parametrize("m", [2, 0])
def test_eval_is_deterministic_and_batched_equals_alone(m):
    model = _model(m=m, conv=GatedGCNConv).eval()
    graphs = [_graph(7, 0), _graph(10, 1), _graph(5, 2)]
    batch = Batch.from_data_list(graphs)
    with torch.no_grad():
        a, b = model(batch), model(batch)
        torch.testing.assert_close(a, b, rtol=0, atol=0)
        start = 0
        for g in graphs:
            alone = model(Batch.from_data_list([g]))
            torch.testing.assert_close(a[start: start + g.num_nodes], alone, rtol=1e-4, atol=1e-5)
            start += g.num_nodes


def test_mean_readout_averages_each_nodes_sequence():
    data = _graph(7, 4)
    torch.manual_seed(0)
    layer = GMNLayer(8, ssm=BiMamba(8, d_state=4), token_encoder=TokenEncoder([GatedGCNConv(8, 8)]),
                     readout="mean").eval()
    tokens = neighborhood_tokens(data.edge_index, 7, 2, 2, 2, seed=0)
    x, e = torch.randn(7, 8), torch.randn(data.edge_index.size(1), 8)
    full = layer.ssm(layer.norm_in(layer.token_encoder(x, e, tokens)), tokens.cu_seqlens)
    want = torch.stack([full[tokens.cu_seqlens[v]: tokens.cu_seqlens[v + 1]].mean(0) for v in range(7)])
    torch.testing.assert_close(layer.scan(x, e, tokens), want)
    with pytest.raises(ValueError, match="readout"):
        GMNLayer(8, ssm=BiMamba(8), readout="max")


def test_node_level_scan_reads_each_graphs_nodes_in_degree_order():
    """With node_ssm, the token-level readout goes through a second BiMamba over each graph's nodes in
    degree order (Algorithm 1, lines 16-18): checked against the composition written out per graph."""
    graphs = [_graph(7, 4), _graph(5, 6)]
    batch = Batch.from_data_list(graphs)
    torch.manual_seed(0)
    layer = GMNLayer(8, ssm=BiMamba(8, d_state=4), token_encoder=TokenEncoder([GatedGCNConv(8, 8)]),
                     node_ssm=BiMamba(8, d_state=4, out_proj=True)).eval()
    tokens = neighborhood_tokens(batch.edge_index, 12, 2, 2, 1, batch=batch.batch, seed=0)
    order = node_tokens(batch.edge_index, 12, batch.batch)
    x, e = torch.randn(12, 8), torch.randn(batch.edge_index.size(1), 8)
    seq = layer.ssm(layer.norm_in(layer.token_encoder(x, e, tokens)), tokens.cu_seqlens)
    nodes = seq.index_select(0, tokens.last)  # each node's own (last) token
    want = torch.empty_like(nodes)
    start = 0
    for g in graphs:  # each graph alone: its nodes sorted by degree (ties by index), one scan, put back
        deg = torch.bincount(g.edge_index[0], minlength=g.num_nodes)
        perm = sorted(range(g.num_nodes), key=lambda i: (int(deg[i]), i))
        idx = torch.tensor(perm) + start
        out = layer.node_ssm(layer.norm_node(nodes[idx]).unsqueeze(0))[0]
        want[idx] = out
        start += g.num_nodes
    torch.testing.assert_close(layer.scan(x, e, tokens, order), want, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="node_order"):
        layer.scan(x, e, tokens)


def test_default_config_has_the_papers_two_scans(tmp_path):
    """model=gmn: W_out after each bidirectional sum and a node-level scan in every layer (m >= 1)."""
    from hydra.utils import instantiate

    from tests.conf.test_configs import compose_cfg

    cfg = compose_cfg(["model=gmn", "data=zinc", "model.hidden_channels=16", "model.num_layers=2"], tmp_path)
    model = instantiate(cfg.model).train()
    for layer in model.layers:
        assert layer.node_ssm is not None and layer.ssm.out_proj is not None and layer.node_ssm.out_proj is not None
    graphs = [_graph(8, 0), _graph(11, 1)]
    out = model(Batch.from_data_list(graphs))
    out.sum().backward()
    assert all(p.grad is not None for p in model.layers[0].node_ssm.parameters())


def test_training_draws_fresh_walks():
    model = _model(m=2)
    batch = Batch.from_data_list([_graph(12, 3)])
    model.train()
    t1 = model.tokenizer(batch.edge_index, batch.num_nodes, batch.batch)
    t2 = model.tokenizer(batch.edge_index, batch.num_nodes, batch.batch)
    assert not torch.equal(t1.walks, t2.walks)
    model.eval()
    torch.testing.assert_close(model(batch), model(batch), rtol=0, atol=0)


def test_pe_config_composes_and_runs(tmp_path):
    from hydra.utils import instantiate

    from gnnlab.transforms import RandomWalkSE
    from tests.conf.test_configs import compose_cfg

    cfg = compose_cfg(["model=gmn", "pe=rwse", "data=zinc", "model.hidden_channels=32", "model.num_layers=1"], tmp_path)
    model = instantiate(cfg.model).eval()
    assert list(model.pe_encoders) == ["rwse"]
    transform = instantiate(cfg.data.module.pe_transforms.rwse)
    assert isinstance(transform, RandomWalkSE)
    graphs = []
    for n, seed in ((8, 0), (11, 1)):
        g = _graph(n, seed)
        graphs.append(transform(Data(x=g.x, edge_index=g.edge_index, edge_attr=g.edge_attr, num_nodes=n)))
    out = model(Batch.from_data_list(graphs))
    assert out.shape == (2, int(cfg.data.num_outputs)) and torch.isfinite(out).all()


def test_bad_inputs_raise_value_error():
    data = _graph(6, 0)
    layer = GMNLayer(8, ssm=BiMamba(8, d_state=4), token_encoder=TokenEncoder([GatedGCNConv(8, 8)]))
    x, e = torch.randn(6, 8), torch.randn(data.edge_index.size(1), 8)
    graph = Graph.from_edge_index(data.edge_index, 6)
    with pytest.raises(ValueError, match="tokens are required"):
        layer(x, graph, e)
    with pytest.raises(ValueError, match="expected x"):
        layer(torch.randn(6, 5), graph, e, tokens=node_tokens(data.edge_index, 6))
    tokens = neighborhood_tokens(data.edge_index, 6, 1, 1, seed=0)
    with pytest.raises(ValueError, match="tokens describe"):
        layer(torch.randn(7, 8), graph, e, tokens=tokens)
    no_encoder = GMNLayer(8, ssm=BiMamba(8, d_state=4))
    with pytest.raises(ValueError, match="token_encoder"):
        no_encoder(x, graph, e, tokens=tokens)
    with pytest.raises(ValueError, match="tokens must be"):
        no_encoder(x, graph, e, tokens=(1, 2))
    with pytest.raises(ValueError, match="norm"):
        GMNLayer(8, ssm=BiMamba(8), norm="group")
    with pytest.raises(ValueError, match="dropout"):
        GMNLayer(8, ssm=BiMamba(8), dropout=1.0)
    with pytest.raises(ValueError, match="keep their width"):
        gmn_layer(8, 4, ssm=BiMamba, token_conv=GatedGCNConv)
    with pytest.raises(ValueError, match="token_conv"):
        gmn_layer(8, 8, ssm=BiMamba)
    with pytest.raises(ValueError, match="pool"):
        TokenEncoder([], pool="max")
    with pytest.raises(ValueError, match="num_layers"):
        build_gmn(gmn_layer, lambda out_channels: EmbeddingEncoder(4, out_channels), 2, num_layers=0)
    with pytest.raises(ValueError, match="m >= 0"):
        build_gmn(gmn_layer, lambda out_channels: EmbeddingEncoder(4, out_channels), 2, m=-1)
