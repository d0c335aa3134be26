"""Configs read back from files are data: only gan-cli's own builders may be named in them."""

from __future__ import annotations

import functools
import os
from dataclasses import fields, is_dataclass
from typing import Any

from omegaconf import MISSING, DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from gan_cli.config.checks import (
    CONF_DIR,
)
from gan_cli.config.commands import EvalConfig, SampleConfig
from gan_cli.config.model import NODE_SCHEMAS
from gan_cli.config.optimizer import OptimizerConfig
from gan_cli.config.schemas import SCHEMAS, _check_node, _default_target
from gan_cli.config.train import EMAConfig, TrainConfig, TrainLoopConfig, TrainMetricsConfig
from gan_cli.errors import ConfigError, cut, shown

#: torch's optimizers a config may name (the optimizer group builds one of these).
TRUSTED_OPTIMIZERS = frozenset({"torch.optim.Adam", "torch.optim.AdamW", "torch.optim.SGD",
                                "torch.optim.RMSprop"})


def _schema_targets(obj: Any, found: set[str]) -> None:
    """Every ``_target_`` string in a schema's defaults (nested dataclasses and dicts included)."""
    from dataclasses import fields, is_dataclass

    if is_dataclass(obj):
        for f in fields(obj):
            value = getattr(obj, f.name)
            if f.name == "_target_" and isinstance(value, str) and value != MISSING:
                found.add(value)
            else:
                _schema_targets(value, found)
    elif isinstance(obj, dict):
        for key, value in obj.items():
            if key == "_target_" and isinstance(value, str):
                found.add(value)
            else:
                _schema_targets(value, found)
    elif isinstance(obj, (list, tuple)):
        for value in obj:
            _schema_targets(value, found)


def trusted_targets() -> frozenset[str]:
    """The ``_target_``s a config read from a file may name: the defaults of every schema, those
    written in the shipped option files (conf/**/*.yaml), torch's optimizers, and the ones you
    trust yourself: $GAN_CLI_TRUSTED_TARGETS, a comma-separated list (your own models or losses
    added through ``hydra.searchpath``)."""
    return _trusted_targets(os.environ.get("GAN_CLI_TRUSTED_TARGETS", ""))


@functools.lru_cache(maxsize=8)
def _trusted_targets(yours: str) -> frozenset[str]:
    import re

    found: set[str] = set(TRUSTED_OPTIMIZERS)
    found.update(t.strip() for t in yours.split(",") if t.strip())
    for options in (*SCHEMAS.values(), *NODE_SCHEMAS.values()):  # NODE_SCHEMAS: schedules, terms
        for schema in options.values():
            _schema_targets(schema(), found)
    for schema in (TrainConfig, EvalConfig, SampleConfig):
        _schema_targets(schema(), found)
    for path in CONF_DIR.rglob("*.yaml"):
        found.update(re.findall(r"_target_:\s*([A-Za-z_][\w.]*)", path.read_text(encoding="utf-8")))
    return frozenset(found)


#: Hydra keys a saved config may hold: they change how a checked ``_target_`` receives its
#: arguments (SinGAN's stages take their dataset node unbuilt: ``_recursive_: false``), never what
#: is called; every nested ``_target_`` is checked either way.
HARMLESS_HYDRA_KEYS: dict[str, type | tuple[type, ...]] = {"_recursive_": bool, "_convert_": str}
#: How deep a config read from a file may nest; gan-cli's own stay under ten levels.
MAX_DEPTH = 32


