"""The facts of every data config's dataset, as ``gnnlab-train`` reads them from the loaded data.

Tests that compose a config and build its model without loading the data (most datasets are not at
hand in every test environment) add these; ``tests/data/test_facts.py`` checks them against the
real data wherever it is at hand. The degree statistics only need to be plausible here.
"""
from __future__ import annotations

from gnnlab.train.run import add_facts

_DEGREE = {"avg_degree": 2.0, "avg_log_degree": 1.0}
_NONE = dict.fromkeys(("in_channels", "edge_dim", "num_node_tokens", "num_edge_tokens", "num_nodes"))
_SBM = {**_NONE, "num_node_tokens": 3, "num_edge_tokens": 1, **_DEGREE}
_PEPTIDES = {**_NONE, "num_node_tokens": [119, 5, 12, 12, 10, 6, 6, 2, 2], "num_edge_tokens": [5, 6, 2], **_DEGREE}
_ZINC = {**_NONE, "num_node_tokens": 28, "num_edge_tokens": 4, "num_outputs": 1, **_DEGREE}

#: data.name -> facts
FACTS = {
    "Cora": {**_NONE, "in_channels": 1433, "num_outputs": 7, "num_nodes": 2708, **_DEGREE},
    "CiteSeer": {**_NONE, "in_channels": 3703, "num_outputs": 6, "num_nodes": 3327, **_DEGREE},
    "PubMed": {**_NONE, "in_channels": 500, "num_outputs": 3, "num_nodes": 19717, **_DEGREE},
    "MUTAG": {**_NONE, "in_channels": 7, "edge_dim": 4, "num_outputs": 2, **_DEGREE,
              "node_count_deciles": [10, 12, 13, 15, 16, 17, 20, 21, 23, 23, 28]},
    "PROTEINS": {**_NONE, "in_channels": 3, "num_outputs": 2, **_DEGREE,
                 "node_count_deciles": [4, 9, 13, 18, 22, 26, 32, 39, 53, 78, 620]},
    "PATTERN": {**_SBM, "num_outputs": 2},
    "CLUSTER": {**_SBM, "num_node_tokens": 7, "num_outputs": 6},
    "AQSOL": {**_NONE, "num_node_tokens": 65, "num_edge_tokens": 5, "num_outputs": 1, **_DEGREE},
    "ZINC-12k": _ZINC,
    "ZINC-full": _ZINC,
    "Peptides-func": {**_PEPTIDES, "num_outputs": 10},
    "Peptides-struct": {**_PEPTIDES, "num_outputs": 11},
    "Cora-links": {"in_channels": 1433, "num_nodes": 2708},
    "ogbl-ddi": {"in_channels": None, "num_nodes": 4267},
    "ogbl-collab": {"in_channels": 128, "num_nodes": 235868},
    "ogbl-ppa": {"in_channels": 58, "num_nodes": 576289},
    "ogbl-citation2": {"in_channels": 128, "num_nodes": 2927963},
}


#: For a dataset not recorded above: values any encoder type accepts.
GENERIC = {"in_channels": 8, "edge_dim": 4, "num_node_tokens": 8, "num_edge_tokens": 4, "num_outputs": 2,
           "num_nodes": 16, **_DEGREE}


def with_facts(cfg):
    """``cfg`` with its dataset's recorded facts in ``cfg.data`` (as a run adds the loaded data's)."""
    return add_facts(cfg, FACTS.get(cfg.data.name, GENERIC))
