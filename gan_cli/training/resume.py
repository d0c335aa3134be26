"""Resuming: which checkpoint a run starts from, and a run directory continued in place.

Nothing here imports torch: :func:`expand_resume_dir` runs on the command line before Hydra.
Loading a checkpoint into the run's objects is ``TrainState.load_state_dict`` (state.py).
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import yaml

from gan_cli.config.checks import CONF_DIR
from gan_cli.errors import RuntimeFailure, cut, shown
from gan_cli.rundir import load_yaml


def expand_resume_dir(argv: list[str]) -> list[str]:
    """``resume=RUN_DIR``: continue that run in place with its options. Adds
    ``hydra.run.dir=RUN_DIR`` (unless given) and puts the run's stored overrides, read as data
    (:func:`stored_overrides`), before the command line's, whose keys win; multirun is left alone."""
    if any(a in ("-m", "--multirun") for a in argv):
        return argv
    resume = [a.partition("=")[2] for a in argv if a.partition("=")[0] == "resume"]
    if not resume or not Path(resume[-1]).expanduser().is_dir():
        return argv
    run_dir = Path(resume[-1]).expanduser().resolve()
    given = {_key(a) for a in argv if "=" in a}
    old: list[str] = []
    overrides = run_dir / ".hydra" / "overrides.yaml"
    if overrides.is_file():
        old = stored_overrides(overrides, skip=given | {"resume"})
    out = [*old, *argv]
    if "hydra.run.dir" not in given:
        out.append(f"hydra.run.dir={run_dir}")
    return out


#: The most bytes of a run directory's overrides.yaml, and characters of one override, read.
MAX_OVERRIDES_BYTES = 1_000_000
MAX_OVERRIDE_CHARS = 2_000
_NAME = re.compile(r"[A-Za-z0-9_]+")  # a group option's name: a file name without a path
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")  # a dotted config key


def stored_overrides(path: Path, skip: set[str] = frozenset()) -> list[str]:
    """A run directory's .hydra/overrides.yaml (``path``), parsed by Hydra's override parser as
    data and rendered anew, for the keys not in ``skip``. Accepted, and nothing else
    (UntrustedConfigError, exit 1): ``[+]group=option`` / ``~group`` naming a shipped option file
    (or null); ``[++]key=value`` / ``~key`` for a key of the composed train config, never a
    ``_target_``, with a literal value (number, boolean, null, string without ``${``, flat list).
    Never a ``-`` flag, an interpolation, ``hydra.*``, a package, a sweep, a call or a dict."""
    from gan_cli.errors import UntrustedConfigError

    def refuse(entry: object, why: str) -> UntrustedConfigError:
        return UntrustedConfigError(
            f"refused {path}: the stored override {shown(entry, 120)} {why}; a run directory's "
            f"overrides may only choose gan-cli's shipped options and set its keys to plain values "
            f"(give anything else on the command line yourself); nothing was run")

    try:
        if path.stat().st_size > MAX_OVERRIDES_BYTES:
            raise UntrustedConfigError(f"refused {path}: it is larger than {MAX_OVERRIDES_BYTES:,} "
                                       f"bytes, which no run's overrides are; nothing was run")
        loaded = load_yaml(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError, RecursionError) as e:
        raise UntrustedConfigError(f"refused {path}: it cannot be read as a list of overrides "
                                   f"({cut(str(e).splitlines()[0] if str(e) else type(e).__name__, 200)})"
                                   ) from None
    if loaded is None:
        return []
    if not isinstance(loaded, list):
        raise UntrustedConfigError(f"refused {path}: it holds a {type(loaded).__name__}, not a list "
                                   f"of overrides; nothing was run")
    for entry in loaded:  # the shape of every entry first, whether or not the command line sets it
        if not isinstance(entry, str):
            raise refuse(entry, f"is not a string but a {type(entry).__name__}")
        if len(entry) > MAX_OVERRIDE_CHARS:
            raise refuse(entry, f"is longer than {MAX_OVERRIDE_CHARS:,} characters")
        if entry.startswith("-") or not entry.strip():
            raise refuse(entry, "is a Hydra command-line flag, not an override")
        if "${" in entry:
            raise refuse(entry, "holds an interpolation (${...})")
    parsed = [(entry, _parse(entry, refuse)) for entry in loaded if _key(entry) not in skip]
    choices = []  # the group options, checked and written anew
    for _, o in parsed:
        if o.key_or_group in shipped_groups():
            _check_group_choice(o, refuse)
            choices.append(o.get_key_element() + ("" if o.is_delete() else f"={o.value()}"))
    settings = {entry: _checked_setting(entry, o, refuse) for entry, o in parsed
                if o.key_or_group not in shipped_groups()}
    if settings:  # every setting well-formed: now its key must exist in the composed config
        _check_keys(settings, tuple(choices), path)
    chosen = iter(choices)
    return [settings[entry] if entry in settings else next(chosen) for entry, _ in parsed]


