"""Every config file composes, and every object it describes instantiates."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import OmegaConf

from gnnlab.cli import config_dir
from gnnlab.errors import ConfigError
from gnnlab.published import published_cell
from gnnlab.train.run import add_facts
from tests.facts import FACTS, with_facts

CONF = config_dir()
# What a benchmark row's header says when it leaves benchmark.published empty (one of these).
NO_PUBLISHED_REASONS = ("could not be read offline", "reports no result for this cell")


def _options(group: str, recursive: bool = True) -> list[str]:
    root = CONF / group
    files = root.rglob("*.yaml") if recursive else root.glob("*.yaml")
    return sorted(str(p.relative_to(root).with_suffix("")) for p in files)


def _is_link_model(name: str) -> bool:
    """Whether conf/model/<name>.yaml builds a link-prediction model (itself or through a model it extends)."""
    cfg = yaml.safe_load((CONF / "model" / f"{name}.yaml").read_text())
    if cfg.get("_target_") == "gnnlab.models.link.LinkPredictionModel":
        return True
    parents = [d for d in cfg.get("defaults", []) if isinstance(d, str) and (CONF / "model" / f"{d}.yaml").is_file()]
    return any(_is_link_model(parent) for parent in parents)


#: The model configs that score node pairs (they train on link-prediction data).
LINK_MODELS = {m for m in _options("model", recursive=False) if _is_link_model(m)}


def compose_cfg(overrides: list[str], tmp_path: Path, facts: bool = True):
    """Compose ``train`` with Hydra's own config resolvable (as in a real run) and, unless ``facts`` is
    false (a config that a test trains: the run reads the facts from the data), the recorded facts."""
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[f"paths.root_dir={tmp_path}", f"paths.output_dir={tmp_path / 'run'}", *overrides],
            return_hydra_config=True,
        )
    HydraConfig.instance().set_config(cfg)
    return with_facts(cfg) if facts else cfg


def test_groups_present():
    for group in ["data", "model", "pe", "optim", "scheduler", "trainer", "logger", "paths", "experiment", "task", "hydra"]:
        assert (CONF / group).is_dir(), group
        assert _options(group), f"config group {group} is empty"


@pytest.mark.parametrize("data", _options("data"))
def test_data_configs(data, tmp_path):
    cfg = compose_cfg([f"data={data}"], tmp_path)
    if cfg.data.module._target_ in ("gnnlab.data.linkpred.LinkDataModule", "gnnlab.data.SampledLinkDataModule"):
        # Link prediction: pair batches for the link task, ranking metrics; the split loader touches the disk.
        task = instantiate(cfg.task)
        assert task.level == "link" and task.monitor.startswith(("hits@", "mrr", "auc"))
        assert int(cfg.data.num_nodes) >= 1 and "in_channels" in cfg.data
        return
    # The splits loaders touch the disk (and need the offline copies for real datasets): build the rest.
    node_encoder = instantiate(cfg.data.node_encoder)(out_channels=8)
    assert isinstance(node_encoder, torch.nn.Module)
    if cfg.data.edge_encoder is not None:
        assert isinstance(instantiate(cfg.data.edge_encoder)(out_channels=8), torch.nn.Module)
    if cfg.data.pool is not None:
        assert callable(instantiate(cfg.data.pool))
    task = instantiate(cfg.task)
    assert task.monitor and task.mode in ("min", "max")
    assert cfg.data.module._target_ in ("gnnlab.data.DataModule", "gnnlab.data.SampledNodeDataModule")
    assert int(cfg.data.num_outputs) >= 1


# conf/model/<sub>/ holds parts of models (e.g. model/mixer), composed into a model config.
@pytest.mark.parametrize("model", _options("model", recursive=False))
def test_model_configs(model, tmp_path):
    data = ("cora" if model in ("gcn_plain", "gat_plain", "dagnn", "fingerprint") else "cora_link" if model in LINK_MODELS
            else "proteins" if model in ("dgcnn", "diffpool", "ecc") else "cluster")
    cfg = compose_cfg([f"model={model}", f"data={data}"], tmp_path)
    net = instantiate(cfg.model)
    assert sum(p.numel() for p in net.parameters()) > 0 or model == "link_heuristic"


def test_models_read_the_facts_of_the_data(tmp_path):
    """Widths, vocabularies, classes and PNA's degree statistics come from the dataset, not from typing."""
    cfg = compose_cfg(["model=pna", "data=mutag"], tmp_path)
    net = instantiate(cfg.model)
    conv = net.layers[0].conv
    assert float(conv.avg_deg_log) == FACTS["MUTAG"]["avg_log_degree"]
    assert net.node_encoder.in_channels == 7
    assert [m for m in net.modules() if isinstance(m, torch.nn.Linear)][-1].out_features == 2


def test_a_stated_fact_must_agree_with_the_data(tmp_path):
    cfg = compose_cfg(["data=mutag"], tmp_path)
    add_facts(cfg, FACTS["MUTAG"])  # the same values again: accepted
    with pytest.raises(ConfigError, match=r"data.in_channels=7 in the config, but the loaded dataset \(MUTAG\) has in_channels=3"):
        add_facts(cfg, {**FACTS["MUTAG"], "in_channels": 3})


