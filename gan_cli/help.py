"""``--help`` and ``--version`` of gan-train, gan-eval and gan-sample, from the files that define
the config: each option's one-line description is the first comment line of conf/<group>/<option>.yaml,
each key's documentation is its comment in the schema (gan_cli/config/*.py), each default the
schema's (or the option file's, where it sets one). No torch, no composition: it prints in well
under a second.

    gan-train --help                       the groups, their options, the run's own keys
    gan-train --help loss=wgan_gp model=mlp  the keys of those options: default and documentation
    gan-train --help train                 train.* (also metrics, ema)
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import io
import textwrap
import tokenize
from pathlib import Path

from omegaconf import MISSING, DictConfig, ListConfig, OmegaConf

from gan_cli.config import CONF_DIR
from gan_cli.config.commands import SAMPLE_MODES, EvalConfig, SampleConfig
from gan_cli.config.train import TrainConfig

#: The groups a user picks from (conf/<group>/); the others (schema, tiny, tuned, recipe,
#: schedule) are selected by these.
USER_GROUPS = ("dataset", "model", "loss", "optimizer", "hardware", "logger", "experiment",
               "hparams_search")
SCHEMA_OF_COMMAND = {"train": TrainConfig, "eval": EvalConfig, "sample": SampleConfig}
WIDTH = 110


def version() -> str:
    """gan-cli's installed version, or "unknown" when it runs from a checkout that is not installed."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("gan-cli")
    except PackageNotFoundError:
        return "unknown (not installed)"


def answer(prog: str, config_name: str, argv: list[str]) -> bool:
    """Print the help or the version when ``argv`` asks for it (--help, -h, --version); True if so."""
    if "--version" in argv:
        print(f"gan-cli {version()}")
        return True
    if "--help" in argv or "-h" in argv:
        print(help_text(prog, config_name, [a for a in argv if a not in ("--help", "-h")]), end="")
        return True
    return False


def help_text(prog: str, config_name: str, args: list[str]) -> str:
    """The help of one command; ``args`` (the other arguments) pick what to detail."""
    schema = SCHEMA_OF_COMMAND[config_name]
    picked = [a.lstrip("+") for a in args if not a.startswith("-")]
    if picked:
        return "\n\n".join(_detail(schema, a) for a in picked) + "\n"
    out = [_header(config_name, prog)]
    if config_name == "train":
        out.append(_groups())
        top = {f.name: f for f in dataclasses.fields(schema) if f.name not in USER_GROUPS}
        scalars = [n for n, f in top.items() if not _nested_schema(f)]
        out.append("Run keys (KEY=VALUE):\n" + _keys(schema, only=scalars))
        nodes = ", ".join(f"{n}.*" for n, f in top.items() if _nested_schema(f))
        out.append(f"Also {nodes}: `{prog} --help train` (or metrics, ema) lists them documented.\n"
                   f"Metric names (metrics.names=[...]): {', '.join(metric_names())}")
        out.append(f"`{prog} --help GROUP=OPTION ...` lists the keys of those options with their "
                   f"defaults, e.g. `{prog} --help loss=wgan_gp model=dcgan`.")
    else:
        out.append("Keys (KEY=VALUE; the model, loss, dataset and training settings come from the "
                   "checkpoint):\n" + _keys(schema, skip={"logger"}))
        if config_name == "eval":
            out.append(f"Metric names (metrics=[...]): {', '.join(metric_names())}")
        else:
            out.append(f"Modes (mode=...): {', '.join(SAMPLE_MODES)}")
    out.append("Hydra's own flags: --hydra-help; the composed config: --cfg job. "
               "Exit statuses: 0 ok, 1 runtime failure, 2 configuration mistake, 3 stopped by a signal.")
    return "\n\n".join(out) + "\n"


