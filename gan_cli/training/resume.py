"""Resuming: which checkpoint a run starts from, and a run directory continued in place.

Nothing here imports torch: :func:`expand_resume_dir` runs on the command line before Hydra.
Loading a checkpoint into the run's objects is ``TrainState.load_state_dict`` (state.py).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from gan_cli.errors import RuntimeFailure


def expand_resume_dir(argv: list[str]) -> list[str]:
    """``resume=RUN_DIR`` (a directory): continue that run in that directory, with its options.

    Adds ``hydra.run.dir=RUN_DIR`` (unless the command line sets it) and puts the run's own
    overrides (``RUN_DIR/.hydra/overrides.yaml``) before the command line's, so that
    ``gan-train resume=RUN_DIR`` alone continues the run, and ``gan-train resume=RUN_DIR
    train.steps=20000`` extends it. Keys given on the command line win. Multirun (-m) is left
    alone. The loop then loads the latest checkpoint in RUN_DIR/checkpoints.
    """
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
        try:
            from omegaconf import OmegaConf

            loaded = OmegaConf.to_container(OmegaConf.load(overrides))
        except Exception:  # noqa: BLE001 - unreadable: the command line alone decides
            loaded = []
        if isinstance(loaded, list):
            old = [str(a) for a in loaded if "=" in str(a) and _key(str(a)) not in given
                   and _key(str(a)) != "resume"]
            for override in old:
                check_saved_override(override, overrides)
    out = [*old, *argv]
    if "hydra.run.dir" not in given:
        out.append(f"hydra.run.dir={run_dir}")
    return out


def check_saved_override(override: str, source: Path) -> None:
    """Refuse an override read from a run directory that could make gan-train build or run
    something other than gan-cli's own parts: a ``_target_`` outside them, Hydra's other
    instantiation keys, or any ``hydra.*`` setting (callbacks, launchers). UntrustedConfigError."""
    import re

    from gan_cli.config import trusted_targets
    from gan_cli.errors import UntrustedConfigError

    key = _key(override)
    if key.startswith("hydra"):
        raise UntrustedConfigError(f"refused {source}: the override {override!r} sets Hydra itself; "
                                   f"a run directory's overrides may only set gan-cli's options")
    for special in re.findall(r"(?<![A-Za-z0-9])(_[a-z]+_)", override):
        if special != "_target_":
            raise UntrustedConfigError(f"refused {source}: the override {override!r} uses "
                                       f"{special}, which gan-cli's configs never use")
    named = re.findall(r"_target_\s*[:=]\s*['\"]?([^,}'\"\s]+)", override)
    trusted = trusted_targets()
    for target in named:
        if target not in trusted:
            raise UntrustedConfigError(
                f"refused {source}: the override {override!r} names {target!r}, which is not one "
                f"of gan-cli's own builders; nothing was built or run")


def _key(override: str) -> str:
    return override.partition("=")[0].lstrip("+~")


def resume_path(resume: str | None, ckpt_dir: Path) -> Path | None:
    """The checkpoint to start from: None (fresh), the run's latest (auto), or the named one.

    A directory names a run: its latest checkpoint (the command line already made that directory
    the run directory, so the run continues in place).
    """
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
            out.append(f"{path}: checkpoint {a!r}, now {b!r}")

    for key in keys:
        walk(old.get(key, {}), new.get(key, {}), key)
    return out
