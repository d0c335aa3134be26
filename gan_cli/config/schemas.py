"""The schema of each option of each group (SCHEMAS), Hydra's ConfigStore, and validation of a composed
config: every schema's ``__post_init__`` checks its own values, once."""

from __future__ import annotations

import functools
from dataclasses import fields
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from gan_cli.config.checks import FieldError
from gan_cli.config.commands import EvalConfig, SampleConfig
from gan_cli.config.data import DATASETS, ToyDataConfig
from gan_cli.config.hardware import HARDWARE
from gan_cli.config.logger import LOGGERS
from gan_cli.config.loss import LOSSES
from gan_cli.config.model import MODELS, NODE_SCHEMAS
from gan_cli.config.optimizer import OPTIMIZERS
from gan_cli.config.train import TrainConfig
from gan_cli.errors import ConfigError, cut

#: Each group's options and their schemas; conf/<group>/<option>.yaml starts from SCHEMAS[group][option].
SCHEMAS: dict[str, dict[str, type]] = {"dataset": DATASETS, "model": MODELS, "loss": LOSSES,
                                       "optimizer": OPTIMIZERS, "hardware": HARDWARE, "logger": LOGGERS}
GROUPS = tuple(SCHEMAS)


def register_configs() -> None:
    """Put every schema into Hydra's ConfigStore (idempotent)."""
    cs = ConfigStore.instance()
    cs.store(name="train_schema", node=TrainConfig)
    cs.store(name="eval_schema", node=EvalConfig)
    cs.store(name="sample_schema", node=SampleConfig)
    for group, options in (*SCHEMAS.items(), *NODE_SCHEMAS.items()):
        for name, node in options.items():
            cs.store(group=f"schema/{group}", name=name, node=node)


def validate(cfg: DictConfig) -> None:
    """Check every value of the composed config; raise ConfigError naming the first bad key."""
    for key in (*GROUPS, "train", "metrics", "ema"):
        node = cfg.get(key)
        if node is None:
            raise ConfigError(f"'{key}' is missing from the configuration")
        _check_node(node, key)
    toy = isinstance(OmegaConf.get_type(cfg.dataset), type) and issubclass(
        OmegaConf.get_type(cfg.dataset), ToyDataConfig)  # 2D data: mode coverage by default
    _check_metric_names(cfg.metrics.names, "metrics.names", cfg.metrics.num_samples,
                        "metrics.num_samples", images_by_default=not toy)
    split = cfg.metrics.get("split")
    if split is not None and "split" not in cfg.dataset:
        raise ConfigError(f"metrics.split={split}: this dataset has no splits (no dataset.split "
                          f"key); use metrics.split=null to compare with the data trained on")
    opt = cfg.optimizer
    if (opt.get("lr_decay", "none") != "none" and opt.get("lr_decay_steps") is None
            and opt.get("lr_decay_start", 0) >= cfg.train.steps):
        raise ConfigError(f"optimizer.lr_decay_start={opt.lr_decay_start}: the decay would start at "
                          f"or after the run's end (train.steps={cfg.train.steps}); lower it, or "
                          f"set optimizer.lr_decay_steps")


def validate_sample(cfg: DictConfig) -> None:
    """Check every value of gan-sample's composed config (conf/sample.yaml)."""
    _check_node(cfg, "")


def validate_eval(cfg: DictConfig) -> None:
    """Check every value of gan-eval's composed config (conf/eval.yaml)."""
    _check_node(cfg, "")
    _check_metric_names(cfg.metrics, "metrics", cfg.num_samples, "num_samples",
                        images_by_default=True)


#: The Inception score's splits (Salimans et al. 2016: 10); its sample count must reach them.
IS_SPLITS = 10


def _check_metric_names(names: Any, key: str, num_samples: int, samples_key: str, *,
                        images_by_default: bool) -> None:
    """Enough samples for the scores that split them, checked with the rest of the config (not at
    the first evaluation, after hours of training). That the names exist is checked by the command
    (gan_cli/cli.py) against the metric registry, which imports torch."""
    splitting = {"is", "cis_fashion"} & set(names) if names is not None else images_by_default
    if splitting and num_samples < IS_SPLITS:
        raise ConfigError(f"{samples_key}={num_samples}: the Inception score (is, cis_fashion; "
                          f"run by default on images) splits the samples into {IS_SPLITS} groups; "
                          f"use at least {IS_SPLITS} samples, or name the metrics without it")


def _check_node(node: DictConfig, path: str) -> None:
    """Run the schema checks of ``node``'s children first, then its own, so errors name the path."""
    def join(key: object) -> str:
        return f"{path}.{key}" if path else str(key)

    for key in node:
        child = node._get_node(key)
        if isinstance(child, DictConfig) and not child._is_none():
            _check_node(child, join(key))
    for key in node:
        if OmegaConf.is_missing(node, key):
            raise ConfigError(f"{join(key)} is required: set it on the command line, "
                              f"e.g. {join(key)}=...")
    if OmegaConf.get_type(node) in (dict, None):
        # An untyped node naming a schema's builder (a schedule or regulariser written as a plain
        # dict, or read back from a checkpoint, where these nodes are typed Any) gets that schema's
        # checks: the constructors trust their arguments.
        schema = _node_schemas_by_target().get(node.get("_target_")) if "_target_" in node else None
        if schema is None:
            return  # no schema: nothing more to check here
        try:
            typed = OmegaConf.merge(OmegaConf.structured(schema), node)
            typed._set_parent(node._get_parent())  # its interpolations resolve in the whole config
        except OmegaConfBaseException as e:
            raise ConfigError(f"{path}: {cut(str(e).splitlines()[0])}") from None
        node = typed
    try:
        OmegaConf.to_object(node)  # runs the schema's __post_init__
    except FieldError as e:
        value = OmegaConf.select(node, e.field)
        raise ConfigError(f"{join(e.field)}={cut(str(value))}: {e.message}") from None


@functools.lru_cache(maxsize=1)
def _node_schemas_by_target() -> dict[str, type]:
    """NODE_SCHEMAS by the builder each names (its ``_target_`` default)."""
    return {target: schema for options in NODE_SCHEMAS.values() for schema in options.values()
            if (target := _default_target(schema))}


def _default_target(schema: type) -> str | None:
    """The builder a schema names by default (its ``_target_``), or None."""
    from dataclasses import MISSING as NO_DEFAULT

    for f in fields(schema):
        if f.name == "_target_":
            return None if f.default in (NO_DEFAULT, MISSING) else f.default
    return None