def refuse_untrusted(node: Any, source: str, trusted: frozenset[str] | set[str]) -> None:
    """Walk plain data (dicts with string keys, lists, strings, numbers, booleans, None) and raise
    UntrustedConfigError, naming the key, at the first thing that could make Hydra or OmegaConf
    call code: a ``_target_`` not in ``trusted``, a Hydra instantiation key other than the
    harmless ``_recursive_`` / ``_convert_``, an interpolation (``${``) in any value or key (a
    resolver such as ``oc.create`` turns a string into a node with a target), or anything that is
    not plain data; also a nesting deeper than MAX_DEPTH. Iterative: any depth costs no recursion.
    """
    from gan_cli.errors import UntrustedConfigError

    def refuse(why: str) -> UntrustedConfigError:
        return UntrustedConfigError(f"refused {source}: {why}; a config read from a file is data "
                                    f"and may name only gan-cli's own builders: nothing was built or run")

    stack: list[tuple[Any, str, int]] = [(node, "", 0)]
    while stack:
        value, path, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise refuse(f"{cut(path, 80)} is nested more than {MAX_DEPTH} levels deep")
        if isinstance(value, str):
            if "${" in value:
                raise refuse(f"{path}={shown(value)} is an interpolation (${{...}}), which OmegaConf "
                             f"would resolve")
        elif value is None or isinstance(value, (bool, int, float)):
            continue
        elif isinstance(value, (list, tuple)):
            stack.extend((item, f"{path}[{i}]", depth + 1) for i, item in enumerate(value))
        elif isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, (str, int, float)):  # OmegaConf's keys (ProGAN's per-side batches)
                    raise refuse(f"{path or 'the config'} has a key {shown(key)} that is neither a "
                                 f"string nor a number")
                where = f"{path}.{key}" if path else str(key)
                if not isinstance(key, str):
                    stack.append((item, where, depth + 1))
                    continue
                if "${" in key:
                    raise refuse(f"the key {shown(where)} is an interpolation (${{...}})")
                if key == "_target_":
                    if not isinstance(item, str) or item not in trusted:
                        raise refuse(f"{where}={shown(item)} is not one of gan-cli's own builders")
                elif key in HARMLESS_HYDRA_KEYS and isinstance(item, HARMLESS_HYDRA_KEYS[key]):
                    continue  # only restricts how (not what) a trusted target is built
                elif len(key) > 2 and key.startswith("_") and key.endswith("_"):
                    raise refuse(f"{where} is a Hydra instantiation key that gan-cli's configs "
                                 f"never use")
                else:
                    stack.append((item, where, depth + 1))
        else:
            raise refuse(f"{path or 'the config'} holds a {type(value).__name__}, not plain data")


def check_saved_config(config: Any, source: str, trusted: frozenset[str] | set[str] | None = None) -> None:
    """Refuse a config read back from ``source`` (a checkpoint) that is not a mapping of plain
    data, or that could make anything other than gan-cli's own builders (``trusted``; default
    trusted_targets()) run (refuse_untrusted): UntrustedConfigError naming the key, before anything
    is built."""
    from gan_cli.errors import UntrustedConfigError

    if not isinstance(config, dict):
        raise UntrustedConfigError(f"refused {source}: its saved config is a {type(config).__name__} "
                                   f"({shown(config, 60)}), not a mapping of options")
    refuse_untrusted(config, source, trusted_targets() if trusted is None else trusted)


def validate_saved_config(config: Any, source: str) -> DictConfig:
    """A run's saved config (from a checkpoint) checked like a composed one: its targets trusted,
    each group merged into its schema (unknown keys and wrong types refused) and its values checked.
    Every failure is an UntrustedConfigError (exit 1) naming the key."""
    from gan_cli.errors import UntrustedConfigError

    check_saved_config(config, source)
    for group, inner in (("model", "generator"), ("model", "discriminator"), ("dataset", "_target_")):
        node = config.get(group)
        if not isinstance(node, dict) or inner not in node:
            raise UntrustedConfigError(f"refused {source}: its saved config has no {group}.{inner}, "
                                       f"which every gan-train checkpoint holds")
    checked: dict = {}
    for key, node in config.items():
        schema = _schema_for(key, node)
        try:
            merged = (OmegaConf.merge(OmegaConf.structured(schema), node) if schema is not None
                      else OmegaConf.create(node) if isinstance(node, (dict, list)) else node)
            if isinstance(merged, DictConfig):
                _check_node(merged, key)
        except (ConfigError, ValueError, TypeError, OmegaConfBaseException) as e:
            raise UntrustedConfigError(f"refused {source}: its saved config does not fit gan-cli's "
                                       f"schema at '{key}': {cut(str(e).splitlines()[0], 300)}") from None
        if schema is None and key in SCHEMAS and isinstance(node, dict):
            raise UntrustedConfigError(f"refused {source}: its saved {key} (_target_="
                                       f"{shown(node.get('_target_'), 120)}) is none of gan-cli's "
                                       f"{key} options")
        if isinstance(merged, (DictConfig, ListConfig)):
            _check_roles(merged, key, source)
        checked[key] = merged
    model_stages = checked["model"].get("stages")
    if (isinstance(model_stages, DictConfig) and "dataset" in model_stages
            and OmegaConf.to_container(model_stages.dataset) != config.get("dataset")):
        raise UntrustedConfigError(f"refused {source}: model.stages.dataset is not the run's dataset "
                                   f"(the stages read the same data as the run)")
    return OmegaConf.create(checked)


