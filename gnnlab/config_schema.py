"""Types and ranges of the typed values of a composed ``gnnlab-train`` config, checked before the run.

Hydra takes ``trainer.max_epochs=abc`` as the string ``'abc'``; without a check the run would load the
data and build the model before failing somewhere deep inside with a message that does not name the
key. :func:`validate_config` looks at every value listed here right after composition and raises a
:class:`~gnnlab.errors.ConfigError` naming the key, the value and the expected type.

Keys are only checked when the composed config has them (model and data configs differ in what they
set). Model configs are checked by key name wherever the key sits in ``model`` (``hidden_channels``,
``num_layers``, every ``*dropout``), so a new layer's config is covered without listing it here.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from gnnlab.errors import ConfigError

__all__ = ["Rule", "KEYS", "MODEL_KEYS", "validate_config", "check_value"]


@dataclass(frozen=True)
class Rule:
    """What a config value must be.

    Args:
        kind: ``int``, ``float`` (an int is accepted too), ``bool`` or ``str``.
        optional: ``None`` (``null`` in YAML) is allowed.
        low, high: inclusive bounds for numbers.
        low_exclusive: the lower bound itself is not allowed (a learning rate > 0).
        choices: the allowed values of a string.
    """

    kind: type
    optional: bool = False
    low: float | None = None
    high: float | None = None
    low_exclusive: bool = False
    choices: tuple[str, ...] | None = None

    def describe(self) -> str:
        """The expectation in words, e.g. ``int >= 0 or null``."""
        text = self.kind.__name__
        if self.choices is not None:
            text = "one of " + ", ".join(repr(c) for c in self.choices)
        if self.low is not None and self.high is not None:
            text += f" in {'(' if self.low_exclusive else '['}{self.low}, {self.high}]"
        elif self.low is not None:
            text += f" {'>' if self.low_exclusive else '>='} {self.low}"
        elif self.high is not None:
            text += f" <= {self.high}"
        return text + (" or null" if self.optional else "")


_INT_GE0 = Rule(int, low=0)
_INT_GE1 = Rule(int, low=1)
_BOOL = Rule(bool)
_PROBABILITY = Rule(float, low=0, high=1)

#: Dotted keys of the composed config and their rules.
KEYS: dict[str, Rule] = {
    "seed": _INT_GE0,
    "trainer.max_epochs": _INT_GE0,
    "trainer.accelerator": Rule(str, choices=("auto", "cpu", "cuda")),
    "trainer.grad_clip": Rule(float, optional=True, low=0, low_exclusive=True),
    "trainer.min_lr": Rule(float, optional=True, low=0),
    "trainer.max_loss": Rule(float, optional=True, low=0, low_exclusive=True),
    "trainer.patience": Rule(int, optional=True, low=1),
    "trainer.loss_window_stop": Rule(int, optional=True, low=1),
    "trainer.scheduler_monitor": Rule(str),
    "trainer.eval_test_every_epoch": _BOOL,
    "trainer.progress": _BOOL,
    "trainer.resume": Rule(str, optional=True),
    "trainer.strategy": Rule(str, choices=("single", "ddp")),
    "trainer.ddp_backend": Rule(str, choices=("auto", "nccl", "gloo")),
    "trainer.find_unused_parameters": _BOOL,
    "trainer.sync_batchnorm": _BOOL,
    "task.target_link_removal": _BOOL,
    "optim.lr": Rule(float, low=0, low_exclusive=True),
    "optim.weight_decay": Rule(float, low=0),
    "optim.momentum": Rule(float, low=0),
    "scheduler.factor": Rule(float, low=0, high=1, low_exclusive=True),
    "scheduler.patience": _INT_GE0,
    "scheduler.warmup_epochs": _INT_GE0,
    "data.module.batch_size": _INT_GE1,
    "data.module.eval_batch_size": Rule(int, optional=True, low=1),
    "data.module.num_workers": _INT_GE0,
    "data.module.seed": _INT_GE0,
    "data.module.drop_last": _BOOL,
    "data.module.num_classes": Rule(int, optional=True, low=1),
    "data.module.check": _BOOL,
}

#: Keys checked wherever they occur under ``model`` (by the last part of the key).
MODEL_KEYS: dict[str, Rule] = {
    "hidden_channels": _INT_GE1,
    "in_channels": Rule(int, optional=True, low=1),
    "out_channels": _INT_GE1,
    "num_layers": _INT_GE0,
    "num_heads": _INT_GE1,
    "heads": _INT_GE1,
}


def _type_ok(value: Any, kind: type) -> bool:
    if isinstance(value, bool):
        return kind is bool
    if kind is float:
        return isinstance(value, (int, float))
    return isinstance(value, kind)


def check_value(key: str, value: Any, rule: Rule) -> str | None:
    """``None`` when ``value`` satisfies ``rule``, else a one-line problem naming key, value and expectation."""
    problem = f"{key}={value!r} ({type(value).__name__}): expected {rule.describe()}"
    if value is None:
        return None if rule.optional else problem
    if not _type_ok(value, rule.kind):
        return problem
    if rule.choices is not None and value not in rule.choices:
        return problem
    if rule.kind in (int, float):
        if isinstance(value, float) and math.isnan(value):
            return problem
        if rule.low is not None and (value < rule.low or (rule.low_exclusive and value == rule.low)):
            return problem
        if rule.high is not None and value > rule.high:
            return problem
    return None


def _model_problems(node: Any, path: str, key: str = "") -> list[str]:
    """The problems of the values under ``node`` (at ``path``), each checked by the rule of its key, if any."""
    if isinstance(node, dict):
        return [problem for k, value in node.items() for problem in _model_problems(value, f"{path}.{k}", str(k))]
    if isinstance(node, list):
        return [problem for i, value in enumerate(node) for problem in _model_problems(value, f"{path}[{i}]")]
    rule = MODEL_KEYS.get(key) or (_PROBABILITY if key.endswith("dropout") else None)
    problem = check_value(path, node, rule) if rule is not None else None
    return [problem] if problem else []


def validate_config(cfg: DictConfig, model: bool = True) -> None:
    """Check the typed values of a composed run config (see :data:`KEYS` and :data:`MODEL_KEYS`).

    ``model=False`` leaves the model out: before the data is loaded, the facts it reads from
    ``data.*`` (:func:`gnnlab.train.run.add_facts`) are not in the config yet.

    Raises :class:`~gnnlab.errors.ConfigError` with one line listing every wrong value, each as
    ``key=value (type): expected ...``, or naming a key whose interpolation cannot be resolved.
    """
    missing = object()
    problems = []
    for key, rule in KEYS.items():
        try:
            value = OmegaConf.select(cfg, key, default=missing, throw_on_missing=True)
        except OmegaConfBaseException as err:
            problems.append(f"{key}: {str(err).splitlines()[0]}")
            continue
        if value is missing:
            continue
        problem = check_value(key, value, rule)
        if problem:
            problems.append(problem)
    if model and cfg.get("model") is not None:
        try:
            model = OmegaConf.to_container(cfg.model, resolve=True)
        except OmegaConfBaseException as err:
            problems.append(f"model: {str(err).splitlines()[0]}{_model_data_hint(cfg, str(err))}")
        else:
            problems += _model_problems(model, "model")
    if problems:
        raise ConfigError("invalid config value" + ("s" if len(problems) > 1 else "") + ": " + "; ".join(problems))


#: The link-prediction model configs (conf/model), as the error messages name them.
LINK_MODEL_CONFIGS = "model=gae, gae_ncn, ncn, ncnc, ncn_gcn, ncnc_gcn or link_heuristic"


def _model_data_hint(cfg: DictConfig, error: str) -> str:
    """What to do when the model reads a dataset fact (``${data.<key>}``) that the loaded dataset lacks."""
    found = re.search(r"Interpolation key '(data\.[\w.]+)' not found|access (data\.[\w.]+)", error)
    if not found:
        return ""
    key, name = found.group(1) or found.group(2), cfg.data.get("name", "data")
    hint = f" (the model config reads {key}, which this dataset ({name}) does not provide: the model does not fit it"
    if "LinkPrediction" in str(OmegaConf.select(cfg, "task._target_", default="")):
        hint += f"; a link-prediction dataset takes a link model: {LINK_MODEL_CONFIGS}"
    return hint + ")"
