"""Link-prediction training: the data module's batches, the link task under the Trainer, whole runs from configs."""
from __future__ import annotations

import json

import pytest
import torch
from hydra.core.hydra_config import HydraConfig
from torch_geometric.utils import stochastic_blockmodel_graph

from gnnlab.data import shared_data_dir
from gnnlab.data.linkpred import LinkDataModule, ncn_random_split, sample_negative_pairs
from gnnlab.models.link import LinkPredictionModel, PropagationEncoder
from gnnlab.nn.link import HeuristicPredictor, NCNPredictor
from gnnlab.ops import Graph
from gnnlab.train import Trainer
from gnnlab.train.tasks import LinkPrediction
from gnnlab.train.run import train
from tests.conf.test_configs import compose_cfg


def _sbm_split(seed=0):
    """Four dense blocks, features that reveal the block: links are learnable, random pairs mostly not links."""
    torch.manual_seed(seed)
    ei = stochastic_blockmodel_graph([40, 40, 40, 40], [[0.25 if a == b else 0.005 for b in range(4)] for a in range(4)])
    block = torch.arange(160) // 40
    x = torch.nn.functional.pad(torch.nn.functional.one_hot(block, 4).float(), (0, 4)) + 0.3 * torch.randn(160, 8)
    return ncn_random_split(ei, 160, seed, x=x, name="sbm")


def test_negatives_are_non_edges_and_reproducible():
    split = _sbm_split()
    graph = Graph.undirected(split.train_pos, split.num_nodes)
    neg = sample_negative_pairs(graph, 5000, torch.Generator().manual_seed(1))
    assert neg.shape == (2, 5000) and bool((neg[0] != neg[1]).all())
    edges = set(map(tuple, graph.edge_index.t().tolist()))
    assert not any(tuple(p) in edges for p in neg.t().tolist())
    again = sample_negative_pairs(graph, 5000, torch.Generator().manual_seed(1))
    assert torch.equal(neg, again)
    with pytest.raises(ValueError, match="too dense"):
        complete = Graph.undirected(torch.combinations(torch.arange(6)).t(), 6)
        sample_negative_pairs(complete, 10)


