"""Files from someone else never act (issue 26, sections 1, 2 and the saved-config items of 6).

A run directory's stored overrides and a checkpoint's saved config are data: nothing in them is
parsed as a command line, resolved as an interpolation or called unless it is one of gan-cli's
own builders. The attacks the issue reproduced run through the real commands here; a property
test (hypothesis) then generates thousands of variations of them and runs the checks in-process
with Hydra's instantiation and its ``_locate`` intercepted. docs/reliability.md lists the cases.
"""

from __future__ import annotations

import copy
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from gan_cli.checkpoint import load_checkpoint
from gan_cli.errors import EXIT_RUNTIME
from tests.conftest import REPO, SMALL, run_cli

CONF_DIR = REPO / "gan_cli" / "conf"


def run_tool(tool: str, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """gan-eval or gan-sample (``tool``: eval or sample) in a subprocess."""
    env = {**os.environ, "WANDB_SILENT": "true", "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    env.pop("HYDRA_FULL_ERROR", None)
    code = f"import sys; from gan_cli.cli import {tool}_main; sys.argv[0] = 'gan-{tool}'; {tool}_main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=300)


def assert_refused_in_one_line(proc: subprocess.CompletedProcess, *words: str) -> str:
    """Exit 1, no traceback, exactly one error line on stderr (a few hundred characters at most
    of any value it quotes), holding ``words``; returns that line."""
    assert proc.returncode == EXIT_RUNTIME, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    errors = [ln for ln in proc.stderr.splitlines() if ": error: " in ln]
    assert len(errors) == 1, proc.stderr[-3000:]
    assert len(errors[0]) < 1500, errors[0][:3000]
    for word in words:
        assert word in errors[0], (word, errors[0])
    return errors[0]


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("toy") / "run"
    proc = run_cli([*SMALL, "train.steps=6"], run_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return run_dir


def copy_run(toy_run: Path, tmp_path: Path, overrides: list) -> Path:
    """A copy of ``toy_run`` whose .hydra/overrides.yaml holds ``overrides`` (any YAML data)."""
    import shutil

    run_dir = tmp_path / "run"
    shutil.copytree(toy_run, run_dir)
    (run_dir / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    return run_dir


class _Touch:
    """A pickle that runs ``touch marker`` when it is loaded."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def open_for_writing(marker: Path) -> str:
    """An OmegaConf interpolation that, once resolved and instantiated, creates ``marker``."""
    return f"${{oc.create:{{_target_: builtins.open, file: '{marker}', mode: w}}}}"


# ---------------------------------------------------------------------------------------------
# 1. resume=RUN_DIR: the stored overrides are data, never a command line.


def _rerun_pickle(tmp_path: Path, marker: Path) -> list:
    evil = tmp_path / "config.pickle"
    evil.write_bytes(pickle.dumps(_Touch(marker)))
    return [f"--experimental-rerun={evil}", "tiny=toy"]


def _config_dir(tmp_path: Path, marker: Path) -> list:
    (tmp_path / "evil" / "model").mkdir(parents=True)
    (tmp_path / "evil" / "model" / "evil.yaml").write_text(
        "defaults:\n  - /schema/model@_here_: mlp\n  - _self_\n"
        f"stages: {{_target_: builtins.open, file: '{marker}', mode: w}}\n")
    return [f"--config-dir={tmp_path / 'evil'}", "tiny=toy", "model=evil"]


def _dotdot_group(tmp_path: Path, marker: Path) -> list:
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "evil.yaml").write_text(
        "defaults:\n  - /schema/model@_here_: mlp\n  - _self_\n"
        f"stages: {{_target_: builtins.open, file: '{marker}', mode: w}}\n")
    rel = os.path.relpath(tmp_path / "elsewhere" / "evil", CONF_DIR / "model")
    return ["tiny=toy", f"model={rel}"]


def _quoted_key(tmp_path: Path, marker: Path) -> list:
    # the key is quoted inside a YAML string that oc.create parses: no `_target_:` to be seen
    return ["tiny=toy",
            "model.stages=\"${oc.create:\\\"{'_target_': builtins.open, 'file': '" + str(marker)
            + "', 'mode': w}\\\"}\""]


@pytest.mark.parametrize("attack", [_rerun_pickle, _config_dir, _dotdot_group, _quoted_key],
                         ids=["experimental-rerun pickle", "config-dir", "dotdot group option",
                              "quoted key in an interpolation"])
def test_a_run_directorys_overrides_never_run_anything(tmp_path: Path, toy_run: Path, attack):
    marker = tmp_path / "pwned"
    run_dir = copy_run(toy_run, tmp_path, attack(tmp_path, marker))
    proc = run_cli([f"resume={run_dir}", "train.steps=12"], run_dir)
    assert not marker.exists(), "the run directory's overrides ran code"
    assert_refused_in_one_line(proc, "refused", "overrides.yaml")


# ---------------------------------------------------------------------------------------------
# 2. A checkpoint's saved config: no interpolation anywhere, no foreign target in any field.


def crafted_checkpoint(toy_run: Path, tmp_path: Path, edit) -> Path:
    """A copy of the toy run's checkpoint whose config ``edit(config)`` changed (or replaced: a
    non-None return value becomes the config); plain data, so weights-only loading accepts it."""
    state = copy.deepcopy(load_checkpoint(toy_run / "checkpoints" / "last.pt"))
    replaced = edit(state["config"])
    if replaced is not None:
        state["config"] = replaced
    path = tmp_path / "crafted.pt"
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(20000)  # the pickler recurses into a deeply nested config
    try:
        torch.save(state, path)
    finally:
        sys.setrecursionlimit(limit)
    return path


def _stages_interpolation(marker: Path):
    def edit(config):
        config["model"]["stages"] = open_for_writing(marker)
    return edit


def _dataset_interpolation(marker: Path):
    def edit(config):  # a node no schema applies to, reached only by interpolation
        config["dataset"] = {"_target_": "gan_cli.data.toy.ring_of_gaussians",
                             "figure": open_for_writing(marker)}
    return edit


@pytest.mark.parametrize("tool", ["eval", "sample"])
@pytest.mark.parametrize("make_edit", [_stages_interpolation, _dataset_interpolation],
                         ids=["model.stages", "dataset"])
def test_a_checkpoints_interpolation_never_calls_anything(tmp_path: Path, toy_run: Path, tool,
                                                          make_edit):
    marker = tmp_path / "pwned"
    ckpt = crafted_checkpoint(toy_run, tmp_path, make_edit(marker))
    proc = run_tool(tool, [f"ckpt={ckpt}", f"hydra.run.dir={tmp_path / 'out'}"], tmp_path)
    assert not marker.exists(), f"gan-{tool} called a callable named by the checkpoint"
    assert_refused_in_one_line(proc, "refused", "interpolation")


def test_a_target_in_a_field_typed_any_is_checked(tmp_path: Path, toy_run: Path):
    marker = tmp_path / "pwned"

    def edit(config):
        config["model"]["stages"] = {"levels": [{"_target_": "builtins.open", "file": str(marker),
                                                 "mode": "w"}]}
    ckpt = crafted_checkpoint(toy_run, tmp_path, edit)
    proc = run_tool("eval", [f"ckpt={ckpt}", f"hydra.run.dir={tmp_path / 'out'}"], tmp_path)
    assert not marker.exists()
    assert_refused_in_one_line(proc, "model.stages.levels[0]._target_", "builtins.open")


# ---------------------------------------------------------------------------------------------
# 6. Saved configs that are not configs: one line, exit 1.


def test_a_saved_model_without_a_generator_exits_1(tmp_path: Path, toy_run: Path):
    ckpt = crafted_checkpoint(toy_run, tmp_path, lambda config: config["model"].pop("generator"))
    proc = run_tool("eval", [f"ckpt={ckpt}", f"hydra.run.dir={tmp_path / 'out'}"], tmp_path)
    assert_refused_in_one_line(proc, "model.generator")


def test_a_50_mb_string_is_quoted_in_a_few_hundred_characters(tmp_path: Path, toy_run: Path):
    def edit(config):
        config["dataset"]["figure"]["field"] = "x" * 50_000_000
    ckpt = crafted_checkpoint(toy_run, tmp_path, edit)
    proc = run_tool("eval", [f"ckpt={ckpt}", f"hydra.run.dir={tmp_path / 'out'}"], tmp_path)
    assert_refused_in_one_line(proc, "dataset")
    assert len(proc.stderr) < 3000, len(proc.stderr)
    # resume=FILE compares the saved config with the new one and reports what differs
    proc = run_cli([*SMALL, f"resume={ckpt}"], tmp_path / "resumed")
    assert len(proc.stderr) + len(proc.stdout) < 20000, (len(proc.stderr), len(proc.stdout))
