"""One training run from a composed config: build everything, fit, test the best epoch, report."""
from __future__ import annotations

import logging
import random
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
from filelock import FileLock
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.utils import get_object, instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict

from gnnlab.config_schema import LINK_MODEL_CONFIGS, validate_config
from gnnlab.data._offline import prepare_root
from gnnlab.errors import ConfigError
from gnnlab.models.link import LinkPredictionModel
from gnnlab.train.checkpoint import load_checkpoint
from gnnlab.train.distributed import process_rank
from gnnlab.train.loggers import LoggerCollection
from gnnlab.train.tasks import LinkPrediction
from gnnlab.train.trainer import DivergenceError

log = logging.getLogger("gnnlab")


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


# What a resumed run takes from its command line; paths.output_dir is by definition the resumed folder.
RESUME_OVERRIDABLE = ("trainer.max_epochs", "trainer.resume", "paths.output_dir")


def _command_line_overrides(cfg: DictConfig) -> list[str]:
    """The ``key=value`` overrides the config was composed with (Hydra's ``hydra.overrides.task``)."""
    if "hydra" in cfg:
        return list(cfg.hydra.overrides.task)
    try:
        return list(HydraConfig.get().overrides.task)
    except ValueError:  # composed without Hydra: no command line
        return []


_MISSING = object()


def _value(cfg: DictConfig, key: str):
    node = OmegaConf.select(cfg, key, default=_MISSING, throw_on_resolution_failure=False)
    return OmegaConf.to_container(node) if isinstance(node, (DictConfig, ListConfig)) else node


def _ignored_overrides(overrides: list[str], cfg: DictConfig, saved: DictConfig) -> list[str]:
    """The overrides in ``overrides`` that would change a value of the ``saved`` config.

    An override that sets the value the run was started with changes nothing and is accepted; one that
    cannot be compared (a deletion, a config group placed elsewhere, an experiment) counts as ignored.
    """
    ignored = []
    for text, override in zip(overrides, OverridesParser.create().parse_overrides(overrides)):
        key = override.key_or_group
        if key in RESUME_OVERRIDABLE:
            continue
        if override.is_delete() or override.package:
            ignored.append(text)
            continue
        new, old = _value(cfg, key.replace("/", ".")), _value(saved, key.replace("/", "."))
        if new is _MISSING or new != old:
            ignored.append(text)
    return ignored


