"""k-fold model selection and assessment (gnnlab.cross_validation): grid, selection per fold, assessment, scores."""
from __future__ import annotations

import json
import statistics

import pytest
from omegaconf import OmegaConf

from gnnlab import sweeps
from gnnlab.cross_validation import collect_folds, grid_points, model_selection, run_folds, select
from gnnlab.errors import ConfigError


def test_grid_points_are_the_product_of_the_axes_with_compound_values():
    grid = [["a=1", "a=2"], ["b=1 c=1", "b=2 c=2"]]
    assert grid_points(grid) == [["a=1", "b=1", "c=1"], ["a=1", "b=2", "c=2"], ["a=2", "b=1", "c=1"],
                                 ["a=2", "b=2", "c=2"]]


def test_the_shipped_protocols():
    mutag = model_selection("tu/gin_mutag")
    assert (mutag["folds"], mutag["assessment_runs"], mutag["full_grid"]) == (10, 3, 8)
    proteins = model_selection("tu/gin_proteins")
    assert proteins["full_grid"] == len(grid_points(proteins["grid"])) == 128  # the authors' grid
    reduced = model_selection("tu/gin_proteins", {"grid": [["data.module.batch_size=32"]]})
    assert len(grid_points(reduced["grid"])) == 1 and reduced["full_grid"] == 128
    assert model_selection("planetoid/gcn_cora") is None
    with pytest.raises(ConfigError, match="unknown model_selection keys"):
        model_selection("tu/gin_mutag", {"fold": 3})
    with pytest.raises(ConfigError, match="which has none"):
        model_selection("planetoid/gcn_cora", {"folds": 3})


def _fake_run(run_dir, overrides, val, test, best_epoch=5):
    (run_dir / ".hydra").mkdir(parents=True, exist_ok=True)
    OmegaConf.save(OmegaConf.create({"seed": 0, "benchmark": {"metric": "test/accuracy", "scale": 100}}),
                   run_dir / ".hydra" / "config.yaml")
    OmegaConf.save(OmegaConf.create(overrides), run_dir / ".hydra" / "overrides.yaml")
    (run_dir / "results.json").write_text(json.dumps({
        "best_epoch": best_epoch, "epochs_run": 2 * best_epoch,
        "final": {"val/accuracy": val, "test/accuracy": test}, "last": {"val/accuracy": val, "test/accuracy": test}}))


def test_each_fold_selects_on_validation_and_scores_the_winner_on_test(tmp_path, monkeypatch):
    """Fold k's grid point 1 has the best validation accuracy on fold 0, point 0 on fold 1; the fold's
    score is the mean test accuracy of the winner's assessment runs, whatever the losers' test scores."""
    spec = {"folds": 2, "fold_key": "fold", "metric": "val/accuracy", "mode": "max", "assessment_runs": 2,
            "grid": [["h=1", "h=2"]], "full_grid": 2}
    val = {(0, "h=1"): 0.6, (0, "h=2"): 0.8, (1, "h=1"): 0.9, (1, "h=2"): 0.7}
    calls = []

    def call(cmd):
        calls.append(cmd)
        fold = int(next(o for o in cmd if o.startswith("fold=")).split("=")[1])
        h = next(o for o in cmd if o.startswith("h="))
        overrides = ["experiment=e", f"fold={fold}", h]
        if not any(o.startswith("hydra.sweep.dir=") for o in cmd):  # a grid point: test accuracy 0.99 must not leak into the score
            run_dir = next(o for o in cmd if o.startswith("hydra.run.dir=")).split("=", 1)[1]
            _fake_run(tmp_path.joinpath(run_dir), overrides, val[fold, h], 0.99)
            return
        sweep = next(o for o in cmd if o.startswith("hydra.sweep.dir=")).split("=", 1)[1]
        for seed in next(o for o in cmd if o.startswith("seed=")).split("=")[1].split(","):
            _fake_run(tmp_path.joinpath(sweep, seed), [*overrides, f"seed={seed}"], 0.0, 0.5 + 0.1 * int(seed))

    monkeypatch.setattr(sweeps, "run_command", call)
    run_folds(spec, tmp_path / "row", ["experiment=e"], "row")
    assert select(spec, tmp_path / "row/fold_0", 2) == 1 and select(spec, tmp_path / "row/fold_1", 2) == 0
    assessed = [c for c in calls if c[3] == "-m"]
    assert [("h=2" in c, "fold=0" in c) for c in assessed] == [(True, True), (False, False)]
    folds = collect_folds(spec, tmp_path / "row", "test/accuracy", "final")
    assert [f["final"]["test/accuracy"] for f in folds] == [pytest.approx(statistics.fmean([0.5, 0.6]))] * 2
    assert folds[0]["budget"] == []
    # A second call reuses everything.
    calls.clear()
    run_folds(spec, tmp_path / "row", ["experiment=e"], "row")
    assert calls == []
    # A reduced grid is a reduced budget.
    reduced = {**spec, "grid": [["h=1"]]}
    assert collect_folds(reduced, tmp_path / "row", "test/accuracy", "final")[0]["budget"] == ["grid of 1 of 2 points"]
