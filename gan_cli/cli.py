"""Console entry points: ``gan-train`` (conf/train.yaml), ``gan-eval`` (conf/eval.yaml) and
``gan-sample`` (conf/sample.yaml), each composed by Hydra with the command line's overrides.

User mistakes end with one message on stderr and a documented exit status (gan_cli/errors.py):
2 for configuration mistakes (found while Hydra composes the config, or by the schema checks),
1 for runtime failures, 3 when a stop signal ended the run after a checkpoint. A Python traceback
appears only for bugs, or for every error when the environment sets HYDRA_FULL_ERROR=1.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import traceback
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import HydraException, MissingConfigException
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException

from gan_cli.config import CONF_DIR, GROUPS, register_configs, validate, validate_eval, validate_sample
from gan_cli.defaults import NOTES, model_dataset
from gan_cli.errors import (
    EXIT_CONFIG,
    EXIT_INTERRUPTED,
    EXIT_RUNTIME,
    ConfigError,
    GanCliError,
    RuntimeFailure,
    cut,
)
from gan_cli.rundir import first_rank, lock_run_dir, unlock_run_dir
from gan_cli.training.resume import expand_resume_dir
from gan_cli.typos import check_added_keys, command_args, missing_plugin, option_typo, unknown_key_message

log = logging.getLogger("gan_cli")


def _check_metric_names(names: list[str] | None, key: str) -> None:
    """Named metrics exist (the registry imports torch: only when names are given)."""
    if names is not None:
        from gan_cli.metrics.registry import check_names

        check_names(names, key)


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def _train_task(cfg: DictConfig) -> float:
    """One Hydra job: train, then return ``optimized_metric``. In a multirun a failed job raises,
    so Hydra records it and the sweep goes on; a single run exits at once."""
    hc = HydraConfig.get()
    run_dir = Path(hc.runtime.output_dir)
    multirun = hc.mode == RunMode.MULTIRUN
    group = Path(hc.sweep.dir).name if multirun else None
    # a multirun's job holds its own directory (a single run's is held by RunDirGuard already)
    locks = multirun and first_rank()
    try:
        if locks:
            lock_run_dir(run_dir)
        check_added_keys(cfg, hc.overrides.task)
        for note in NOTES:  # choices gan-train made for the command line (gan_cli/defaults.py)
            log.info("%s", note)
        validate(cfg)
        _check_metric_names(cfg.metrics.names, "metrics.names")
        if multirun and cfg.name is None:  # W&B's run name: the overrides the sweep varies
            from gan_cli.report.callback import sweep_job_name

            cfg.name = sweep_job_name(list(hc.overrides.task), Path(hc.sweep.dir),
                                      hc.sweeper.get("params"))
        from gan_cli import launch  # torch is imported once the config is known to be good

        last = launch.train(cfg, run_dir, group)
        if not last and not multirun:  # finished before, no records left: said so, nothing to
            return math.nan  # report; a single run's value is not read
        return optimized_metric(last, cfg.optimized_metric)
    except GanCliError as e:
        if multirun:
            log.error("%s", e)
            print(f"gan-train: error in job {hc.job.num} ({run_dir}): {e}", file=sys.stderr)
            raise
        _fail(e, "gan-train")
        raise  # unreachable: _fail exits
    finally:
        if locks:
            unlock_run_dir(run_dir)


def optimized_metric(last: dict[str, float], key: str) -> float:
    """The value a sweep optimises: ``key`` of the run's last logged statistics (metrics too).
    Nothing logged (a finished run started again) is a RuntimeFailure, so a sweep counts the job
    as failed (a NaN would stop Optuna)."""
    if not last:
        raise RuntimeFailure(f"optimized_metric={key!r}: the run has no statistics to report "
                             f"(its metrics.jsonl holds no records)")
    if key not in last:
        raise ConfigError(f"optimized_metric={key!r} is not among the run's logged statistics "
                          f"({', '.join(sorted(k for k in last if k != 'step')) or 'none'})")
    return float(last[key])


@hydra.main(version_base="1.3", config_path="conf", config_name="eval")
def _eval_task(cfg: DictConfig) -> None:
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        check_added_keys(cfg, HydraConfig.get().overrides.task)
        validate_eval(cfg)
        _check_metric_names(cfg.metrics, "metrics")
        _check_metric_names(list(cfg.metric_options), "metric_options")
        from gan_cli.evaluate import evaluate

        evaluate(cfg, run_dir)
    except GanCliError as e:
        _fail(e, "gan-eval")


@hydra.main(version_base="1.3", config_path="conf", config_name="sample")
def _sample_task(cfg: DictConfig) -> None:
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        check_added_keys(cfg, HydraConfig.get().overrides.task)
        validate_sample(cfg)
        from gan_cli.sample import sample

        sample(cfg, run_dir)
    except GanCliError as e:
        _fail(e, "gan-sample")


#: HYDRA_FULL_ERROR as the user set it (gan-train sets Hydra's own to 1 for every run).
USER_FULL_ERROR = "GAN_CLI_USER_FULL_ERROR"


def _fail(e: GanCliError, prog: str) -> None:
    # The message goes to stderr once, and into the run directory's log file.
    stopped = e.exit_code == EXIT_INTERRUPTED  # a clean stop after a checkpoint, not an error
    level = logging.WARNING if stopped else logging.ERROR
    record = log.makeRecord(log.name, level, __file__, 0, "%s", (e,), None)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)
    if os.environ.get(USER_FULL_ERROR) == "1":  # the user asked for tracebacks
        traceback.print_exception(e, file=sys.stderr)
    print(f"{prog}: {e}" if stopped else f"{prog}: error: {e}", file=sys.stderr)
    if stopped:  # the stop that began finishes: a late Ctrl-C must not become death by SIGINT
        from gan_cli.training.signals import ignore_stop_signals

        ignore_stop_signals()
    raise SystemExit(e.exit_code)


def _main(app, prog: str, config_name: str) -> None:
    from gan_cli.help import answer

    if answer(prog, config_name, sys.argv[1:]):  # --help, --version: from the files, no Hydra run
        return
    register_configs()
    # the user's HYDRA_FULL_ERROR, kept under another name for _fail and for this command's DDP
    # workers, since the next line sets Hydra's for every process
    user_full_error = os.environ.setdefault(
        USER_FULL_ERROR, "1" if os.environ.get("HYDRA_FULL_ERROR") == "1" else "0") == "1"
    # Let composition errors reach this function instead of Hydra's own reporter, which exits 1.
    os.environ["HYDRA_FULL_ERROR"] = "1"
    # resume=RUN_DIR: continue that run in place, with its own options (docs/reliability.md)
    try:
        sys.argv[1:] = expand_resume_dir(sys.argv[1:])
    except GanCliError as e:  # the run directory's overrides were refused
        print(f"{prog}: error: {e}", file=sys.stderr)
        raise SystemExit(e.exit_code) from None
    if config_name == "train":  # model=pix2pix alone: its own dataset (gan_cli/defaults.py)
        sys.argv[1:] = model_dataset(sys.argv[1:])
    else:  # gan-eval, gan-sample: a positional checkpoint, no training keys
        try:
            sys.argv[1:] = command_args(sys.argv[1:], prog, config_name)
        except GanCliError as e:
            print(f"{prog}: configuration error: {e}", file=sys.stderr)
            raise SystemExit(e.exit_code) from None
    leader = False
    if "RANK" in os.environ or "SLURM_PROCID" in os.environ:  # maybe under torchrun or srun
        from gan_cli import launch

        if not launch.lead_or_follow():
            return  # a follower: it trained the jobs rank 0 handed out (never reached on error)
        leader = launch.is_leader()
    exit_code = 0
    try:
        app()
    except (HydraException, OmegaConfBaseException) as e:
        if user_full_error:
            raise
        message = describe_config_error(e, sys.argv[1:], config_name)
        print(f"{prog}: configuration error: {message}", file=sys.stderr)
        exit_code = EXIT_CONFIG
        raise SystemExit(EXIT_CONFIG) from None
    except GanCliError as e:  # a multirun's failed job, re-raised by Hydra after the sweep
        exit_code = e.exit_code
        raise SystemExit(e.exit_code) from None
    except SystemExit as e:
        exit_code = e.code if isinstance(e.code, int) else 1
        raise
    except OSError as e:  # e.g. Hydra cannot create the run directory or its log file
        exit_code = EXIT_RUNTIME
        if user_full_error:
            raise
        where = f": {e.filename}" if e.filename else ""
        print(f"{prog}: error: cannot write the run directory ({e.strerror or e}{where}); "
              f"set hydra.run.dir to a writable directory", file=sys.stderr)
        raise SystemExit(EXIT_RUNTIME) from None
    except KeyboardInterrupt:  # Ctrl-C before training started, or a second Ctrl-C
        exit_code = 130
        if user_full_error:
            raise
        print(f"{prog}: interrupted", file=sys.stderr)
        raise SystemExit(130) from None
    except BaseException:
        exit_code = 1
        raise
    finally:
        if leader:
            launch.leader_done(exit_code)


def train_main() -> None:
    """The ``gan-train`` command."""
    _main(_train_task, "gan-train", "train")


def eval_main() -> None:
    """The ``gan-eval`` command."""
    _main(_eval_task, "gan-eval", "eval")


def sample_main() -> None:
    """The ``gan-sample`` command."""
    _main(_sample_task, "gan-sample", "sample")


def describe_config_error(e: BaseException, argv: list[str], config_name: str = "train") -> str:
    """Hydra's message, cut to what matters, plus the valid keys when a key was mistyped."""
    text = str(e).split("Config search path:")[0]  # the search path is noise to a user
    lines = [ln for ln in text.splitlines() if ln.strip() and "HYDRA_FULL_ERROR" not in ln]
    cause = e.__cause__ if e.__cause__ is not None else e
    if isinstance(cause, (ConfigKeyError, ConfigAttributeError)) and getattr(cause, "full_key", None):
        full_key = cause.full_key
        parent = full_key.rpartition(".")[0]
        valid = _valid_keys(parent, argv, config_name)
        if valid is not None:
            return unknown_key_message(full_key, valid)  # one line
    elif isinstance(cause, MissingConfigException) and cause.missing_cfg_file:
        path = cause.missing_cfg_file  # loss=wgangp: the nearest option; a plugin's: what to install
        hint = missing_plugin(path) or (option_typo(*path.split("/")) if path.count("/") == 1 else None)
        if hint:
            return hint
    elif cause is not e and str(cause) not in str(e):
        lines += [ln for ln in str(cause).splitlines() if ln.strip()][:2]
    # one line, whatever Hydra's message spans; OmegaConf's detail lines (full_key, object_type)
    # repeat what the first says
    return "; ".join(cut(ln.strip(), 300) for ln in lines if not ln.strip().startswith(_DETAIL_LINES))


#: The lines OmegaConf adds under a message (the key and types again), left out of ours.
_DETAIL_LINES = ("full_key:", "object_type=", "reference_type=")


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