def _resumed_config(cfg: DictConfig, overrides: list[str] = ()) -> DictConfig:
    """For ``trainer.resume=<run dir>``: the run's own saved config, so the model matches its checkpoint.

    Only ``trainer.max_epochs`` (and the resume path) may come from the current command line. Where
    the command line does not set it, a plain ``trainer.resume=<run dir>`` continues to the epochs of
    the run's last start or resume (its ``config_resolved.yaml``), not to the default config's. The
    config is Hydra's ``.hydra/config.yaml`` or, for a run started without Hydra's output subfolder
    (``hydra.output_subdir=null``), the ``config_resolved.yaml`` every run writes.

    Raises:
        ConfigError: ``overrides`` (the command line) would change other values of the saved config
            (the message lists them), or ``trainer.max_epochs`` is below the checkpoint's epoch.
    """
    run_dir = Path(str(cfg.trainer.resume)).expanduser().resolve()
    if not (run_dir / "checkpoints" / "last.ckpt").is_file():
        raise FileNotFoundError(f"trainer.resume={run_dir}: no checkpoints/last.ckpt in that folder")
    saved = next((path for path in (run_dir / ".hydra" / "config.yaml", run_dir / "config_resolved.yaml")
                  if path.is_file()), None)
    if saved is None:
        raise FileNotFoundError(
            f"trainer.resume={run_dir}: neither .hydra/config.yaml nor config_resolved.yaml in that folder"
        )
    old = OmegaConf.load(saved)
    ignored = _ignored_overrides(list(overrides), cfg, old)
    if ignored:
        raise ConfigError(
            f"trainer.resume={run_dir}: a resumed run keeps the config it was started with (only "
            f"trainer.max_epochs may change), so these overrides would be ignored: {' '.join(ignored)}. "
            f"Drop them to resume, or start a new run without trainer.resume"
        )
    if any(override.key_or_group == "trainer.max_epochs"
           for override in OverridesParser.create().parse_overrides(list(overrides))):
        max_epochs = cfg.trainer.max_epochs
    elif (run_dir / "config_resolved.yaml").is_file():  # written at every start and resume
        max_epochs = OmegaConf.load(run_dir / "config_resolved.yaml").trainer.max_epochs
    else:
        max_epochs = old.trainer.max_epochs
    # Checked before anything in the folder is rewritten (the Trainer checks it again).
    done = load_checkpoint(run_dir / "checkpoints" / "last.ckpt", required=("epoch",))["epoch"]
    if max_epochs < done:
        raise ConfigError(f"trainer.resume={run_dir}: trainer.max_epochs={max_epochs}, but its checkpoint is after "
                          f"epoch {done}: resume with trainer.max_epochs >= {done} (= {done} ends the run there "
                          f"and writes its results)")
    with open_dict(old):
        old.trainer.max_epochs = max_epochs
        old.trainer.resume = str(run_dir)
        old.paths.output_dir = str(run_dir)
        old.trainer.output_dir = str(run_dir)
        if "release_memory_every" in old.trainer:  # saved before this option became a batch callback
            every = old.trainer.pop("release_memory_every")
            old.trainer.batch_callbacks = [] if every is None else [
                {"_target_": "gnnlab.cli.ReleaseFreeMemory", "every": int(every)}]
        for name in old.get("logger") or {}:
            if "save_dir" in old.logger[name]:
                old.logger[name].save_dir = str(run_dir)
    return old


def add_facts(cfg: DictConfig, facts: dict) -> DictConfig:
    """Copy the dataset's facts (``datamodule.facts``: widths, vocabularies, classes, nodes, degree
    statistics) to ``cfg.data.<name>``, where model configs read them (``${data.in_channels}``).

    A fact the config already states must agree with the data, so a model can never be built for
    another dataset than the one loaded.

    Raises:
        ConfigError: the config states a fact with another value than the loaded dataset has.
    """
    with open_dict(cfg):
        for key, value in facts.items():
            stated = _value(cfg.data, key)
            if stated is not _MISSING and stated is not None and stated != value:
                raise ConfigError(f"data.{key}={stated} in the config, but the loaded dataset "
                                  f"({cfg.data.get('name', 'data')}) has {key}={value}: drop the setting")
            cfg.data[key] = value
    return cfg


def load_data(cfg: DictConfig):
    """Build ``cfg.data.module`` holding a lock on the data root (``paths.data_dir``), so that concurrent runs
    (two commands, a parallel multirun launcher) never process the same dataset at once: PyG writes its
    processed files in place, and a second process reading one half-written fails."""
    root = prepare_root(cfg.paths.data_dir)
    with FileLock(str(root / ".gnnlab-data.lock")):
        return instantiate(cfg.data.module)