def test_data_module_batches():
    split = _sbm_split()
    dm = LinkDataModule(split, batch_size=64, eval_batch_size=100, seed=3)
    epoch = dm.loader("train")
    n = split.train_pos.size(1)
    assert len(epoch) == n // 64
    seen = torch.cat([batch.pos for batch in epoch], dim=1)
    assert seen.size(1) == len(epoch) * 64
    assert len({tuple(p) for p in seen.t().tolist()}) == seen.size(1)  # each training pair at most once
    for batch in epoch:
        assert batch.pos.shape == batch.neg.shape == (2, 64) and batch.graph is dm.graph
    assert len(LinkDataModule(split, batch_size=64, drop_last=False).loader("train")) == -(-n // 64)
    (val,) = dm.loader("val")
    assert torch.equal(val.pos, split.valid_pos) and torch.equal(val.neg, split.valid_neg) and val.graph is dm.graph
    assert val.chunk_size == 100 and torch.equal(dm.graph.perm, torch.arange(dm.graph.num_edges))
    with_valid = LinkDataModule(split, batch_size=64, valid_edges_as_input=True)
    (test,) = with_valid.loader("test")
    assert test.graph.num_edges == dm.graph.num_edges + 2 * split.valid_pos.size(1)
    with pytest.raises(ValueError, match="unknown split"):
        dm.loader("dev")
    with pytest.raises(ValueError, match="fewer than one batch"):
        LinkDataModule(split, batch_size=10 ** 6)


def test_task_metrics_and_errors():
    task = LinkPrediction(metrics=["hits@2", "auc"])
    assert task.monitor == "hits@2"
    out = task.compute_metrics(torch.tensor([3.0, 0.5]), torch.tensor([1.0, 2.0, 0.0]))
    assert out == {"hits@2": 0.5, "auc": pytest.approx(4 / 6)}
    assert task.loss(torch.tensor([0.0]), torch.tensor([0.0])).item() == pytest.approx(2 * 0.6931, rel=1e-3)
    with pytest.raises(ValueError, match="unknown metric"):
        LinkPrediction(metrics=["hits@zero"])
    with pytest.raises(ValueError, match="monitor"):
        LinkPrediction(metrics=["auc"], monitor="mrr")


def _model(seed=0):
    torch.manual_seed(seed)
    return LinkPredictionModel(NCNPredictor(32, 32, dropout=0.1), PropagationEncoder(8, 32, aggr="gcn"),
                               encoder_lr=0.01, predictor_lr=0.01)


def test_trainer_learns_and_checkpoints(tmp_path):
    split = _sbm_split()
    dm = LinkDataModule(split, batch_size=128, eval_batch_size=256, seed=0)
    model = _model()
    trainer = Trainer(max_epochs=12, output_dir=str(tmp_path), progress=False)
    task = LinkPrediction(metrics=["auc", "hits@20"])
    before = trainer.evaluate(model, task, dm)
    cn = trainer.evaluate(LinkPredictionModel(HeuristicPredictor("cn")), task, dm)
    optimizer = torch.optim.Adam(model.optimizer_groups())
    result = trainer.fit(model, task, dm, optimizer)
    after = trainer.test_best(model, task, dm)
    assert result.epochs_run == 12 and (tmp_path / "checkpoints" / "best.ckpt").is_file()
    assert after["val/auc"] == pytest.approx(result.best_value)
    # Trained, NCN ranks held-out links above random pairs better than untrained and than CN alone.
    assert after["test/auc"] > max(before["test/auc"], cn["test/auc"]) + 0.05, (before, cn, after)


def test_task_without_target_link_removal_sees_its_targets(monkeypatch, tmp_path):
    split = _sbm_split()
    dm = LinkDataModule(split, batch_size=128, seed=0)
    seen = []
    model = _model()
    original = model.score

    def spy(h, graph, pairs, edge_mask=None):
        seen.append((pairs.size(1), edge_mask))
        return original(h, graph, pairs, edge_mask)

    monkeypatch.setattr(model, "score", spy)
    opt = torch.optim.Adam(model.parameters())
    trainer = Trainer(output_dir=str(tmp_path))
    trainer._run_split(model, LinkPrediction(), dm.loader("train"), "train", opt)
    # One predictor call per step on positives and negatives, the step's positives hidden.
    assert seen and all(b == 2 * 128 and m is not None and int((~m).sum()) == 2 * 128 for b, m in seen)
    seen.clear()
    trainer._run_split(model, LinkPrediction(target_link_removal=False), dm.loader("train"), "train", opt)
    assert seen and all(m is None for _, m in seen)


def test_evaluation_encodes_once_and_scores_in_chunks(monkeypatch, tmp_path):
    split = _sbm_split()
    dm = LinkDataModule(split, batch_size=64, eval_batch_size=50)
    model = _model()
    encoded, scored = [], []
    encode, score = model.encode, model.score

    def encode_spy(*args):
        encoded.append(1)
        return encode(*args)

    def score_spy(h, graph, pairs, edge_mask=None):
        scored.append(pairs.size(1))
        return score(h, graph, pairs, edge_mask)

    monkeypatch.setattr(model, "encode", encode_spy)
    monkeypatch.setattr(model, "score", score_spy)
    metrics = Trainer(output_dir=str(tmp_path)).evaluate(model, LinkPrediction(metrics=["auc"]), dm, ("val",))
    assert len(encoded) == 1 and max(scored) <= 50
    assert sum(scored) == split.valid_pos.size(1) + split.valid_neg.size(1)
    assert set(metrics) == {"val/loss", "val/auc"}


def test_heuristic_is_evaluated_not_trained(monkeypatch, tmp_path):
    split = _sbm_split()
    dm = LinkDataModule(split, batch_size=64)
    moves = []
    monkeypatch.setattr(dm, "to", lambda device: moves.append(device) or dm)
    model = LinkPredictionModel(HeuristicPredictor("cn"))
    result = Trainer(output_dir=str(tmp_path), progress=False).fit(model, LinkPrediction(metrics=["auc"]), dm, None)
    assert result.epochs_run == 1 and 0.5 < result.best_value <= 1.0
    assert (tmp_path / "checkpoints" / "best.ckpt").is_file() and moves  # the data module is placed, not its batches


def test_data_module_facts():
    split = _sbm_split()
    assert LinkDataModule(split, batch_size=64).facts == {"in_channels": 8, "num_nodes": 160}
    featureless = ncn_random_split(split.train_pos, 160, 0)
    assert LinkDataModule(featureless, batch_size=64).facts == {"in_channels": None, "num_nodes": 160}


def _cora_available() -> bool:
    shared = shared_data_dir()
    return shared is not None and (shared / "Planetoid" / "Cora" / "raw").exists()


@pytest.mark.skipif(not _cora_available(), reason="offline copy of Cora not found in ../shared/data")
@pytest.mark.parametrize("experiment", ["ncnc_cora", "gae_cora", "ra_cora"])
def test_cora_experiments_run(experiment, tmp_path):
    run_dir = tmp_path / "run"
    cfg = compose_cfg([f"experiment=linkpred/{experiment}", "trainer.max_epochs=2", f"paths.output_dir={run_dir}",
                       "logger=csv"], tmp_path)
    try:
        value = train(cfg)
    finally:
        HydraConfig.instance().cfg = None
    results = json.loads((run_dir / "results.json").read_text())
    assert results["best_value"] == pytest.approx(value)
    assert 0.0 < results["final"]["test/hits@100"] <= 1.0


@pytest.mark.skipif(not _cora_available(), reason="offline copy of Cora not found in ../shared/data")
@pytest.mark.parametrize("experiment", ["gae_cora", "cn_cora"])
def test_tc_command_on_a_trained_run(experiment, tmp_path):
    import csv

    from gnnlab.cli import tc_main

    run_dir = tmp_path / "run"
    cfg = compose_cfg([f"experiment=linkpred/{experiment}", "trainer.max_epochs=1", f"paths.output_dir={run_dir}",
                       "logger=csv"], tmp_path)
    try:
        train(cfg)
    finally:
        HydraConfig.instance().cfg = None
    out = tmp_path / "tc"
    assert tc_main([str(run_dir), "--out", str(out), "--bins", "5"]) == 0
    with open(out / "per_node.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2708 and set(rows[0]) == {"node", "degree", "tc", "hits"}
    scored = [r for r in rows if r["hits"]]
    assert scored and all(0.0 <= float(r["hits"]) <= 1.0 for r in scored)
    with open(out / "tc_bins.csv") as f:
        bins = list(csv.DictReader(f))
    assert len(bins) == 5 and sum(int(b["num_nodes"]) for b in bins) <= len(scored)
    assert (out / "performance_vs_tc.png").stat().st_size > 10_000
    assert tc_main([str(tmp_path / "missing"), "--out", str(out)]) == 1
