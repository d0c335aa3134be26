"""Console entry points. ``gan-train`` composes conf/train.yaml with the command line's overrides.

User mistakes end with one message on stderr and a documented exit status (gan_cli/errors.py):
2 for configuration mistakes (found while Hydra composes the config, or by the schema checks),
1 for runtime failures, 3 when a stop signal ended the run after a checkpoint. A Python traceback
appears only for bugs, or for every error when the environment sets HYDRA_FULL_ERROR=1.
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

from gan_cli.config import GROUPS, register_configs, validate
from gan_cli.errors import EXIT_CONFIG, EXIT_INTERRUPTED, EXIT_RUNTIME, GanCliError
from gan_cli.resilience import expand_resume_dir

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
        _fail(e)
    return last.get("loss_g")


def _fail(e: GanCliError) -> None:
    if e.exit_code == EXIT_INTERRUPTED:  # a clean stop, not an error
        log.warning("%s", e)
        print(f"gan-train: {e}", file=sys.stderr)
    else:
        log.error("%s", e)  # also lands in the run directory's log file
        print(f"gan-train: error: {e}", file=sys.stderr)
    raise SystemExit(e.exit_code)


def train_main() -> None:
    """The ``gan-train`` command."""
    register_configs()
    user_full_error = os.environ.get("HYDRA_FULL_ERROR") == "1"
    # Let composition errors reach this function instead of Hydra's own reporter, which exits 1.
    os.environ["HYDRA_FULL_ERROR"] = "1"
    # resume=RUN_DIR: continue that run in place, with its own options (docs/reliability.md)
    sys.argv[1:] = expand_resume_dir(sys.argv[1:])
    try:
        _train_task()
    except (HydraException, OmegaConfBaseException) as e:
        if user_full_error:
            raise
        print(f"gan-train: configuration error: {describe_config_error(e, sys.argv[1:])}",
              file=sys.stderr)
        raise SystemExit(EXIT_CONFIG) from None
    except OSError as e:  # e.g. Hydra cannot create the run directory or its log file
        if user_full_error:
            raise
        where = f": {e.filename}" if e.filename else ""
        print(f"gan-train: error: cannot write the run directory ({e.strerror or e}{where}); "
              f"set hydra.run.dir to a writable directory", file=sys.stderr)
        raise SystemExit(EXIT_RUNTIME) from None
    except KeyboardInterrupt:  # Ctrl-C before training started, or a second Ctrl-C
        if user_full_error:
            raise
        print("gan-train: interrupted", file=sys.stderr)
        raise SystemExit(130) from None


def describe_config_error(e: BaseException, argv: list[str]) -> str:
    """Hydra's message, cut to what matters, plus the valid keys when a key was mistyped."""
    text = str(e).split("Config search path:")[0]  # the search path is noise to a user
    lines = [ln for ln in text.splitlines() if ln.strip() and "HYDRA_FULL_ERROR" not in ln]
    cause = e.__cause__ if e.__cause__ is not None else e
    if isinstance(cause, (ConfigKeyError, ConfigAttributeError)) and getattr(cause, "full_key", None):
        full_key = cause.full_key
        parent, _, key = full_key.rpartition(".")
        valid = _valid_keys(parent, argv)
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


def _valid_keys(parent: str, argv: list[str]) -> list[str] | None:
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
            cfg = compose(config_name="train", overrides=choices)
    except Exception:  # noqa: BLE001 - best effort: fall back to Hydra's own message
        return None
    node = OmegaConf.select(cfg, parent) if parent else cfg
    if not isinstance(node, DictConfig):
        return None
    keys = [str(k) for k in node.keys()]
    if not parent:
        keys += [g for g in GROUPS if g not in keys]
    return keys


if __name__ == "__main__":
    train_main()