def _header(config_name: str, prog: str) -> str:
    """The leading comment block of conf/<command>.yaml (what the command does, examples)."""
    lines = [f"usage: {prog} [GROUP=OPTION | KEY=VALUE ...]" + (" [CKPT]" if config_name != "train" else "")]
    for line in (CONF_DIR / f"{config_name}.yaml").read_text().splitlines():
        if not line.startswith("#"):
            break
        lines.append(line[1:].rstrip())
    return "\n".join(lines)


def _groups() -> str:
    defaults = {}
    for entry in OmegaConf.to_container(OmegaConf.load(CONF_DIR / "train.yaml").defaults):
        if isinstance(entry, dict):
            defaults.update(entry)
    out = ["Groups (GROUP=OPTION; one option each):"]
    for group in USER_GROUPS:
        out.append(f"  {group} (default: {defaults.get(group) or 'none'})")
        for path in sorted((CONF_DIR / group).glob("*.yaml")):
            text = textwrap.shorten(description(path), WIDTH - 28, placeholder=" ...")
            out.append(f"    {path.stem:<23} {text}")
    return "\n".join(out)


def description(path: Path) -> str:
    """The leading comment of an option file, joined into one line (a leading ``name:`` left out);
    the help shortens it to the line's width."""
    words = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        text = line.lstrip("#").strip()
        if not text.startswith("@package"):
            words.append(text)
    name, colon, rest = " ".join(words).partition(":")
    return rest.strip() if colon and name.strip() == path.stem else " ".join(words)


def _detail(schema: type, arg: str) -> str:
    """``group=option``: that option's keys; ``node`` (train, metrics, ema): the command's own node."""
    name, eq, value = arg.partition("=")
    group = name.split("@")[0]
    if eq and (CONF_DIR / group / f"{value}.yaml").is_file():
        return _option(group, value)
    fields = {f.name: f for f in dataclasses.fields(schema)}
    if not eq and name in fields and _nested_schema(fields[name]):
        return f"{name}.*:\n" + _keys(_nested_schema(fields[name]), prefix=f"{name}.")
    if eq and (CONF_DIR / group).is_dir():
        from gan_cli.typos import option_typo

        return option_typo(group, value) or f"{arg}: no such option"
    return (f"{arg}: not a group option or a node of this command; groups: "
            f"{', '.join(USER_GROUPS) if schema is TrainConfig else 'none'}; nodes: "
            f"{', '.join(n for n, f in fields.items() if _nested_schema(f)) or 'none'}")


def _option(group: str, option: str) -> str:
    """An option's description, then each key it has: default (the option file's value where it
    sets one) and documentation from its schema."""
    path = CONF_DIR / group / f"{option}.yaml"
    text = path.read_text()
    head = [line[1:].rstrip() for line in text.splitlines() if line.startswith("#")
            and "@package" not in line]
    yaml = OmegaConf.load(path)
    schema_name = next((v for entry in OmegaConf.to_container(yaml.get("defaults", []))
                        if isinstance(entry, dict)
                        for k, v in entry.items() if str(k).startswith(f"/schema/{group}@")), None)
    from gan_cli.config.schemas import SCHEMAS

    schema = SCHEMAS.get(group, {}).get(schema_name)
    set_here = {k: v for k, v in _flat(OmegaConf.masked_copy(yaml, [k for k in yaml if k != "defaults"]))}
    out = [f"{group}={option}:", *head]
    if schema is not None:
        out.append(f"Keys ({group}.KEY=VALUE; schema {schema.__name__} in {schema.__module__}):")
        out.append(_keys(schema, prefix=f"{group}.", values=set_here))
    elif set_here:  # an experiment or a search: what it sets
        out.append("Sets:")
        out += [f"  {k} = {v}" for k, v in set_here.items()]
    return "\n".join(out)


def _flat(node, prefix: str = ""):
    """(dotted key, value) of every leaf of a config node, interpolations as written."""
    for key in node:
        child = node._get_node(key)
        if isinstance(child, DictConfig) and not child._is_none():
            yield from _flat(child, f"{prefix}{key}.")
        elif isinstance(child, ListConfig):
            yield f"{prefix}{key}", OmegaConf.to_container(child)
        else:
            yield f"{prefix}{key}", child._value()


