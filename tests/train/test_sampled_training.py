"""Training on neighbour-sampled batches from the command-line config: `data=cora_sampled`."""
from __future__ import annotations

import json

import pytest
from hydra.core.hydra_config import HydraConfig

from gnnlab.train.run import train
from tests.conf.test_configs import compose_cfg


def _train_cora(tmp_path, epochs: int, extra: list[str] = ()) -> tuple[float, dict]:
    from gnnlab.data import shared_data_dir

    shared = shared_data_dir()
    if shared is None or not (shared / "Planetoid" / "Cora").exists():
        pytest.skip("offline copy of Cora not found (GNNLAB_SHARED_DATA, default ../shared/data)")
    run_dir = tmp_path / "run"
    cfg = compose_cfg(["data=cora_sampled", "model=sage", "model.num_layers=2", f"trainer.max_epochs={epochs}",
                       "trainer.progress=false", f"paths.output_dir={run_dir}", *extra], tmp_path, facts=False)
    try:
        best = train(cfg)
    finally:
        HydraConfig.instance().cfg = None
    return best, json.loads((run_dir / "results.json").read_text())


@pytest.mark.shared_data
def test_cora_sampled_runs_from_the_config(tmp_path):
    """`gnnlab-train data=cora_sampled model=sage model.num_layers=2`: one epoch, scored on the whole graph."""
    best, results = _train_cora(tmp_path, 1)
    assert results["epochs_run"] == 1 and 0.0 <= best <= 1.0
    assert {"val/accuracy", "test/accuracy"} <= set(results["final"])


@pytest.mark.slow
@pytest.mark.shared_data
def test_cora_sampled_trains(tmp_path):
    """A 2-layer SAGE on sampled Cora batches learns: full-graph (layer-wise) val accuracy far above chance."""
    best, results = _train_cora(tmp_path, 8, ["model.hidden_channels=64", "model.layer.batch_norm=false",
                                              "optim.lr=0.02", "data.module.batch_size=16"])
    # Seven classes, the largest about 30% of the nodes (this run reaches about 0.57 on both).
    assert best > 0.45, results
    assert results["final"]["test/accuracy"] > 0.45, results
    assert results["epochs_run"] == 8


@pytest.mark.slow
@pytest.mark.shared_data
def test_cora_sampled_link_runs_from_the_config(tmp_path):
    """`gnnlab-train data=cora_sampled_link model=gae`: LinkNeighborLoader batches through the link task."""
    from gnnlab.data import shared_data_dir

    shared = shared_data_dir()
    if shared is None or not (shared / "Planetoid" / "Cora").exists():
        pytest.skip("offline copy of Cora not found (GNNLAB_SHARED_DATA, default ../shared/data)")
    run_dir = tmp_path / "run"
    cfg = compose_cfg(["data=cora_sampled_link", "model=gae", "model.encoder.hidden_channels=32",
                       "model.encoder.out_channels=32", "model.predictor.hidden_channels=32", "trainer.max_epochs=1",
                       "trainer.progress=false", f"paths.output_dir={run_dir}"], tmp_path, facts=False)
    try:
        train(cfg)
    finally:
        HydraConfig.instance().cfg = None
    results = json.loads((run_dir / "results.json").read_text())
    assert results["epochs_run"] == 1 and 0.0 <= results["final"]["test/hits@100"] <= 1.0