def train(cfg: DictConfig) -> float:
    """Run the experiment ``cfg`` and return the best value of the monitored validation metric.

    Writes to the run directory: ``config_resolved.yaml``, ``metrics.csv`` (per epoch),
    ``checkpoints/{best,last}.ckpt`` and ``results.json`` (best epoch and the metrics of the best weights).
    """
    overrides = _command_line_overrides(cfg)
    # A private, writable copy without Hydra's own node (present when composed with return_hydra_config).
    cfg = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])
    OmegaConf.set_readonly(cfg, False)
    if cfg.trainer.get("resume"):
        cfg = _resumed_config(cfg, overrides)
    main = process_rank() == 0  # in a DDP run (trainer.strategy=ddp under torchrun) only rank 0 writes
    if not main:
        log.setLevel(logging.WARNING)
    seed_everything(int(cfg.seed))
    datamodule = load_data(cfg)
    log.info("data %s: %s", cfg.data.get("name", "?"), datamodule.describe())
    # The model is sized by the data: its facts go into the config before the model is built.
    add_facts(cfg, datamodule.facts)
    validate_config(cfg)
    OmegaConf.resolve(cfg)
    output_dir = Path(cfg.paths.output_dir)
    if main:
        output_dir.mkdir(parents=True, exist_ok=True)
        # Hydra keeps the config with its interpolations; this copy has every value as the run used it.
        OmegaConf.save(cfg, output_dir / "config_resolved.yaml")

    task = instantiate(cfg.task)
    try:  # checked before the model is built: a model built for the wrong task may fail first, less clearly
        model_class = get_object(cfg.model._target_)
    except Exception:  # noqa: BLE001 - an unknown target: instantiate below reports it
        model_class = None
    link_model = isinstance(model_class, type) and issubclass(model_class, LinkPredictionModel)
    if model_class is not None and link_model != isinstance(task, LinkPrediction):
        raise ConfigError(
            f"the model ({cfg.model.get('_target_')}) and the task of {cfg.data.get('name', 'the dataset')} "
            f"({type(task).__name__}) do not fit: link-prediction models ({LINK_MODEL_CONFIGS}) "
            "train on link-prediction datasets (data=cora_link, ogbl_*) and the other models on the others")
    model = instantiate(cfg.model)
    num_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    log.info("model %s: %s trainable parameters", type(model).__name__, f"{num_params:,}")
    published = (cfg.get("benchmark") or {}).get("params")
    if published:
        # Table rows state the paper's parameter budget; the comparison is printed before training.
        log.info(
            "parameter budget: %s here vs %s in %s (%+.1f%%)",
            f"{num_params:,}", f"{int(published):,}", cfg.benchmark.get("paper", "the paper"),
            100.0 * (num_params - published) / published,
        )
    optimizer, scheduler = None, None
    if num_params == 0:
        # A model without parameters (e.g. a link-prediction heuristic) is only evaluated.
        log.info("model has no trainable parameters: it is evaluated, not trained")
    else:
        # Models with per-part learning rates (e.g. NCN's encoder and predictor) expose their groups.
        params = model.optimizer_groups() if hasattr(model, "optimizer_groups") else model.parameters()
        optimizer = instantiate(cfg.optim)(params=params)
        scheduler = instantiate(cfg.scheduler)(optimizer=optimizer) if cfg.get("scheduler") else None

    logger = LoggerCollection([instantiate(c) for c in (cfg.get("logger") or {}).values()] if main else [])
    logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))

    trainer_cfg = OmegaConf.to_container(cfg.trainer, resolve=True)
    resume = trainer_cfg.pop("resume", None)
    trainer = instantiate(trainer_cfg)
    status = "failed"
    try:
        result = trainer.fit(model, task, datamodule, optimizer, scheduler, logger, resume=resume)
        final = trainer.test_best(model, task, datamodule)
        path = trainer.write_results(result, final)
        status = "success"
    except DivergenceError:
        status = "diverged"
        raise
    finally:
        logger.finalize(status)
        if trainer.dist is not None:
            trainer.dist.close()
        if not main and output_dir.name.startswith("gnnlab-rank") and output_dir.parent == Path(tempfile.gettempdir()):
            shutil.rmtree(output_dir, ignore_errors=True)  # the Hydra files of a rank > 0 (gnnlab.train.rundir)
    summary = " | ".join(f"{k} {v:.4f}" for k, v in final.items() if not k.endswith("/loss"))
    log.info("best epoch %d (%s = %.4f); best weights: %s", result.best_epoch, result.monitor, result.best_value, summary)
    log.info("results written to %s", path)
    return float(result.best_value)