@pytest.mark.parametrize("data", _options("data"))
def test_every_dataset_has_a_name_and_states_no_facts(data):
    text = (CONF / "data" / f"{data}.yaml").read_text()
    lines = [line.split("#")[0].rstrip() for line in text.splitlines()]
    stated = [line for line in lines if line.split(":")[0] in FACTS["MUTAG"]]
    assert not stated, f"data/{data}.yaml types facts the dataset knows: {stated}"
    assert "name: " in text


@pytest.mark.parametrize("optim", _options("optim"))
@pytest.mark.parametrize("scheduler", _options("scheduler"))
def test_optim_and_scheduler_configs(optim, scheduler, tmp_path):
    cfg = compose_cfg([f"optim={optim}", f"scheduler={scheduler}"], tmp_path)
    params = [torch.nn.Parameter(torch.randn(3))]
    opt = instantiate(cfg.optim)(params=params)
    assert isinstance(opt, torch.optim.Optimizer)
    if cfg.get("scheduler"):
        instantiate(cfg.scheduler)(optimizer=opt)


@pytest.mark.parametrize("logger", _options("logger"))
def test_logger_configs(logger, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    cfg = compose_cfg([f"logger={logger}"], tmp_path)
    for name, sub in (cfg.get("logger") or {}).items():
        obj = instantiate(sub)
        assert hasattr(obj, "log_metrics"), name
        obj.finalize("success")


def test_trainer_and_paths(tmp_path):
    cfg = compose_cfg([], tmp_path)
    trainer_cfg = OmegaConf.to_container(cfg.trainer, resolve=True)
    trainer_cfg.pop("resume")
    trainer = instantiate(trainer_cfg)
    assert trainer.max_epochs == cfg.trainer.max_epochs
    assert Path(cfg.paths.data_dir) == tmp_path / "datasets"


@pytest.mark.parametrize("experiment", _options("experiment"))
def test_experiment_configs(experiment, tmp_path):
    text = (CONF / "experiment" / f"{experiment}.yaml").read_text()
    assert text.startswith("# @package _global_"), "experiment files are global diffs"
    for word in ("Paper:", "Table:", "gnnlab-"):
        assert word in text, f"experiment header should name the {word} (paper, table, command)"
    cfg = compose_cfg([f"experiment={experiment}"], tmp_path)
    instantiate(cfg.model)
    instantiate(cfg.task)
    assert cfg.benchmark.metric
    # Every experiment is a row of one benchmark table (conf/table); an empty published value is allowed
    # only where the header says why.
    cell = published_cell(experiment)
    assert cell, f"{experiment} is in no conf/table file"
    assert cell["published"] is not None or any(reason in text for reason in NO_PUBLISHED_REASONS)


def test_unknown_key_is_rejected(tmp_path):
    with pytest.raises(Exception, match="no_such_key"):
        compose_cfg(["model.no_such_key=3"], tmp_path)


def test_unknown_dataset_is_rejected(tmp_path):
    with pytest.raises(Exception, match="no_such_dataset"):
        compose_cfg(["data=no_such_dataset"], tmp_path)


def test_link_model_on_ddi_uses_an_embedding(tmp_path):
    cfg = compose_cfg(["model=ncn", "data=ogbl_ddi"], tmp_path)
    net = instantiate(cfg.model)
    assert net.encoder.embedding is not None and net.encoder.embedding.num_embeddings == 4267
    assert instantiate(cfg.task).monitor == "hits@20"


PE_NAMES = [p for p in _options("pe") if p != "none"]
# The LapPE encoders share the eigenpairs and the keys (model.pe.lappe), so checkpoints and overrides carry over.
LAPPE_VARIANTS = {"lappe": "LapPEDeepSet", "lappe_linear": "LapPELinear", "lappe_transformer": "LapPETransformer"}


@pytest.mark.parametrize("pe", [*PE_NAMES, "[lappe,rwse]", "[rwse,spe,fastrp]", "[lappe_linear,rwse]"])
@pytest.mark.parametrize("model", ["gps", "gated_gcn", "gt"])
def test_pe_configs_wire_transform_and_encoder(pe, model, tmp_path):
    """`pe=` (one or several) adds the precompute transforms to the data module and the encoders to the model."""
    cfg = compose_cfg([f"pe={pe}", f"model={model}", "data=cluster"], tmp_path)
    names = ["lappe" if n in LAPPE_VARIANTS else n for n in pe.strip("[]").split(",")]
    assert list(cfg.data.module.pe_transforms) == names
    assert list(cfg.model.pe) == names
    transforms = {n: instantiate(t) for n, t in cfg.data.module.pe_transforms.items()}
    net = instantiate(cfg.model)
    assert list(net.pe_encoders) == names
    # Each encoder reads what its transform writes: run them on one small graph.
    from torch_geometric.data import Batch, Data

    ring = torch.arange(12)
    edge_index = torch.stack([torch.cat([ring, (ring + 1) % 12]), torch.cat([(ring + 1) % 12, ring])])
    data = Data(x=torch.zeros(12, dtype=torch.long), edge_index=edge_index, num_nodes=12, y=torch.zeros(12, dtype=torch.long))
    for t in transforms.values():
        data = t(data)
    net.eval()
    out = net(Batch.from_data_list([data, data]))
    assert out.shape == (24, int(cfg.data.num_outputs)) and torch.isfinite(out).all()


@pytest.mark.parametrize("pe, cls", LAPPE_VARIANTS.items())
def test_lappe_encoder_is_chosen_by_the_pe_config(pe, cls, tmp_path):
    """Each LapPE encoder is its own `pe=` option; no string inside the encoder picks the architecture."""
    cfg = compose_cfg([f"pe={pe}", "model=gps"], tmp_path)
    assert "model" not in cfg.model.pe.lappe
    assert type(instantiate(cfg.model).pe_encoders["lappe"]).__name__ == cls


def test_lappe_experiments_select_their_encoder_by_config(tmp_path):
    """Benchmarking-GNNs and GT rows use the linear LapPE, GraphGPS and Graph-Mamba rows the DeepSet."""
    rows = [e for e in _options("experiment") if "lappe" in (CONF / "experiment" / f"{e}.yaml").read_text()]
    assert rows
    for row in rows:
        cfg = compose_cfg([f"experiment={row}"], tmp_path)
        expected = "LapPELinear" if row.startswith(("benchgnn/", "gt/")) else "LapPEDeepSet"
        assert cfg.model.pe.lappe._target_ == f"gnnlab.nn.pe.{expected}", row


@pytest.mark.parametrize("mixer, name", [("performer", "PerformerMixer"), ("mamba", "GraphMambaMixer")])
def test_model_mixer_swap(mixer, name, tmp_path):
    cfg = compose_cfg(["model=gps", f"model/mixer@model.layer.mixer={mixer}"], tmp_path)
    net = instantiate(cfg.model)
    assert type(net.layers[0].mixer).__name__ == name


def test_readout_and_pe_combine_are_command_line_options(tmp_path):
    """`model.readout=every_layer` and `model.pe_combine=add` work on any build_gnn model without `+`."""
    from gnnlab.models import LayerSumReadout

    cfg = compose_cfg(["model=gin", "model.readout=every_layer"], tmp_path)
    model = instantiate(cfg.model)
    assert isinstance(model.head, LayerSumReadout) and len(model.head.lins) == cfg.model.num_layers + 1
    cfg = compose_cfg(["model=gt", "data=zinc", "pe=lappe", "model.pe_combine=add",
                       "model.pe.lappe.out_channels=${model.hidden_channels}"], tmp_path)
    model = instantiate(cfg.model)
    assert model.pe_combine == "add" and model.node_encoder.out_channels == cfg.model.hidden_channels


def test_error_messages_name_every_link_model():
    """The link-model list in the config errors is the set of link-model configs in conf/model."""
    from gnnlab.config_schema import LINK_MODEL_CONFIGS

    named = set(LINK_MODEL_CONFIGS.removeprefix("model=").replace(" or ", ", ").split(", "))
    assert named == LINK_MODELS


def _zinc_like_batch(seed: int = 0):
    """Two random molecules with ZINC's token vocabularies (28 atom, 4 bond types)."""
    from torch_geometric.data import Batch, Data

    g = torch.Generator().manual_seed(seed)
    graphs = []
    for n in (7, 5):
        edge_index = torch.randint(0, n, (2, 3 * n), generator=g)
        graphs.append(Data(x=torch.randint(0, 28, (n, 1), generator=g), edge_index=edge_index,
                           edge_attr=torch.randint(0, 4, (edge_index.size(1),), generator=g), y=torch.randn(1, 1)))
    return Batch.from_data_list(graphs)


@pytest.mark.parametrize("model", ["gin", "gps"])
@pytest.mark.parametrize("conv", _options("model/conv"))
def test_every_conv_config_swaps_into_a_stack_and_gps(conv, model, tmp_path):
    """`model/conv=<name>` puts every conv of conf/model/conv into a plain ConvLayer stack and the GPS layer,
    with nothing else to change but the edge encoder of a conv that reads edge features; the model trains."""
    cfg = compose_cfg([f"model={model}", f"model/conv={conv}", "data=zinc", "model.hidden_channels=16",
                       "model.num_layers=2"], tmp_path)
    conv_cls = instantiate(cfg.model.layer.conv).func
    if conv_cls.supports_edge_attr and cfg.model.edge_encoder is None:
        cfg.model.edge_encoder = "${data.edge_encoder}"
    if conv == "gat":
        cfg.model.layer.conv.heads = 2
    net = instantiate(cfg.model)
    assert all(isinstance(layer.conv, conv_cls) for layer in net.layers)
    out = net(_zinc_like_batch())
    assert out.shape == (2, 1) and torch.isfinite(out).all()
    out.sum().backward()
    assert all(p.grad is not None for p in net.layers[0].conv.parameters() if p.requires_grad)