@functools.lru_cache(maxsize=1)
def _role_targets() -> dict[str, frozenset[str]]:
    """The builders each untyped place of a model config holds in gan-cli's own schemas
    (``model.stages``, ``model.schedule``, ``model.regularizers.<name>``), and a SinGAN stage's
    ``dataset`` (a dataset builder)."""
    roles: dict[str, set[str]] = {"stages": set(), "schedule": set(), "regularizers": set()}
    for schema in SCHEMAS["model"].values():
        model = schema()
        for place in ("stages", "schedule"):
            node = getattr(model, place, None)
            if node is not None and _default_target(type(node)):
                roles[place].add(_default_target(type(node)))
        for node in (model.regularizers or {}).values():
            if _default_target(type(node)):
                roles["regularizers"].add(_default_target(type(node)))
    for place, group in (("schedule", "schedule"), ("regularizers", "regularizer")):
        roles[place].update(t for t in map(_default_target, NODE_SCHEMAS[group].values()) if t)
    roles["stages.dataset"] = {t for t in map(_default_target, SCHEMAS["dataset"].values()) if t}
    return {place: frozenset(targets) for place, targets in roles.items()}


def _items(node: ListConfig) -> list:
    return list(node._iter_ex(resolve=False))


def _check_roles(node: DictConfig | ListConfig, path: str, source: str) -> None:
    """Every ``_target_`` of a saved group in its own role (UntrustedConfigError otherwise): a node
    typed by a schema names that schema's builder (an optimizer node: one of torch's optimizers),
    and an untyped one is where gan-cli's own configs put a builder (``_role_targets``) and names a
    builder of that kind. A trusted builder in the wrong place (a dataset builder as a model's
    stages, writing where the file says) is refused like an untrusted one. ``_recursive_`` and
    ``_convert_`` only where a schema has them, at their default."""
    from gan_cli.errors import UntrustedConfigError

    def refuse(where: str, why: str) -> UntrustedConfigError:
        return UntrustedConfigError(f"refused {source}: {where} {why}; a config read from a file "
                                    f"may use gan-cli's builders only where its own configs do")

    stack = [(node, path)] if isinstance(node, DictConfig) else []
    lists = [] if isinstance(node, DictConfig) else [(node, path)]
    while lists:  # a top-level list (a plain value's place): its dicts, checked as below
        items, at = lists.pop()
        for i, item in enumerate(_items(items)):
            if isinstance(item, DictConfig):
                stack.append((item, f"{at}[{i}]"))
            elif isinstance(item, ListConfig):
                lists.append((item, f"{at}[{i}]"))
    while stack:
        current, where = stack.pop()
        schema = OmegaConf.get_type(current)
        typed = isinstance(schema, type) and is_dataclass(schema)
        defaults = {f.name: f.default for f in fields(schema)} if typed else {}
        for special in ("_recursive_", "_convert_"):
            if special in current and (special not in defaults or current[special] != defaults[special]):
                raise refuse(f"{where}.{special}={shown(current[special])}", "is not gan-cli's own")
        if "_target_" in current:
            target = current._target_
            if typed:
                allowed = ({*TRUSTED_OPTIMIZERS} if issubclass(schema, OptimizerConfig)
                           else {_default_target(schema)})
            else:
                role = where.split(".", 1)[1] if where.startswith("model.") else ""
                role = "regularizers" if role.startswith("regularizers.") else role
                allowed = _role_targets().get(role, frozenset())
            if target not in allowed:
                raise refuse(f"{where}._target_={shown(target)}", "is not a builder of that place")
        for key in current:
            child = current._get_node(key)
            if isinstance(child, DictConfig) and not child._is_none():
                stack.append((child, f"{where}.{key}"))
            elif isinstance(child, ListConfig) and not child._is_none():
                items = [(item, f"{where}.{key}[{i}]") for i, item in enumerate(_items(child))]
                while items:  # lists of lists: their dicts, with the path that names them
                    item, at = items.pop()
                    if isinstance(item, DictConfig):
                        stack.append((item, at))
                    elif isinstance(item, ListConfig):
                        items.extend((sub, f"{at}[{j}]") for j, sub in enumerate(_items(item)))


def _schema_for(key: str, node: Any) -> type | None:
    """The schema a saved group node was made from (found by its ``_target_``, for models by the
    generator's), or the schema of a top-level section; None for plain values."""
    sections = {"train": TrainLoopConfig, "metrics": TrainMetricsConfig, "ema": EMAConfig}
    if key in sections:
        return sections[key]
    if key not in SCHEMAS or not isinstance(node, dict):
        return None
    if key == "model":
        target = (node.get("generator") or {}).get("_target_")
        for schema in SCHEMAS["model"].values():
            if schema().generator._target_ == target:
                return schema
        return None
    for schema in SCHEMAS[key].values():
        if getattr(schema, "_target_", None) == node.get("_target_") or key == "hardware":
            return schema
    return None
