"""Mistyped keys and options on the command line, caught before anything is built (no torch here).

- ``unknown_key_message``: the one "unknown key ... Did you mean ...?" line of every command;
- ``check_added_keys``: a ``+key=value`` (or ``++``) under a schema's node must name one of the
  schema's keys, as without ``+`` (``+`` stays free where a node is untyped: ``model.regularizers``,
  ``model.schedule``, ``model.stages``, a group of your own from ``hydra.searchpath``);
- ``option_typo``: ``loss=wgangp`` -> did you mean ``loss=wgan_gp``;
- ``command_args``: gan-eval's / gan-sample's positional checkpoint (``gan-eval RUN/last.pt``) as
  ``ckpt=``, and a training key given to them refused with what they take instead.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Iterable

from omegaconf import DictConfig, OmegaConf

from gan_cli.config import CONF_DIR
from gan_cli.config.commands import EvalConfig, SampleConfig
from gan_cli.config.train import TrainConfig
from gan_cli.errors import ConfigError


def unknown_key_message(full_key: str, valid: Iterable[str]) -> str:
    """One line: the unknown key, the nearest valid one (difflib) and every valid key beside it."""
    valid = sorted(valid)
    parent, _, key = full_key.rpartition(".")
    lines = [f"unknown key '{full_key}'."]
    near = difflib.get_close_matches(key, valid, n=1)
    if near:
        lines.append(f"Did you mean '{parent + '.' if parent else ''}{near[0]}'?")
    where = f"'{parent}'" if parent else "the top level"
    lines.append(f"Valid keys under {where}: {', '.join(valid)}")
    return " ".join(lines)


def check_added_keys(cfg: DictConfig, overrides: Iterable[str]) -> None:
    """Raise ConfigError for a ``+key=...`` / ``++key=...`` override whose key is not a field of the
    schema of the node it lands in (Hydra adds such a key silently, and nothing reads it)."""
    for override in overrides:
        if not override.startswith("+"):
            continue
        key = override.lstrip("+").partition("=")[0]
        if not key or "@" in key or "/" in key or key.split(".")[0] == "hydra" or (CONF_DIR / key).is_dir():
            continue  # a group option (+group=option), a package or Hydra's own node
        node = cfg
        parts = key.split(".")
        for i, part in enumerate(parts):
            schema = OmegaConf.get_type(node) if isinstance(node, DictConfig) else None
            if schema is None or not dataclasses.is_dataclass(schema):
                break  # an untyped node (or a value): new keys are its purpose
            names = {f.name for f in dataclasses.fields(schema)}
            if part not in names:
                raise ConfigError(unknown_key_message(".".join(parts[: i + 1]), names))
            node = node._get_node(part)
            node = node if isinstance(node, DictConfig) and not node._is_none() else None


def option_typo(group: str, option: str) -> str | None:
    """``Did you mean 'group=nearest'?`` for an option that has no file in conf/<group>/, else None."""
    folder = CONF_DIR / group
    options = sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []
    if not options or option in options:
        return None
    near = difflib.get_close_matches(option, options, n=1, cutoff=0.5)
    hint = f"Did you mean '{group}={near[0]}'? " if near else ""
    return f"{group}={option}: no such option. {hint}Options: {', '.join(options)}"


#: Config paths Hydra's plugins bring: the gan-cli extra and the package that install each plugin
#: (pyproject.toml's optional dependencies), and the module it installs.
PLUGINS = {"hydra/sweeper/optuna": ("sweeps", "hydra-optuna-sweeper", "hydra_optuna_sweeper"),
           "hydra/sweeper/sampler/": ("sweeps", "hydra-optuna-sweeper", "hydra_optuna_sweeper"),
           "hydra/launcher/joblib": ("sweeps", "hydra-joblib-launcher", "hydra_joblib_launcher"),
           "hydra/launcher/submitit": ("slurm", "hydra-submitit-launcher", "hydra_submitit_launcher")}


def missing_plugin(config_path: str) -> str | None:
    """What to install when a config Hydra could not find comes from a plugin that is not
    installed; None when it is installed (then the name is mistyped) or no plugin has it."""
    from importlib.util import find_spec

    for prefix, (extra, package, module) in PLUGINS.items():
        if config_path.startswith(prefix) and find_spec(f"hydra_plugins.{module}") is None:
            return (f"'{config_path}' comes from Hydra's {package} plugin, which is not installed: "
                    f"pip install 'gan-cli[{extra}]' (or gan-cli[all]; `make install` installs it)")
    return None


#: Hydra's flags that take the next argument as their value (``-cp DIR``): not a positional.
_FLAGS_WITH_VALUE = {"-cp", "--config-path", "-cn", "--config-name", "-cd", "--config-dir", "-c",
                     "--cfg", "-p", "--package", "--experimental-rerun", "--shell-completion"}


#: The values ``--info`` may take (Hydra's optional argument).
_INFO_TOPICS = {"all", "config", "defaults", "defaults-tree", "plugins", "searchpath"}


def command_args(argv: list[str], prog: str, config_name: str) -> list[str]:
    """gan-eval's / gan-sample's arguments (``config_name`` eval or sample): one positional
    argument becomes ``ckpt=<it>``; a key of gan-train's config that the command does not have is a
    ConfigError saying where it comes from."""
    schema = {"eval": EvalConfig, "sample": SampleConfig}[config_name]
    own = {f.name for f in dataclasses.fields(schema)}
    foreign = {f.name for f in dataclasses.fields(TrainConfig)} - own
    out, positional = [], []
    for i, arg in enumerate(argv):
        flag = argv[i - 1] if i else ""
        if "=" not in arg and not arg.startswith("-") and flag not in _FLAGS_WITH_VALUE and not (
                flag in ("-i", "--info") and arg in _INFO_TOPICS):
            positional.append(arg)
            continue
        name = arg.partition("=")[0].lstrip("+~")
        root = name.split(".")[0].split("@")[0].split("/")[0]
        if "=" in arg and root in foreign:
            raise ConfigError(f"{arg}: {prog} takes the model, loss, dataset and training settings from "
                              f"the checkpoint (the config saved in it); its own keys: "
                              f"{', '.join(sorted(own))}")
        out.append(arg)
    if len(positional) > 1:
        raise ConfigError(f"{' '.join(positional)}: {prog} takes one checkpoint (ckpt=PATH or the path "
                          f"alone), and key=value settings")
    if positional:
        if any(a.partition("=")[0].lstrip("+") == "ckpt" for a in out):
            raise ConfigError(f"{positional[0]}: the checkpoint is given twice (as a path and as ckpt=)")
        quoted = positional[0].replace("'", "\\'").replace("${", "\\${")  # Hydra's quoted string
        out.insert(0, f"ckpt='{quoted}'")
    return out
