"""The facts a run reads from its dataset (``datamodule.facts``) are the dataset's, for every data config
whose data is at hand; the recorded copies the config tests use (``tests/facts.py``) match them."""
from __future__ import annotations

import math

import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from gnnlab.cli import config_dir
from tests.facts import FACTS

# data config -> offline copy it needs (None: generated), and whether building it is slow. Peptides-func
# (minutes of SMILES conversion) is covered by tests/data/test_lrgb.py: its declared vocabularies and
# the facts of a tiny copy built through its config.
CONFIGS = {
    "cora": ("Planetoid/Cora/raw", False),
    "mutag": ("TUDataset/MUTAG", False),
    "proteins": ("TUDataset/PROTEINS", False),
    "aqsol": ("AQSOL/raw", False),
    "pattern": (None, False),
    "cluster": (None, False),
    "cora_link": ("Planetoid/Cora/raw", False),
    "ogbl_ddi": ("ogbl_ddi", False),
}


@pytest.mark.parametrize(
    "data", [pytest.param(name, marks=[pytest.mark.slow] if slow else []) for name, (_, slow) in CONFIGS.items()]
)
def test_facts_are_read_from_the_data(data, offline_copy, tmp_path):
    relative, _ = CONFIGS[data]
    if relative is not None:
        offline_copy(relative, data)
    with initialize_config_dir(str(config_dir()), version_base="1.3"):
        cfg = compose("train", overrides=[f"data={data}", f"paths.root_dir={tmp_path}"])
    facts = instantiate(cfg.data.module).facts
    recorded = FACTS[cfg.data.name]
    for key, value in recorded.items():
        if key.startswith("avg_"):
            assert math.isfinite(facts[key]) and facts[key] > 0, key
        else:
            assert facts[key] == value, key
