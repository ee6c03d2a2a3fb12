"""One contract test for every convolution (gnnlab/nn/conv/base.py): the call and its pair, shapes and
dtypes, permutation equivariance, and the same conv working unchanged inside ConvLayer (residual
block), GPSLayer, ConvStack (plain stack) and GNN, and under torch.compile without graph breaks."""
from __future__ import annotations

from functools import partial

import pytest
import torch
import yaml
from torch.testing import assert_close
from torch_geometric.data import Data

from gnnlab.models import ConvStack, build_gnn
from gnnlab.nn.conv import (
    DAGNNConv,
    DGCNNConv,
    ECConv,
    GATConv,
    GatedGCNConv,
    GCNConv,
    GINConv,
    GINEConv,
    GraphTransformerAttention,
    PNAConv,
    SAGEConv,
)
from gnnlab.nn.encoders import LinearEncoder
from gnnlab.nn.layers import ConvLayer, GPSLayer
from gnnlab.ops import Graph

DIM, EDGE_DIM, N = 8, 4, 12

#: name -> factory(in_channels, out_channels); every conv gnnlab ships, with and without edge features.
CONVS = {
    "dagnn": partial(DAGNNConv, K=3),
    "dgcnn": DGCNNConv,
    "ecc": partial(ECConv, edge_dim=EDGE_DIM),
    "gcn": GCNConv,
    "gin": GINConv,
    "gine": partial(GINEConv, edge_dim=EDGE_DIM),
    "gat": partial(GATConv, heads=2),
    "gat_edges": partial(GATConv, heads=2, edge_dim=EDGE_DIM),
    "gated_gcn": GatedGCNConv,
    "graph_transformer": partial(GraphTransformerAttention, num_heads=2),
    "graph_transformer_no_edges": partial(GraphTransformerAttention, num_heads=2, use_edges=False),
    "pna": partial(PNAConv, avg_log_degree=1.0, avg_degree=2.0),
    "pna_edges": partial(PNAConv, avg_log_degree=1.0, avg_degree=2.0, edge_dim=EDGE_DIM),
    "sage": SAGEConv,
    "sage_max": partial(SAGEConv, aggr="max"),
}
#: Convolutions whose edge features have the node width (they update them).
EDGE_WIDTH_IS_DIM = {"gated_gcn", "graph_transformer"}


