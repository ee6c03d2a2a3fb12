"""Models keep the caller's dtype: float64 (gradcheck) and bfloat16 (mixed precision) pass through."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from torch_geometric.data import Batch, Data

from gnnlab.cli import config_dir
from gnnlab.models import ConvStack, WithAuxLoss
from gnnlab.nn.conv import GCNConv
from gnnlab.ops import Graph
from tests.conf.test_configs import LINK_MODELS
from tests.facts import with_facts

CONF = config_dir()
# Every node- and graph-level model config (the link-prediction models score pairs, not graphs).
MODELS = sorted(p.stem for p in (CONF / "model").glob("*.yaml") if p.stem not in LINK_MODELS)

#: Models of raw float node features (Planetoid; PROTEINS for the graph classifiers whose configs read its
#: node-count facts); the others read CLUSTER-like tokens.
FLOAT_FEATURES = {"gcn_plain", "gat_plain", "dagnn", "fingerprint", "dgcnn", "diffpool", "ecc"}
TU_MODELS = {"dgcnn", "diffpool", "ecc"}


def _graph(n: int, seed: int, x: torch.Tensor | None = None) -> Data:
    g = torch.Generator().manual_seed(seed)
    upper = torch.triu(torch.rand(n, n, generator=g) < 0.4, diagonal=1)
    src, dst = upper.nonzero().t()
    edge_index = torch.cat([torch.stack([src, dst]), torch.stack([dst, src])], 1)
    if x is None:
        x = torch.randint(0, 7, (n,), generator=g)  # CLUSTER-like node tokens
    return Data(x=x, edge_index=edge_index)


def _model(name: str, tmp_path: Path) -> torch.nn.Module:
    """The model of ``conf/model/<name>.yaml``, sized down, built as a run builds it."""
    return instantiate(_config(name, tmp_path).model).eval()


def _transforms(name: str, tmp_path: Path) -> list:
    """The precompute transforms the model's config selects (``model=gsmpp`` brings its HAC tree)."""
    return [instantiate(t) for t in (_config(name, tmp_path).data.module.get("pe_transforms") or {}).values()]


def _config(name: str, tmp_path: Path):
    data = "proteins" if name in TU_MODELS else "cora" if name in FLOAT_FEATURES else "cluster"
    overrides = [f"model={name}", f"data={data}", f"paths.root_dir={tmp_path}",
                 f"paths.output_dir={tmp_path / 'run'}"]
    if name in FLOAT_FEATURES:
        overrides.append("model.in_channels=5")
    else:
        overrides.append("model.num_layers=2")
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    torch.manual_seed(0)
    return with_facts(cfg)


def _out(model, batch) -> torch.Tensor:
    """The model's output; for one that also returns an auxiliary loss, both must keep the dtype."""
    out = model(batch)
    if isinstance(out, WithAuxLoss):
        assert out.aux_loss.dtype == out.out.dtype and torch.isfinite(out.aux_loss.float())
        out = out.out
    return out


def _batch(name: str, dtype: torch.dtype, transforms: list = ()) -> Batch:
    if name in FLOAT_FEATURES:
        g = torch.Generator().manual_seed(3)
        graphs = [_graph(7, 1, torch.randn(7, 5, generator=g, dtype=dtype))]
    else:
        graphs = [_graph(7, 1), _graph(5, 2)]
    for t in transforms:
        graphs = [t(g) for g in graphs]
    return Batch.from_data_list(graphs)


@pytest.mark.parametrize("name", MODELS)
def test_float64_forward_keeps_float64(name, tmp_path):
    model = _model(name, tmp_path).double()
    out = _out(model, _batch(name, torch.float64, _transforms(name, tmp_path)))
    assert out.dtype == torch.float64
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", MODELS)
def test_bfloat16_forward_keeps_bfloat16(name, tmp_path):
    model = _model(name, tmp_path).to(torch.bfloat16)
    out = _out(model, _batch(name, torch.bfloat16, _transforms(name, tmp_path)))
    assert out.dtype == torch.bfloat16
    assert torch.isfinite(out.float()).all()


def test_gcn_plain_matches_float32_in_float64(tmp_path):
    """The float64 model computes the same function as the float32 one (no silent down-cast)."""
    model = _model("gcn_plain", tmp_path)
    batch = _batch("gcn_plain", torch.float64)
    expected = model(Batch.from_data_list([Data(x=batch.x.float(), edge_index=batch.edge_index)]))
    out = model.double()(batch)
    assert out.dtype == torch.float64
    torch.testing.assert_close(out.float(), expected, atol=1e-5, rtol=1e-4)


def test_conv_stack_gradcheck_float64():
    torch.manual_seed(0)
    model = ConvStack(GCNConv, in_channels=3, hidden_channels=4, out_channels=2, num_layers=2).double().eval()
    data = _graph(6, 4, torch.randn(6, 3, dtype=torch.float64))

    def fn(x):
        return model(Data(x=x, edge_index=data.edge_index))

    x = data.x.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(fn, (x,), eps=1e-6, atol=1e-5)


def test_gcn_conv_gradcheck_float64():
    torch.manual_seed(0)
    conv = GCNConv(3, 4).double()
    data = _graph(6, 5, torch.randn(6, 3, dtype=torch.float64))
    graph = Graph.from_edge_index(data.edge_index, data.num_nodes)
    x = data.x.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: conv(x, graph)[0], (x,), eps=1e-6, atol=1e-5)


def test_conv_stack_casts_integer_features_to_its_dtype():
    """Integer (e.g. one-hot stored as int) features become the parameters' dtype, not float32."""
    model = ConvStack(GCNConv, in_channels=3, hidden_channels=4, out_channels=2).double().eval()
    data = _graph(6, 6, torch.randint(0, 2, (6, 3)))
    assert model(data).dtype == torch.float64