def _parse(entry: str, refuse):
    """One override parsed by Hydra's own grammar (values are not resolved)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        override = OverridesParser.create().parse_override(entry)
    except Exception as e:  # noqa: BLE001 - any text: the grammar fails in many ways
        raise refuse(entry, f"is not an override Hydra can read "
                            f"({cut((str(e).splitlines() or [type(e).__name__])[0], 120)})") from None
    key = override.key_or_group
    if override.package is not None:
        raise refuse(entry, "names a package (group@package)")
    if key == "hydra" or key.startswith(("hydra.", "hydra/")):
        raise refuse(entry, "sets Hydra itself")
    if override.is_sweep_override():
        raise refuse(entry, "is a sweep")
    return override


def _check_group_choice(o, refuse) -> None:
    """``group=option``: the group shipped, the option one of its files by name, or null."""
    entry = o.input_line
    if o.is_force_add():
        raise refuse(entry, "force-adds a config group")
    if o.is_delete() and o.value() is None:
        return
    option = o.value()
    if not isinstance(option, str) or not _NAME.fullmatch(option):
        raise refuse(entry, "is not the name of one of the group's option files (no paths)")
    if not (CONF_DIR / o.key_or_group / f"{option}.yaml").is_file():
        raise refuse(entry, f"names no option of gan-cli's group {o.key_or_group}")


def _check_keys(settings: dict[str, str], choices: tuple[str, ...], path: Path) -> None:
    """Every setting's key exists in the train config composed with the (checked) ``choices``."""
    from gan_cli.errors import UntrustedConfigError

    try:
        known = schema_keys(choices)
    except Exception as e:  # noqa: BLE001 - Hydra's composition fails in many ways
        raise UntrustedConfigError(
            f"refused {path}: its group options {shown(list(choices), 200)} do not compose into a "
            f"train config, so its settings cannot be checked "
            f"({cut((str(e).splitlines() or [type(e).__name__])[0], 150)}); nothing was run") from None
    for entry, setting in settings.items():
        key = _key(setting)
        if key not in known:
            raise UntrustedConfigError(
                f"refused {path}: the stored override {shown(entry, 120)} sets a key that gan-cli's "
                f"train config does not have; a run directory's overrides may only choose gan-cli's "
                f"shipped options and set its keys to plain values; nothing was run")


def _checked_setting(entry: str, o, refuse) -> str:
    """``key=value``: a dotted key set to a literal, rendered anew (its existence: _check_keys)."""
    from hydra.core.override_parser.types import Quote, QuotedString

    key = o.key_or_group
    if not _KEY.fullmatch(key):
        raise refuse(entry, "does not set a config key")
    parts = key.split(".")
    hydra_keys = [p for p in parts if len(p) > 2 and p.startswith("_") and p.endswith("_")]
    if hydra_keys == ["_target_"]:  # a role swap (a dataset builder as G) needs no foreign code
        raise refuse(entry, "chooses a builder (_target_), which only your own command line may do")
    if hydra_keys:
        raise refuse(entry, f"uses {hydra_keys[0]}, which gan-cli's configs never set this way")
    if o.is_add():
        raise refuse(entry, "adds a key that the schemas do not have")
    if o.is_delete():
        return f"~{key}"
    value = o.value()

    def literal(v: object) -> str:
        if v is None:
            return "null"
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, str):
            if "${" in v:
                raise refuse(entry, "holds an interpolation (${...})")
            return QuotedString(text=v, quote=Quote.single).with_quotes()
        raise refuse(entry, f"holds a {type(v).__name__}, not a plain value")

    if isinstance(value, list):
        rendered = "[" + ",".join(literal(v) for v in value) + "]"
    else:
        rendered = literal(value)
    return f"{'++' if o.is_force_add() else ''}{key}={rendered}"


