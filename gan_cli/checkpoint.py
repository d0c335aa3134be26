"""Checkpoints: written atomically by rank 0, loaded without executing code.

A checkpoint is a plain dict of tensors and Python primitives (state dicts, optimizer states,
progress counters, RNG states, the resolved config); no code is pickled, and loading uses
``torch.load(weights_only=True)``, which refuses anything else.
"""

from __future__ import annotations

import os
import pickle
import re
import warnings
from pathlib import Path
from typing import Any

import torch

from gan_cli.errors import ConfigError, RuntimeFailure, cut

FORMAT = "gan-cli/1"
#: What one generator/discriminator pair stores (gan_cli/build.py's Pair.state_dict): at the
#: top level of a checkpoint for a single pair, one dict per stage under "stages" otherwise.
PAIR_KEYS = ("G", "D", "G_ema", "opt_g", "opt_d", "scaler_g", "scaler_d", "loss", "regularizers")
_NUMBERED = re.compile(r"^step_(\d+)\.pt$")
_TEMP = re.compile(r"^\..+\.tmp-(\d+)$")  # save_atomic's temporary files: .<name>.tmp-<pid>
#: Builders renamed since checkpoints were first written (old ``_target_`` -> new), as data: a
#: saved config's old name is read as the new one when the checkpoint is loaded, before its
#: config is checked (the old module is never imported).
RENAMED_TARGETS = {
    "gan_cli.regularizers.R1": "gan_cli.losses.R1",
    "gan_cli.regularizers.Drift": "gan_cli.losses.Drift",
    "gan_cli.regularizers.PathLength": "gan_cli.losses.PathLength",
    "gan_cli.regularizers.L1Reconstruction": "gan_cli.losses.L1Reconstruction",
    "gan_cli.regularizers.SinGANReconstruction": "gan_cli.losses.SinGANReconstruction",
    "gan_cli.models.singan.SinGANWGANGP": "gan_cli.losses.SinGANWGANGP",
}

#: Keys a builder gained after checkpoints were first written whose default is not what older runs
#: trained with: a saved config without the key reads the old value when loaded (as data too).
#: StyleGAN2's upsampling was bilinear before model.generator.upsample (issue 31).
ADDED_KEYS = {
    "gan_cli.models.stylegan2.Generator": {"upsample": "bilinear"},
}


class CheckpointError(RuntimeFailure):
    """A checkpoint that is missing, unreadable, unsafe or not from gan-cli (exit status 1)."""


class CheckpointMismatchError(ConfigError):
    """A readable checkpoint written for another model configuration (exit status 2: the fix is
    to resume with the options the run was started with)."""


