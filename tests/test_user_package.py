"""Extending gnnlab from outside: a user's own package with a conv, a mixer, a PE and a dataset, found
through ``hydra.searchpath`` and ``_target_``, trained by ``gnnlab-train`` with no change to gnnlab
(the README's "Extend gnnlab" section describes the same layout)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PACKAGE = '''
"""myext: a user's own conv, mixer, positional encoding and dataset for gnnlab."""
import torch
from torch_geometric.data import Data
from torch_geometric.utils import scatter

from gnnlab.nn.conv.base import check_conv_inputs, reject_edge_attr
from gnnlab.nn.mixer.base import GlobalMixer, check_mixer_inputs
from gnnlab.ops import aggregate


class MeanConv(torch.nn.Module):
    """x_i' = W1 x_i + W2 mean_{j->i} x_j, following gnnlab's layer contract."""

    supports_edge_attr = False

    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.in_channels = in_channels
        self.root = torch.nn.Linear(in_channels, out_channels)
        self.neigh = torch.nn.Linear(in_channels, out_channels, bias=False)

    def forward(self, x, graph, edge_attr=None):
        check_conv_inputs("MeanConv", x, graph, self.in_channels)
        reject_edge_attr("MeanConv", edge_attr)
        return self.root(x) + self.neigh(aggregate(x, graph, reduce="mean")), None


class GraphMeanMixer(GlobalMixer):
    """Every node receives a linear map of its graph's mean feature."""

    def __init__(self, dim):
        super().__init__()
        self.dim = dim
        self.lin = torch.nn.Linear(dim, dim)

    def reset_parameters(self):
        self.lin.reset_parameters()

    def forward(self, x, batch=None):
        check_mixer_inputs("GraphMeanMixer", x, batch, self.dim)
        if batch is None:
            batch = x.new_zeros(x.size(0), dtype=torch.long)
        return self.lin(scatter(x, batch, 0, reduce="mean")[batch])


class DegreeTransform:
    """Precompute: log(1 + in-degree) of every node, as data.deg_pe."""

    cache_key = "DegreeTransform()"

    def __call__(self, data):
        deg = torch.zeros(data.num_nodes).index_add_(0, data.edge_index[1], torch.ones(data.edge_index.size(1)))
        data.deg_pe = torch.log1p(deg).unsqueeze(-1)
        return data


class DegreeEncoder(torch.nn.Module):
    def __init__(self, out_channels):
        super().__init__()
        self.out_channels = out_channels
        self.lin = torch.nn.Linear(1, out_channels)

    def forward(self, data, graph):
        return self.lin(data.deg_pe.to(self.lin.weight.dtype))


def load_rings(root, seed=0):
    """Cycles and paths of 5-12 nodes; label 1 for a cycle. Splits 64 / 16 / 16."""
    g = torch.Generator().manual_seed(seed)
    graphs = []
    for i in range(96):
        n = int(torch.randint(5, 13, (1,), generator=g))
        src = torch.arange(n - 1)
        ring = i % 2
        if ring:
            src = torch.arange(n)
        dst = (src + 1) % n
        edge_index = torch.cat([torch.stack([src, dst]), torch.stack([dst, src])], 1)
        graphs.append(Data(x=torch.ones(n, 1), edge_index=edge_index, y=torch.tensor([ring])))
    return {"train": graphs[:64], "val": graphs[64:80], "test": graphs[80:]}
'''

CONFIGS = {
    "model/conv/mean.yaml": """
        # @package model.layer.conv
        _target_: myext.MeanConv
        _partial_: true
    """,
    "model/mixer/graph_mean.yaml": """
        _target_: myext.GraphMeanMixer
        _partial_: true
    """,
    "pe/degree.yaml": """
        # @package _global_
        data:
          module:
            pe_transforms:
              degree: {_target_: myext.DegreeTransform}
        model:
          pe:
            degree: {_target_: myext.DegreeEncoder, _partial_: true, out_channels: 4}
    """,
    "data/rings.yaml": """
        defaults:
          - /task@_global_.task: graph_classification
        module:
          _target_: gnnlab.data.DataModule
          splits: {_target_: myext.load_rings, root: "${paths.data_dir}"}
          batch_size: 16
          seed: ${seed}
        name: rings
        pool: {_target_: hydra.utils.get_method, path: torch_geometric.nn.global_mean_pool}
        node_encoder: {_target_: gnnlab.nn.encoders.LinearEncoder, _partial_: true, in_channels: "${data.in_channels}"}
        edge_encoder: null
    """,
}


@pytest.mark.slow
def test_a_users_package_trains_with_no_change_to_gnnlab(tmp_path):
    package = tmp_path / "userpkg"
    (package / "myext").mkdir(parents=True)
    (package / "myext" / "__init__.py").write_text(PACKAGE)
    for name, text in CONFIGS.items():
        path = package / "conf" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(package), os.environ.get("PYTHONPATH", "")]),
           "WANDB_MODE": "offline"}
    cmd = [sys.executable, "-m", "gnnlab.train", f"hydra.searchpath=[file://{package / 'conf'}]",
           "data=rings", "model=gps", "model/conv=mean", "model/mixer@model.layer.mixer=graph_mean", "pe=degree",
           "model.hidden_channels=16", "model.num_layers=2", "model.layer.local_residual=true",
           "trainer.max_epochs=2", "trainer.progress=false", f"paths.output_dir={out}", f"hydra.run.dir={out}",
           f"paths.data_dir={tmp_path / 'data'}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    resolved = (out / "config_resolved.yaml").read_text()
    for target in ("myext.MeanConv", "myext.GraphMeanMixer", "myext.DegreeEncoder", "myext.load_rings"):
        assert target in resolved
    result = json.loads((out / "results.json").read_text())
    assert "test/accuracy" in json.dumps(result)
    assert Path(out / "metrics.csv").is_file()