def _inputs(name: str, dtype=torch.float64, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    edge_index = torch.randint(0, N, (2, 40), generator=g)
    edge_index = torch.cat([edge_index, torch.tensor([[3, 5], [3, 5]])], 1)  # self loops too
    x = torch.randn(N, DIM, generator=g, dtype=dtype)
    conv = CONVS[name](DIM, DIM).to(dtype)
    edge_attr = None
    if getattr(conv, "supports_edge_attr", False):
        width = DIM if name in EDGE_WIDTH_IS_DIM else EDGE_DIM
        edge_attr = torch.randn(edge_index.size(1), width, generator=g, dtype=dtype)
    return conv.eval(), x, edge_index, edge_attr


@pytest.fixture(params=sorted(CONVS))
def name(request):
    return request.param


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_call_returns_the_pair_with_shapes_and_dtype(name, dtype):
    conv, x, edge_index, edge_attr = _inputs(name, dtype)
    graph = Graph.from_edge_index(edge_index, N)
    out = conv(x, graph, edge_attr)
    assert isinstance(out, tuple) and len(out) == 2
    h, e = out
    assert h.shape == (N, DIM) and h.dtype == dtype and bool(torch.isfinite(h).all())
    if edge_attr is None:
        assert e is None
    else:
        assert e.shape[0] == edge_index.size(1) and e.dtype == dtype


def test_rejects_what_it_cannot_use(name):
    conv, x, edge_index, edge_attr = _inputs(name)
    with pytest.raises(ValueError, match="graph"):
        conv(x, edge_index, edge_attr)  # an edge_index is not a Graph
    with pytest.raises(ValueError):
        conv(x, Graph.from_edge_index(edge_index, N + 1), edge_attr)  # another node count
    if edge_attr is None:
        with pytest.raises(ValueError, match="edge"):
            conv(x, Graph.from_edge_index(edge_index, N), torch.randn(edge_index.size(1), EDGE_DIM, dtype=x.dtype))


def test_permutation_equivariance(name):
    conv, x, edge_index, edge_attr = _inputs(name, seed=1)
    perm = torch.randperm(N, generator=torch.Generator().manual_seed(2))
    inverse = torch.empty_like(perm)
    inverse[perm] = torch.arange(N)
    h, e = conv(x, Graph.from_edge_index(edge_index, N), edge_attr)
    # Node v of the permuted graph is node perm[v] of the original; the edge order is shuffled too.
    order = torch.randperm(edge_index.size(1), generator=torch.Generator().manual_seed(3))
    hp, ep = conv(x[perm], Graph.from_edge_index(inverse[edge_index][:, order], N),
                  None if edge_attr is None else edge_attr[order])
    assert_close(hp, h[perm])
    if e is not None:
        assert_close(ep, e[order])


def test_works_in_every_composition_block(name):
    conv, x, edge_index, edge_attr = _inputs(name)
    graph = Graph.from_edge_index(edge_index, N, batch=torch.zeros(N, dtype=torch.long))
    factory = CONVS[name]
    torch.manual_seed(0)
    block = ConvLayer(DIM, DIM, factory).double().eval()
    h, e = block(x, graph, edge_attr)
    assert h.shape == (N, DIM) and (e is None) == (edge_attr is None)
    gps = GPSLayer(DIM, conv=factory(DIM, DIM)).double().eval()
    h, e = gps(x, graph, edge_attr)
    assert h.shape == (N, DIM) and (e is None) == (edge_attr is None)
    if edge_attr is None:  # a plain stack has no edge features
        stack = ConvStack(factory, DIM, DIM, DIM, num_layers=2).double().eval()
        assert stack(Data(x=x, edge_index=edge_index)).shape == (N, DIM)


def test_works_in_a_gnn_model(name):
    torch.manual_seed(0)
    _, x, edge_index, edge_attr = _inputs(name)
    edge_encoder = None
    if edge_attr is not None:  # raw edge features EDGE_DIM wide, encoded to what the conv reads
        edge_attr = torch.randn(edge_index.size(1), EDGE_DIM, dtype=x.dtype)
        width = DIM if name in EDGE_WIDTH_IS_DIM else EDGE_DIM
        edge_encoder = partial(LinearEncoder, EDGE_DIM)
        if width != DIM:  # the conv reads EDGE_DIM-wide features: keep them as they are
            edge_encoder = lambda out_channels: torch.nn.Identity()  # noqa: E731
    model = build_gnn(layer=partial(ConvLayer, conv=CONVS[name]), node_encoder=partial(LinearEncoder, DIM),
                      out_channels=2, hidden_channels=DIM, num_layers=2, edge_encoder=edge_encoder).double().eval()
    out = model(Data(x=x, edge_index=edge_index, edge_attr=edge_attr))
    assert out.shape == (N, 2) and bool(torch.isfinite(out).all())


@pytest.mark.slow
def test_compiles_without_graph_breaks(name):
    conv, x, edge_index, edge_attr = _inputs(name, torch.float32)
    graph = Graph.from_edge_index(edge_index, N)
    torch._dynamo.reset()
    explained = torch._dynamo.explain(conv)(x, graph, edge_attr)
    assert explained.graph_break_count == 0, [str(b.reason).splitlines()[0] for b in explained.break_reasons]
    compiled = torch.compile(conv, backend="eager")
    assert_close(compiled(x, graph, edge_attr)[0], conv(x, graph, edge_attr)[0])


def test_every_conv_has_a_contract_entry_and_a_config():
    """Each conv gnnlab ships is checked here and can be chosen with `model/conv=<name>` (conf/model/conv)."""
    import gnnlab.nn.conv as convs
    from gnnlab.cli import config_dir

    shipped = {getattr(convs, name) for name in convs.__all__}
    tested = {factory.func if isinstance(factory, partial) else factory for factory in CONVS.values()}
    assert shipped == tested, f"convs without a contract entry: {sorted(c.__name__ for c in shipped - tested)}"
    configured = {
        yaml.safe_load(path.read_text())["_target_"] for path in (config_dir() / "model" / "conv").glob("*.yaml")
    }
    missing = {f"gnnlab.nn.conv.{c.__name__}" for c in shipped} - configured
    assert not missing, f"convs without a conf/model/conv file: {sorted(missing)}"