def save_atomic(state: dict, path: Path) -> None:
    """Write ``state`` to ``path`` so that a crash at any moment leaves the old file intact.

    The bytes go to a temporary file in the same directory, are flushed and fsynced, and the file
    is renamed over ``path`` (atomic on POSIX); the directory is fsynced so the rename survives a
    power loss.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def save_checkpoint(state: dict, ckpt_dir: Path, step: int, keep: int,
                    kept: str = "the previous checkpoint, if any, is intact") -> Path:
    """Write ``last.pt`` and, when ``keep`` > 0, ``step_<step>.pt``, keeping the newest ``keep``.

    A write that fails (a full disk, a quota, permissions) leaves the previous ``last.pt`` intact
    and no temporary file, and raises a CheckpointError that says why and, with ``kept``, which
    checkpoint is still good.
    """
    state = {"format": FORMAT, **state}
    last = ckpt_dir / "last.pt"
    _save_or_explain(state, last, f"of step {step}", kept)
    if keep > 0:
        numbered = ckpt_dir / f"step_{step:08d}.pt"
        try:
            os.link(last, numbered)  # same bytes, no second write
        except OSError:
            _save_or_explain(state, numbered, "", f"{last} holds step {step}")
        old = sorted(p for p in ckpt_dir.iterdir() if _NUMBERED.match(p.name))[:-keep]
        for p in old:
            p.unlink(missing_ok=True)
    return last


def _save_or_explain(state: dict, path: Path, what: str, still_good: str) -> None:
    """save_atomic, or a CheckpointError naming ``path`` (``what``: e.g. "of step 12"), why it
    failed (a full disk behind torch's "unexpected pos") and which checkpoint is ``still_good``;
    an error that is no write failure is raised as it is (a bug)."""
    try:
        save_atomic(state, path)
    except (OSError, RuntimeError) as e:
        why = _write_error(e)
        if why is None:
            raise
        what = f" {what}" if what else ""
        raise CheckpointError(f"cannot write checkpoint {path}{what} ({why}); {still_good}") from None


def _write_error(e: OSError | RuntimeError) -> str | None:
    """Why a write failed, in a few words; None if ``e`` is not a failed write.

    torch's zip writer reports a failed write as ``RuntimeError: [enforce fail at
    inline_container.cc:...] unexpected pos ...``, raised while the file's own OSError (ENOSPC:
    no space left on device) is being handled; that OSError says why.
    """
    seen: BaseException | None = e
    for _ in range(8):  # the exception, the one it was raised from or while handling, ...
        if seen is None:
            break
        if isinstance(seen, OSError):
            return str(seen.strerror or seen)
        seen = seen.__cause__ or seen.__context__
    if "inline_container" in str(e):
        return f"torch could not write it: {(str(e).splitlines() or [''])[0]}"
    return None


def remove_stale_temp_files(ckpt_dir: Path) -> list[Path]:
    """Delete temporary files that a writer killed mid-save left behind (their process is gone).

    They never count as checkpoints (see ``latest_checkpoint``); this only reclaims the space.
    """
    removed = []
    if not ckpt_dir.is_dir():
        return removed
    for p in ckpt_dir.iterdir():
        m = _TEMP.match(p.name)
        if m and int(m.group(1)) != os.getpid() and not _alive(int(m.group(1))):
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, but not ours
    return True


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Load a gan-cli checkpoint safely; every failure is a CheckpointError with a clear message."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint not found: {path}")
    if not path.is_file():
        raise CheckpointError(f"checkpoint is not a file: {path}")
    try:
        with warnings.catch_warnings():  # torch's pickle-protocol notes: noise for a user
            warnings.simplefilter("ignore", UserWarning)
            state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        # torch's weights-only unpickler names the refused callable ("... GLOBAL posix.system
        # ..."); any other refusal means bytes that are not a pickle it can read.
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
        why = [ln for ln in lines if "GLOBAL" in ln or "global" in ln.split(":")[0]]
        if why:
            raise CheckpointError(
                f"refused to load {path}: it holds objects other than tensors and plain data "
                f"(loading it could execute code). gan-cli checkpoints never do; "
                f"the file is not one of them. ({cut(why[0], 300)})") from None
        detail = next((ln for ln in lines if "Unsupported" in ln), lines[0] if lines else "")
        raise CheckpointError(f"cannot read checkpoint {path}: the file is corrupt, truncated or "
                              f"not written by torch.save ({cut(detail, 300)})") from None
    except Exception as e:  # noqa: BLE001 - arbitrary bytes make the unpickler fail in any way
        # (RuntimeError, EOFError, BadZipFile, ValueError, IndexError from a stray MARK, ...)
        first = (str(e).splitlines() or [""])[0]
        raise CheckpointError(f"cannot read checkpoint {path}: the file is corrupt or truncated "
                              f"({type(e).__name__}: {cut(first, 300)})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a gan-cli checkpoint (no '{FORMAT}' format tag)")
    rename_targets(state.get("config"))
    return state


def rename_targets(config: Any) -> None:
    """Replace, in place, every ``_target_`` of ``config`` (a saved config: plain data, however
    nested) that RENAMED_TARGETS lists by its new name, and give a node the ADDED_KEYS of its
    builder that it lacks; anything else is left to the checks."""
    stack, seen = [config], set()
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, dict):
            target = node.get("_target_")
            if isinstance(target, str) and target in RENAMED_TARGETS:
                node["_target_"] = RENAMED_TARGETS[target]
            for key, old in ADDED_KEYS.get(node.get("_target_"), {}).items():
                node.setdefault(key, old)
            stack.extend(v for v in node.values() if isinstance(v, (dict, list)))
        elif isinstance(node, list):
            stack.extend(v for v in node if isinstance(v, (dict, list)))


def latest_checkpoint(ckpt_dir: Path) -> Path | None:
    """``last.pt`` if present, else the highest-numbered ``step_*.pt``, else None.

    Temporary files of an interrupted write (``.last.pt.tmp-<pid>``) never match.
    """
    last = ckpt_dir / "last.pt"
    if last.is_file():
        return last
    numbered = sorted(p for p in ckpt_dir.glob("step_*.pt") if _NUMBERED.match(p.name))
    return numbered[-1] if numbered else None


def pair_states_of(checkpoint: dict[str, Any]) -> list[dict[str, Any]]:
    """The per-pair states of a checkpoint: ``stages``, or the single pair at the top level."""
    if "stages" in checkpoint:
        return list(checkpoint["stages"])
    return [{k: checkpoint[k] for k in PAIR_KEYS if k in checkpoint}]


def generator_state(checkpoint: dict[str, Any], use_ema: bool = True) -> tuple[str, list[dict]]:
    """Which generator weights a checkpoint offers ("G_ema" when present and asked for, else "G")
    and their state dicts, one per stage."""
    pairs = pair_states_of(checkpoint)
    which = "G_ema" if use_ema and all("G_ema" in p for p in pairs) else "G"
    return which, [p[which] for p in pairs]
