"""Console entry points: ``gan-train`` (conf/train.yaml) and ``gan-eval`` (conf/eval.yaml), each
composed by Hydra with the command line's overrides.

User mistakes end with one message on stderr and a documented exit status (gan_cli/errors.py):
2 for configuration mistakes (found while Hydra composes the config, or by the schema checks),
1 for runtime failures. A Python traceback appears only for bugs, or for every error when the
environment sets HYDRA_FULL_ERROR=1.
"""

from __future__ import annotations

import difflib
import logging
import os
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import HydraException
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException

from gan_cli.config import GROUPS, register_configs, validate, validate_eval
from gan_cli.errors import EXIT_CONFIG, GanCliError

CONF_DIR = Path(__file__).resolve().parent / "conf"
log = logging.getLogger("gan_cli")


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def _train_task(cfg: DictConfig) -> float | None:
    hc = HydraConfig.get()
    run_dir = Path(hc.runtime.output_dir)
    group = Path(hc.sweep.dir).name if hc.mode == RunMode.MULTIRUN else None
    try:
        validate(cfg)
        from gan_cli.train import run  # torch is imported once the config is known to be good

        last = run(cfg, run_dir, group=group)
    except GanCliError as e:
        _fail(e, "gan-train")
    return last.get("loss_g")


@hydra.main(version_base="1.3", config_path="conf", config_name="eval")
def _eval_task(cfg: DictConfig) -> None:
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        validate_eval(cfg)
        from gan_cli.evaluate import evaluate

        evaluate(cfg, run_dir)
    except GanCliError as e:
        _fail(e, "gan-eval")


def _fail(e: GanCliError, prog: str) -> None:
    # The message goes to stderr once, and into the run directory's log file.
    record = log.makeRecord(log.name, logging.ERROR, __file__, 0, "%s", (e,), None)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)
    print(f"{prog}: error: {e}", file=sys.stderr)
    raise SystemExit(e.exit_code)


def _main(app, prog: str, config_name: str) -> None:
    register_configs()
    user_full_error = os.environ.get("HYDRA_FULL_ERROR") == "1"
    # Let composition errors reach this function instead of Hydra's own reporter, which exits 1.
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        app()
    except (HydraException, OmegaConfBaseException) as e:
        if user_full_error:
            raise
        message = describe_config_error(e, sys.argv[1:], config_name)
        print(f"{prog}: configuration error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_CONFIG) from None


def train_main() -> None:
    """The ``gan-train`` command."""
    _main(_train_task, "gan-train", "train")


def eval_main() -> None:
    """The ``gan-eval`` command."""
    _main(_eval_task, "gan-eval", "eval")


def describe_config_error(e: BaseException, argv: list[str], config_name: str = "train") -> str:
    """Hydra's message, cut to what matters, plus the valid keys when a key was mistyped."""
    text = str(e).split("Config search path:")[0]  # the search path is noise to a user
    lines = [ln for ln in text.splitlines() if ln.strip() and "HYDRA_FULL_ERROR" not in ln]
    cause = e.__cause__ if e.__cause__ is not None else e
    if isinstance(cause, (ConfigKeyError, ConfigAttributeError)) and getattr(cause, "full_key", None):
        full_key = cause.full_key
        parent, _, key = full_key.rpartition(".")
        valid = _valid_keys(parent, argv, config_name)
        if valid is not None:
            lines = [f"unknown key '{full_key}'."]
            near = difflib.get_close_matches(key, valid, n=1)
            if near:
                lines.append(f"Did you mean '{parent + '.' if parent else ''}{near[0]}'?")
            where = f"'{parent}'" if parent else "the top level"
            lines.append(f"Valid keys under {where}: {', '.join(sorted(valid))}")
    elif cause is not e and str(cause) not in str(e):
        lines += [ln for ln in str(cause).splitlines() if ln.strip()][:2]
    return "\n".join(lines)


def _valid_keys(parent: str, argv: list[str], config_name: str) -> list[str] | None:
    """Keys under ``parent`` in the config composed with the command line's group choices only."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    choices = []
    for arg in argv:
        name, eq, value = arg.partition("=")
        if eq and name.lstrip("~+") in GROUPS and "," not in value:
            choices.append(arg)
    try:
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = compose(config_name=config_name, overrides=choices)
    except Exception:  # noqa: BLE001 - best effort: fall back to Hydra's own message
        return None
    node = OmegaConf.select(cfg, parent) if parent else cfg
    if not isinstance(node, DictConfig):
        return None
    keys = [str(k) for k in node.keys()]
    return keys


if __name__ == "__main__":
    train_main()
