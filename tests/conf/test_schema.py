"""The typed-value check of composed configs: shipped configs pass, wrong values name key, value and type."""
from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from gnnlab.config_schema import validate_config
from gnnlab.errors import ConfigError
from tests.conf.test_configs import LINK_MODELS, _options, compose_cfg


@pytest.mark.parametrize("experiment", _options("experiment"))
def test_every_experiment_passes(experiment, tmp_path):
    validate_config(compose_cfg([f"experiment={experiment}"], tmp_path))


@pytest.mark.parametrize("model", _options("model", recursive=False))
def test_every_model_passes(model, tmp_path):
    data = ("cora" if model == "gcn_plain" else "cora_link" if model in LINK_MODELS
            else "proteins" if model in ("dgcnn", "diffpool", "ecc") else "cluster")
    validate_config(compose_cfg([f"model={model}", f"data={data}"], tmp_path))


@pytest.mark.parametrize("group", ["data", "optim", "scheduler", "trainer", "pe"])
def test_every_group_option_passes(group, tmp_path):
    for option in _options(group, recursive=False):
        # Link datasets have no num_outputs for the default node model: pair them with a link model.
        link = group == "data" and (option.endswith("_link") or option.startswith("ogbl_"))
        extra = ["model=ncn"] if link else []
        validate_config(compose_cfg([f"{group}={option}", *extra], tmp_path))


@pytest.mark.parametrize(
    "override, expected",
    [
        ("trainer.max_epochs=abc", "trainer.max_epochs='abc' (str): expected int >= 0"),
        ("trainer.max_epochs=2.5", "trainer.max_epochs=2.5 (float): expected int >= 0"),
        ("trainer.max_epochs=-1", "trainer.max_epochs=-1 (int): expected int >= 0"),
        ("trainer.progress=maybe", "trainer.progress='maybe' (str): expected bool"),
        ("trainer.grad_clip=big", "trainer.grad_clip='big' (str): expected float > 0 or null"),
        ("trainer.accelerator=tpu", "trainer.accelerator='tpu' (str): expected one of 'auto', 'cpu', 'cuda'"),
        ("optim.lr=fast", "optim.lr='fast' (str): expected float > 0"),
        ("optim.lr=0", "optim.lr=0 (int): expected float > 0"),
        ("seed=one", "seed='one' (str): expected int >= 0"),
        ("data.module.batch_size=0", "data.module.batch_size=0 (int): expected int >= 1"),
        ("model.hidden_channels=wide", "model.hidden_channels='wide' (str): expected int >= 1"),
        ("model.layer.dropout=1.5", "model.layer.dropout=1.5 (float): expected float in [0, 1]"),
    ],
)
def test_wrong_value_names_key_value_and_type(override, expected, tmp_path):
    cfg = compose_cfg([override], tmp_path)
    with pytest.raises(ConfigError) as info:
        validate_config(cfg)
    message = str(info.value)
    assert expected in message
    assert "\n" not in message


def test_every_wrong_value_is_listed(tmp_path):
    cfg = compose_cfg(["trainer.max_epochs=abc", "optim.lr=fast"], tmp_path)
    with pytest.raises(ConfigError, match=r"trainer\.max_epochs='abc'.*; optim\.lr='fast'"):
        validate_config(cfg)


def test_floats_accept_integers_and_optional_keys_accept_null(tmp_path):
    validate_config(compose_cfg(["optim.lr=1", "trainer.grad_clip=null", "trainer.patience=null"], tmp_path))


def test_unresolvable_interpolation_names_the_key():
    cfg = OmegaConf.create({"trainer": {"max_epochs": "${nowhere.epochs}"}})
    with pytest.raises(ConfigError, match="trainer.max_epochs"):
        validate_config(cfg)


def test_a_model_that_reads_a_fact_the_dataset_lacks_names_both(tmp_path):
    # A node/graph model on a link-prediction dataset: data.num_outputs is no fact of the dataset.
    cfg = compose_cfg(["data=cora_link", "model=gcn"], tmp_path)
    OmegaConf.update(cfg, "data.name", "Cora-links", force_add=True)
    with pytest.raises(ConfigError, match=r"reads data\.num_outputs, which this dataset \(Cora-links\) does not "
                                          r"provide.*take[s]? a link model: model=gae"):
        validate_config(cfg)