@functools.lru_cache(maxsize=1)
def shipped_groups() -> frozenset[str]:
    """The config groups gan-cli ships: the folders of gan_cli/conf/ (``hydra`` aside)."""
    return frozenset(p.name for p in CONF_DIR.iterdir() if p.is_dir() and p.name != "hydra"
                     and not p.name.startswith("_"))


@functools.lru_cache(maxsize=64)
def schema_keys(choices: tuple[str, ...]) -> frozenset[str]:
    """Every dotted key of gan-train's config composed with the group overrides ``choices``
    (checked ones: shipped options), unresolved: the keys a stored override may set."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    from gan_cli.config import register_configs

    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="train", overrides=list(choices))
    keys: set[str] = set()
    stack = [("", OmegaConf.to_container(cfg, resolve=False))]
    while stack:
        prefix, node = stack.pop()
        if isinstance(node, dict):
            for k, v in node.items():
                at = f"{prefix}.{k}" if prefix else str(k)
                keys.add(at)
                stack.append((at, v))
    return frozenset(k for k in keys if k != "hydra" and not k.startswith("hydra."))


def _key(override: str) -> str:
    return override.partition("=")[0].lstrip("+~")


def resume_path(resume: str | None, ckpt_dir: Path) -> Path | None:
    """The checkpoint to start from: None (fresh), the run's latest (auto, or a run directory),
    or the named one."""
    from gan_cli.checkpoint import CheckpointError, latest_checkpoint

    if resume in (None, "", "never"):
        return None
    if resume == "auto":
        return latest_checkpoint(ckpt_dir)  # nothing yet: a fresh start
    path = Path(resume).expanduser()
    if path.is_dir():
        found = latest_checkpoint(path / "checkpoints") or latest_checkpoint(path)
        if found is None:
            raise CheckpointError(f"resume={resume}: no checkpoint in {path / 'checkpoints'} "
                                  f"(last.pt or step_*.pt)")
        return found
    return path


def trim_metrics(path: Path, step: int) -> int:
    """Drop records after ``step`` from metrics.jsonl (logged after the checkpoint a resume
    starts from, so they would otherwise appear twice); return how many were dropped."""
    if not path.is_file():
        return 0
    kept, dropped = [], 0
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record_step = json.loads(line).get("step", 0)
        except (ValueError, AttributeError):
            record_step = 0
        if record_step > step:
            dropped += 1
        else:
            kept.append(line)
    if dropped:
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        try:
            tmp.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
            os.replace(tmp, path)
        except OSError as e:
            raise RuntimeFailure(f"cannot rewrite {path}: {e}") from None
    return dropped


def last_record(path: Path) -> dict[str, float]:
    """The last record of metrics.jsonl ({} when there is none): what a finished run reports when
    it is started again."""
    if not path.is_file():
        return {}
    record: dict = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            parsed = json.loads(line)
        except ValueError:
            continue
        if isinstance(parsed, dict):
            record = parsed
    return {k: v for k, v in record.items() if isinstance(v, (int, float))}


def config_differences(old: Mapping, new: Mapping, keys: Iterable[str]) -> list[str]:
    """``key: checkpoint X, now Y`` for each leaf under ``keys`` that differs."""
    out: list[str] = []

    def walk(a: object, b: object, path: str) -> None:
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            for k in sorted(set(a) | set(b), key=str):
                walk(a.get(k, "<absent>"), b.get(k, "<absent>"), f"{path}.{k}")
        elif a != b:
            out.append(f"{path}: checkpoint {shown(a)}, now {shown(b)}")

    for key in keys:
        walk(old.get(key, {}), new.get(key, {}), key)
    return out