def _nested_schema(f: dataclasses.Field) -> type | None:
    """The dataclass a field's default is an instance of (a nested node), else None."""
    if f.default_factory is not dataclasses.MISSING:
        value = f.default_factory()
        return type(value) if dataclasses.is_dataclass(value) else None
    return None


def _keys(schema: type, prefix: str = "", only: list[str] | None = None, skip: set[str] = frozenset(),
          values: dict | None = None) -> str:
    """One entry per key of ``schema`` (nested nodes expanded): ``key = default``, its type, and
    its documentation indented below."""
    docs = field_docs(schema)
    out = []
    for f in dataclasses.fields(schema):
        if f.name.startswith("_") or f.name in skip or (only is not None and f.name not in only):
            continue
        key = prefix + f.name
        nested = _nested_schema(f)
        if nested is not None:
            out.append(_keys(nested, prefix=f"{key}.", values=values))
            continue
        if values and key.partition(".")[2] in values:
            default = values[key.partition(".")[2]]
        elif f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = MISSING
        shown = "??? (required)" if default == MISSING else _yaml(default)
        out.append(f"  {key} = {shown}    ({f.type})")
        if docs.get(f.name):
            out += textwrap.wrap(docs[f.name], WIDTH, initial_indent=" " * 6, subsequent_indent=" " * 6)
    return "\n".join(out)


def _yaml(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def field_docs(schema: type) -> dict[str, str]:
    """Each field's documentation: its comments in the schema's source (the lines just above it,
    the one on its line and the indented lines under that), a parent class's where the class
    itself has none."""
    docs: dict[str, str] = {}
    for klass in reversed(schema.__mro__):
        if dataclasses.is_dataclass(klass):
            docs.update({k: v for k, v in _own_docs(klass).items() if v})
    return docs


@functools.cache
def _own_docs(klass: type) -> dict[str, str]:
    try:
        source = textwrap.dedent(inspect.getsource(klass))
    except (OSError, TypeError):
        return {}
    comments = {tok.start[0]: tok.string[1:] for tok in tokenize.generate_tokens(io.StringIO(source).readline)
                if tok.type == tokenize.COMMENT}
    lines = source.splitlines()
    body = ast.parse(source).body[0].body
    docs, taken, shared = {}, set(), []  # taken: rows read as a field's continuation lines
    for i, stmt in enumerate(body):
        if not (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)):
            continue
        above = []
        row = stmt.lineno - 1  # the comment lines just above the field (1-based rows)
        while row >= 1 and row not in taken and lines[row - 1].strip().startswith("#"):
            above.insert(0, comments[row].strip())
            row -= 1
        own = [comments[r].strip() for r in range(stmt.lineno, stmt.end_lineno + 1) if r in comments]
        end = body[i + 1].lineno if i + 1 < len(body) else len(lines) + 1
        row = stmt.end_lineno + 1  # indented continuation lines of the trailing comment
        while own and row < end and lines[row - 1].strip().startswith("#") and comments[row].startswith("  "):
            own.append(comments[row].strip())
            taken.add(row)
            row += 1
        if not above and not own and i and body[i - 1].end_lineno == stmt.lineno - 1:
            above = shared  # a field right under a commented one shares its block comment
        docs[stmt.target.id] = " ".join(above + own)
        shared = above if isinstance(stmt, ast.AnnAssign) and not own else []
    return docs


@functools.lru_cache(maxsize=1)
def metric_names() -> list[str]:
    """The registered metric names, read from gan_cli/metrics/defs/*.py (``Metric("name", ...)``)
    without importing them (they import torch)."""
    names = []
    for path in sorted((Path(__file__).parent / "metrics" / "defs").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Metric" and node.args
                    and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
                names.append(node.args[0].value)
    return sorted(names)
