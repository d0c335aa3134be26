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
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from gan_cli.checkpoint import load_checkpoint
from gan_cli.errors import EXIT_RUNTIME
from tests.conftest import REPO, SMALL, run_cli
from tests.inprocess import run_in_process

CONF_DIR = REPO / "gan_cli" / "conf"


def run_tool(tool: str, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """gan-eval or gan-sample (``tool``: eval or sample) in this process (tests/inprocess.py: the
    same entry point, exit status and output); a callable the file named would run here too."""
    return run_in_process(f"gan-{tool}", args, cwd)


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
@pytest.mark.slow
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


@pytest.mark.slow  # writes and reads 50 MB twice: about 20 s on a shared CPU
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


# ---------------------------------------------------------------------------------------------
# 4. Thousands of variations, in-process: nothing outside the allow-list is located or called.

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

EVIL_TARGETS = ["pathlib.Path.write_text", "pathlib.Path.touch", "os.system", "builtins.open",
                "builtins.eval", "builtins.exec", "shutil.copyfile", "shutil.unpack_archive",
                "torch.save", "numpy.save", "json.dump", "os.makedirs", "os.symlink",
                "subprocess.run", "runpy.run_path", "importlib.import_module", "posix.system",
                " gan_cli.data.toy.sine", "gan_cli.data.toy.sine ", "gan_cli.data.toy.sine.__globals__",
                "gan_cli.build.instantiate", "hydra.utils.instantiate"]
RESOLVERS = ["oc.create", "oc.env", "oc.decode", "oc.select", "oc.dict.keys", "oc.dict.values",
             "oc.deprecated", "now", "hydra.runtime.cwd", "python.eval"]


def _node_text(target: str, quote: str) -> str:
    q = quote
    return f"{{{q}_target_{q}: {target}, {q}file{q}: /tmp/x, {q}mode{q}: w}}"


@st.composite
def interpolations(draw) -> str:
    """``${resolver:...}`` with a node, a YAML string holding one (quoted keys), or a reference."""
    resolver = draw(st.sampled_from(RESOLVERS))
    target = draw(st.sampled_from(EVIL_TARGETS))
    arg = draw(st.sampled_from([
        _node_text(target, ""), f"'{_node_text(target, chr(34))}'", f'"{_node_text(target, chr(39))}"',
        "HOME", "model.generator", "${oc.env:HOME}", f"[{_node_text(target, '')}]"]))
    text = draw(st.sampled_from([f"${{{resolver}:{arg}}}", "${model.generator}", "\\${x}",
                                 f"${{{resolver}:${{{resolver}:{arg}}}}}"]))
    prefix = draw(st.sampled_from(["", "a", "/tmp/", " "]))
    return prefix + text


@st.composite
def evil_nodes(draw) -> object:
    """A value that must be refused, nested in dicts and lists."""
    leaf = draw(st.one_of(
        interpolations(),
        st.builds(lambda t, k: {"_target_": t, k: "/tmp/x"}, st.sampled_from(EVIL_TARGETS),
                  st.sampled_from(["file", "self", "path", "command"])),
        st.builds(lambda kv: {"_target_": "gan_cli.data.toy.sine", kv[0]: kv[1]}, st.sampled_from(
            [(k, v) for k in ("_args_", "_partial_", "_set_", "_name_", "__class__")
             for v in ([1], True, "yes", {"_target_": "os.system"})]
            + [("_recursive_", "yes"), ("_recursive_", 0), ("_convert_", 1), ("_convert_", None)])),
        st.builds(lambda i: {f"a${{{i}}}": 1}, interpolations()),  # an interpolation as a key
        st.sampled_from([b"bytes", {b"k": "x"}, {("t",): 1}, torch.zeros(1), {None: 2}]),
    ))
    for _ in range(draw(st.integers(0, 4))):  # nesting in dicts and lists
        leaf = draw(st.sampled_from([{"k": leaf}, [leaf], [1, leaf], {"x": 1, "y": [leaf]}]))
    return leaf


def _builders(group: str) -> list[str]:
    from gan_cli.config import SCHEMAS

    return sorted({schema._target_ for schema in SCHEMAS[group].values() if hasattr(schema, "_target_")})


#: gan-cli's own builders that write or would be called with the file's arguments where no
#: schema puts them: data sets (they unpack and download into ``root``), losses, the run-directory
#: callback (issue 26 review: a trusted builder in the wrong place is an attack too).
MISPLACED = [*_builders("dataset"), *_builders("loss"), "gan_cli.rundir.RunDirGuard",
             "torch.optim.SGD", "gan_cli.models.stages.SinGANStages"]


@st.composite
def misplaced_builders(draw) -> object:
    """One of gan-cli's own builders where gan-cli's configs never put it, with arguments that
    would write (``root``, ``download``), or a stage builder told to build its nested nodes."""
    target = draw(st.sampled_from(MISPLACED))
    leaf = draw(st.sampled_from([
        {"_target_": target, "root": "/tmp/x", "download": True},
        {"_target_": target, "_recursive_": True, "dataset": {"_target_": MISPLACED[0], "root": "/x"}},
        {"_target_": "gan_cli.models.stages.SinGANStages", "_recursive_": True},
        {"levels": [{"_target_": target, "root": "/tmp/x"}]},
    ]))
    for _ in range(draw(st.integers(0, 2))):
        leaf = draw(st.sampled_from([{"k": leaf}, [leaf]]))
    return leaf


def _deep(depth: int) -> dict:
    node: dict = {}
    for _ in range(depth):
        node = {"a": node}
    return node


@pytest.fixture(scope="module")
def saved_config() -> dict:
    """The toy run's config as gan-train saves it (composed, validated, resolved)."""
    from omegaconf import OmegaConf

    from tests.test_training_extensions import compose_train

    return OmegaConf.to_container(compose_train(*SMALL), resolve=True)


class Intercepted:
    """Hydra's ``_locate`` and ``instantiate`` and OmegaConf's resolvers replaced by recorders:
    whatever a check lets through is recorded, never called."""

    def __init__(self, monkeypatch):
        import hydra._internal.instantiate._instantiate2 as inst2
        import hydra._internal.utils as hutils
        from omegaconf import OmegaConf

        import gan_cli.build

        self.located: list[str] = []
        self.instantiated: list[object] = []
        self.resolved: list[str] = []

        def locate(path: str):
            self.located.append(path)
            raise ImportError(f"intercepted: {path}")

        def instantiate(config, *args, **kwargs):
            self.instantiated.append(config)
            raise RuntimeError("intercepted instantiate")

        monkeypatch.setattr(hutils, "_locate", locate)
        monkeypatch.setattr(inst2, "_locate", locate)
        monkeypatch.setattr(gan_cli.build, "instantiate", instantiate)
        monkeypatch.setattr(gan_cli.build, "get_class", locate)
        for name in RESOLVERS[:7]:  # OmegaConf's own (oc.*)
            OmegaConf.clear_resolver(name)
            OmegaConf.register_new_resolver(name, self._resolver(name))

    def _resolver(self, name: str):
        def record(*args, **kwargs):
            self.resolved.append(name)
            return "intercepted"
        return record

    def assert_nothing_happened(self) -> None:
        from gan_cli.config import trusted_targets

        assert not self.resolved, self.resolved
        foreign = [p for p in self.located if p not in trusted_targets()]
        assert not foreign, foreign
        assert not self.instantiated, self.instantiated


@pytest.fixture
def intercepted():
    """Intercepted for one property test (all its examples); OmegaConf's resolvers restored after."""
    from omegaconf import OmegaConf
    from omegaconf.omegaconf import register_default_resolvers

    mp = pytest.MonkeyPatch()
    spy = Intercepted(mp)
    yield spy
    mp.undo()
    for name in RESOLVERS[:7]:
        OmegaConf.clear_resolver(name)
    register_default_resolvers()


def _place(config: dict, where: str, value: object) -> dict:
    config = copy.deepcopy(config)
    node = config
    *parents, last = where.split(".")
    for part in parents:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[last] = value
    return config


PLACES = ["model.stages", "model.schedule", "model.generator.hidden", "model.regularizers.x",
          "dataset.figure", "dataset.noise_std", "dataset._target_", "loss.n_critic", "optimizer.betas",
          "train.steps", "seed", "new_key", "dataset.extra", "model.generator._target_"]


@settings(max_examples=1200, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(where=st.sampled_from(PLACES + ["loss", "model.stages.dataset", "model.generator"]),
       evil=st.one_of(evil_nodes(), misplaced_builders()))
@pytest.mark.slow
def test_property_no_saved_config_calls_anything(saved_config, intercepted, where, evil):
    from gan_cli.build import build_data, build_stages
    from gan_cli.config import validate_saved_config
    from gan_cli.errors import UntrustedConfigError

    if where == "dataset._target_" or where == "model.generator._target_":
        evil = evil if isinstance(evil, str) else "os.system"  # a target: a name that must be refused
    if where in ("loss", "model.generator") and not isinstance(evil, dict):
        evil = {"_target_": "gan_cli.data.images.fashion_mnist", "root": "/tmp/x", "x": evil}
    config = _place(saved_config, where, evil)
    with pytest.raises(UntrustedConfigError) as refused:
        checked = validate_saved_config(config, "checkpoint crafted.pt")
        build_data(checked.dataset, batch_size=1, device="cpu", seed=0)  # never reached
        build_stages(checked.model)
    message = str(refused.value)
    assert "\n" not in message and len(message) < 1200, message[:2000]
    intercepted.assert_nothing_happened()


@settings(max_examples=400, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(evil=st.one_of(evil_nodes(), st.just(_deep(3000))))
@pytest.mark.slow
def test_property_build_refuses_what_escaped_validation(intercepted, evil):
    """The guard in build(): nodes that never went through validation (defence in depth)."""
    from gan_cli.build import build
    from gan_cli.config import check_saved_config
    from gan_cli.errors import UntrustedConfigError

    node = {"_target_": "gan_cli.data.toy.sine", "x": evil}
    with pytest.raises(UntrustedConfigError):
        check_saved_config({"dataset": node}, "a checkpoint")
    with pytest.raises(UntrustedConfigError) as refused:
        build(node, "dataset")
    assert "\n" not in str(refused.value)
    intercepted.assert_nothing_happened()


def test_build_resolves_a_nodes_interpolations_and_refuses_the_targets_they_make(monkeypatch,
                                                                                  tmp_path: Path):
    """A DictConfig (the composed config's route) is resolved first, with OmegaConf's real
    resolvers: the node oc.create makes is checked like any other, and nothing is located."""
    import hydra._internal.utils as hutils
    from omegaconf import OmegaConf

    from gan_cli.build import build
    from gan_cli.errors import UntrustedConfigError

    located: list[str] = []
    monkeypatch.setattr(hutils, "_locate", lambda path: located.append(path))
    marker = tmp_path / "pwned"
    for text in (open_for_writing(marker), "${oc.decode:'{_target_: os.system, command: x}'}",
                 "${oc.create:{a: [{_target_: pathlib.Path.touch}]}}"):
        node = OmegaConf.create({"_target_": "gan_cli.data.toy.sine", "x": text})
        with pytest.raises(UntrustedConfigError, match="not one of gan-cli's own builders"):
            build(node, "dataset")
    assert not located and not marker.exists()


LEGIT = ["tiny=toy", "loss=wgan_gp", "model=mlp", "dataset=ring8", "train.steps=6",
         "optimizer.lr_d=1e-4", "model.generator.hidden=[64,64]", "seed=3",
         "hardware.num_threads=1", "logger=none", "train.nonfinite=skip"]


@st.composite
def evil_overrides(draw) -> object:
    # Hydra strips spaces around a value: " gan_cli.data.toy.sine" is that trusted name there
    target = draw(st.sampled_from([t for t in EVIL_TARGETS if "toy.sine" not in t]))
    interp = draw(interpolations())
    group = draw(st.sampled_from(["model", "loss", "dataset", "experiment", "tiny", "optimizer"]))
    return draw(st.sampled_from([
        "--experimental-rerun=/tmp/config.pickle", "--config-dir=/tmp/evil", "-cd", "/tmp/evil",
        "--config-name=evil", "-cp", "--package=x", "--cfg=job", "--info", "--run", "-m",
        "--multirun", "--shell-completion", "-h", "--hydra-help", "--resolve",
        f"{group}=../../../tmp/evil", f"{group}=/tmp/evil", f"{group}=mlp/../../evil",
        f"{group}=evil", f"{group}=..", f"{group}=null", f"{group}=[mlp,dcgan]", f"{group}@_global_=mlp",
        f"{group}={{a: 1}}", f"++{group}=mlp", "hydra/launcher=parallel",
        f"hydra.callbacks.x._target_={target}", "hydra.searchpath=[file:///tmp]", "hydra.run.dir=/x",
        "~hydra", f"model.stages={interp}", f"train.steps={interp}", f"dataset.root='{interp}'",
        f'dataset.root="{interp}"', f"model.generator={{_target_: {target}}}",
        f"dataset._target_={target}", "dataset._args_=[1]", "model.stages._partial_=true",
        f"model.generator._target_={draw(st.sampled_from(MISPLACED))}", "dataset._target_=[a,b]",
        "dataset._target_={a: b}", "loss._target_=gan_cli.data.images.fashion_mnist",
        "train.nonexistent=1", "+train.new=1", "+model.regularizers.x=1", "model.__class__=x",
        "train.steps=1,2", "train.steps=range(1,3)", "train.steps=choice(1,2)",
        "dataset.root=glob(*)", "train.steps=[[1]]", f"metrics.names=[fd,{interp}]",
        "model.generator.hidden=[{a: 1}]", "x" * 5000, 5, None, ["tiny=toy"], {"a": "b"},
        "", "=1", "train.steps", "seed=1\n--experimental-rerun=/tmp/x",
        "train.steps=$\\{oc.env:HOME\\}", f"dataset.root=$\\{{oc.create:{_node_text(target, '')}\\}}",
        "metrics.names=[fd,$\\{oc.env:HOME\\}]", "metrics.names=extend_list(fd)", "train.steps=int(3)x",
    ]))


@settings(max_examples=800, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(before=st.lists(st.sampled_from(LEGIT), max_size=4), evil=evil_overrides(),
       after=st.lists(st.sampled_from(LEGIT), max_size=3))
@pytest.mark.slow
def test_property_no_stored_override_list_runs_anything(tmp_path_factory, intercepted, before, evil,
                                                        after):
    from gan_cli.errors import UntrustedConfigError
    from gan_cli.training.resume import expand_resume_dir

    run_dir = _run_dir_with(tmp_path_factory, [*before, evil, *after])
    with pytest.raises(UntrustedConfigError) as refused:
        expand_resume_dir([f"resume={run_dir}"])
    message = str(refused.value)
    assert "\n" not in message and len(message) < 1200, message[:2000]
    intercepted.assert_nothing_happened()


_RUN_DIRS: dict = {}


def _run_dir_with(tmp_path_factory, overrides: list) -> Path:
    """One run directory reused by every example: its overrides.yaml rewritten each time."""
    if "dir" not in _RUN_DIRS:
        _RUN_DIRS["dir"] = tmp_path_factory.mktemp("stored") / "run"
        (_RUN_DIRS["dir"] / ".hydra").mkdir(parents=True)
    (_RUN_DIRS["dir"] / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    return _RUN_DIRS["dir"]


def test_legitimate_stored_overrides_are_kept_and_written_anew(tmp_path: Path):
    from gan_cli.training.resume import expand_resume_dir

    run_dir = tmp_path / "run"
    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(
        ["tiny=toy", "model=mlp", "dataset.noise_std=0.5", "model.generator.hidden=[64, 64]",
         "logger=none", "train.nonfinite=skip", "resume=auto", "~experiment", "seed=3"]))
    argv = expand_resume_dir([f"resume={run_dir}", "seed=4"])
    assert argv == ["tiny=toy", "model=mlp", "dataset.noise_std=0.5", "model.generator.hidden=[64,64]",
                    "logger=none", "train.nonfinite='skip'", "~experiment", f"resume={run_dir}",
                    "seed=4", f"hydra.run.dir={run_dir.resolve()}"]


@pytest.mark.parametrize("config", [[1, 2], 7, "x", None, _deep(3000)], ids=["list", "int", "str",
                                                                            "none", "deep"])
def test_a_saved_config_that_is_not_a_config_is_refused_in_one_line(config):
    from gan_cli.config import check_saved_config, validate_saved_config
    from gan_cli.errors import UntrustedConfigError

    for check in (check_saved_config, validate_saved_config):
        with pytest.raises(UntrustedConfigError, match="refused") as refused:
            check(config, "checkpoint crafted.pt")
        assert "\n" not in str(refused.value) and len(str(refused.value)) < 600


# ---------------------------------------------------------------------------------------------
# A trusted builder in the wrong place (review of issue 26): refused like an untrusted one.


@pytest.mark.parametrize("where, node", [
    ("model.stages", {"_target_": "gan_cli.data.images.fashion_mnist", "root": "/tmp/victim",
                      "download": True}),
    ("loss", {"_target_": "gan_cli.data.images.fashion_mnist", "root": "/tmp/victim"}),
    ("model.generator._target_", "gan_cli.data.images.fashion_mnist"),
    ("model.stages", {"_target_": "gan_cli.models.stages.SinGANStages", "_recursive_": True}),
    ("model.regularizers.x", {"_target_": "gan_cli.rundir.RunDirGuard", "command": "train"}),
    ("optimizer._target_", "gan_cli.data.toy.sine"),
], ids=["dataset-as-stages", "dataset-as-loss", "dataset-as-G", "recursive-stages",
        "callback-as-regulariser", "dataset-as-optimizer"])
def test_a_trusted_builder_in_the_wrong_place_is_refused(saved_config, where, node):
    from gan_cli.config import validate_saved_config
    from gan_cli.errors import UntrustedConfigError

    with pytest.raises(UntrustedConfigError) as refused:
        validate_saved_config(_place(saved_config, where, node), "checkpoint crafted.pt")
    assert "\n" not in str(refused.value) and where.split(".")[0] in str(refused.value)


def test_the_saved_config_of_a_real_run_passes_the_role_check(saved_config):
    from gan_cli.config import validate_saved_config

    validate_saved_config(copy.deepcopy(saved_config), "checkpoint last.pt")


def test_a_checkpoint_cannot_make_gan_sample_unpack_into_its_stages_root(tmp_path: Path, toy_run: Path):
    """The reviewer's route: a data-set builder as model.stages, its root a directory of the
    file's choosing. Nothing is written there; one line, exit 1."""
    victim = tmp_path / "victim"
    victim.mkdir()

    def edit(config):
        config["model"]["stages"] = {"_target_": "gan_cli.data.images.fashion_mnist",
                                     "root": str(victim), "download": True}
    ckpt = crafted_checkpoint(toy_run, tmp_path, edit)
    proc = run_tool("sample", [f"ckpt={ckpt}", f"hydra.run.dir={tmp_path / 'out'}"], tmp_path)
    assert not any(victim.iterdir())
    assert_refused_in_one_line(proc, "model.stages._target_")


@pytest.mark.parametrize("stored", [
    ["model.generator._target_=gan_cli.data.images.fashion_mnist"],
    ["dataset._target_=[a,b]"], ["dataset._target_={a: b}"], ["dataset._target_=gan_cli.data.toy.sine"],
], ids=["role-swap", "list-target", "dict-target", "same-role"])
def test_a_stored_override_never_chooses_a_builder(tmp_path: Path, stored):
    from gan_cli.errors import UntrustedConfigError
    from gan_cli.training.resume import expand_resume_dir

    run_dir = tmp_path / "run"
    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(["tiny=toy", *stored]))
    with pytest.raises(UntrustedConfigError, match="_target_"):
        expand_resume_dir([f"resume={run_dir}"])


@pytest.mark.slow
def test_an_overrides_file_nested_past_the_parser_is_one_line(tmp_path: Path):
    from gan_cli.errors import UntrustedConfigError
    from gan_cli.training.resume import expand_resume_dir

    run_dir = tmp_path / "run"
    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / ".hydra" / "overrides.yaml").write_text("[" * 200_000)  # under the 1 MB cap
    with pytest.raises(UntrustedConfigError) as refused:
        expand_resume_dir([f"resume={run_dir}"])
    assert "\n" not in str(refused.value)


EXPERIMENTS = sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml"))
NEEDS_A_PATH = {"pix2pix_edges2shoes", "pix2pix_facades"}


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_shipped_experiments_saved_config_passes_the_checks(experiment):
    """The role check refuses nothing gan-cli itself saves: every experiment file (each model
    family: stages, schedules, regularisers, optimizers), composed and resolved as a checkpoint
    holds it, passes validate_saved_config."""
    from omegaconf import OmegaConf

    from gan_cli.config import validate_saved_config
    from tests.test_training_extensions import compose_train

    path = ["dataset.path=/data/pairs"] if experiment in NEEDS_A_PATH else []  # no default folder
    saved = OmegaConf.to_container(compose_train(f"experiment={experiment}", *path), resolve=True)
    validate_saved_config(saved, f"checkpoint of {experiment}")


def test_numeric_keys_are_data(tmp_path: Path):
    """ProGAN's per-side batch sizes are a dict with int keys: a saved config holding them is
    gan-cli's own and passes; build()'s guard takes them too (the full suite caught it)."""
    from omegaconf import OmegaConf

    from gan_cli.build import guarded
    from gan_cli.config import validate_saved_config
    from tests.test_training_extensions import compose_train

    cfg = compose_train("experiment=progan_celeba", "model.schedule.batch_sizes={4:16,8:16,16:8}")
    saved = OmegaConf.to_container(cfg, resolve=True)
    assert saved["model"]["schedule"]["batch_sizes"] == {4: 16, 8: 16, 16: 8}
    validate_saved_config(saved, "checkpoint last.pt")
    assert guarded(cfg.model.schedule, "model.schedule")["batch_sizes"][4] == 16


@pytest.mark.parametrize("experiment, where, old", [
    ("stylegan2_fashion_cpu", "model.regularizers.r1", "gan_cli.regularizers.R1"),
    ("stylegan2_fashion_cpu", "model.regularizers.path_length", "gan_cli.regularizers.PathLength"),
    ("progan_fashion_cpu", "model.regularizers.drift", "gan_cli.regularizers.Drift"),
    ("pix2pix_fashion", "model.regularizers.l1", "gan_cli.regularizers.L1Reconstruction"),
    ("singan_cpu", "model.regularizers.rec", "gan_cli.regularizers.SinGANReconstruction"),
    ("singan_cpu", "loss", "gan_cli.models.singan.SinGANWGANGP"),
])
def test_a_checkpoint_naming_a_renamed_builder_loads_and_rebuilds_the_same(tmp_path: Path, experiment,
                                                                            where, old):
    """Checkpoints written before the losses/ package name the regularisers gan_cli.regularizers.X
    and SinGAN's loss gan_cli.models.singan.SinGANWGANGP: read as their new names (as data, the
    table checkpoint.RENAMED_TARGETS), they pass the checks and build the same objects."""
    from omegaconf import OmegaConf

    from gan_cli.build import build_loss, build_regularizers
    from gan_cli.checkpoint import FORMAT, RENAMED_TARGETS
    from gan_cli.config import validate_saved_config
    from gan_cli.errors import UntrustedConfigError
    from tests.test_training_extensions import compose_train

    saved = OmegaConf.to_container(compose_train(f"experiment={experiment}"), resolve=True)
    old_config = copy.deepcopy(saved)
    node = old_config
    for key in where.split("."):
        node = node[key]
    assert RENAMED_TARGETS[old] == node["_target_"]
    node["_target_"] = old
    with pytest.raises(UntrustedConfigError, match="is not"):  # not a builder anywhere now
        validate_saved_config(copy.deepcopy(old_config), "checkpoint old.pt")
    torch.save({"format": FORMAT, "step": 0, "config": old_config}, tmp_path / "old.pt")
    loaded = load_checkpoint(tmp_path / "old.pt")["config"]
    assert loaded == saved
    checked, fresh = validate_saved_config(loaded, "checkpoint old.pt"), OmegaConf.create(saved)

    def built(cfg) -> list:
        return [build_loss(cfg.loss), *build_regularizers(cfg.loss, cfg.model)]

    for a, b in zip(built(checked), built(fresh), strict=True):
        assert type(a) is type(b) and vars(a).keys() == vars(b).keys()
        for key, value in vars(a).items():
            other = vars(b)[key]
            assert torch.equal(value, other) if isinstance(value, torch.Tensor) else value == other, key


def test_a_stylegan2_checkpoint_from_before_the_upsample_key_keeps_bilinear_upsampling(tmp_path: Path):
    """model.generator.upsample (issue 31) changed StyleGAN2's default network: a checkpoint whose
    config has no such key was trained with bilinear upsampling and is read so (ADDED_KEYS)."""
    from omegaconf import OmegaConf

    from gan_cli.checkpoint import FORMAT
    from gan_cli.config import validate_saved_config
    from tests.test_training_extensions import compose_train

    saved = OmegaConf.to_container(compose_train("model=stylegan2"), resolve=True)
    assert saved["model"]["generator"]["upsample"] == "transposed"  # today's default
    del saved["model"]["generator"]["upsample"]
    torch.save({"format": FORMAT, "step": 0, "config": saved}, tmp_path / "old.pt")
    loaded = validate_saved_config(load_checkpoint(tmp_path / "old.pt")["config"], "checkpoint old.pt")
    assert loaded.model.generator.upsample == "bilinear"


@pytest.mark.parametrize("experiment, where, value, key", [
    ("progan_celeba", ("model", "schedule"), -1, "training_kimg"),
    ("progan_celeba", ("model", "regularizers", "drift"), -0.5, "epsilon"),
    ("stylegan2_fashion_cpu", ("model", "regularizers", "path_length"), 0, "batch_shrink"),
    ("stylegan2_fashion_cpu", ("model", "regularizers", "r1"), 0, "interval"),
])
def test_a_saved_schedule_or_regulariser_gets_its_schemas_checks(experiment, where, value, key):
    """In a checkpoint these nodes are plain dicts (typed Any in the model schemas); since the
    constructors trust their arguments, the schema that names the node's builder checks them."""
    from omegaconf import OmegaConf

    from gan_cli.config import validate_saved_config
    from gan_cli.errors import UntrustedConfigError
    from tests.test_training_extensions import compose_train

    saved = OmegaConf.to_container(compose_train(f"experiment={experiment}"), resolve=True)
    node = saved
    for k in where:
        node = node[k]
    node[key] = value
    dotted = re.escape(".".join((*where, key)))
    with pytest.raises(UntrustedConfigError, match=rf"{dotted}={value}(\.0)?: must be"):
        validate_saved_config(saved, "checkpoint last.pt")


def test_a_regulariser_written_as_a_plain_dict_is_checked_at_composition():
    """Your own YAML or command line may write a regulariser as a dict: the schema of the builder it
    names checks it (the constructor no longer does)."""
    from gan_cli.config import validate
    from gan_cli.errors import ConfigError
    from tests.test_training_extensions import compose_train

    with pytest.raises(ConfigError, match=r"model.regularizers.r1.interval=-2: must be > 0"):
        validate(compose_train("tiny=toy", "+model.regularizers={r1: {_target_: gan_cli.losses.R1, "
                               "gamma: 1.0, interval: -2}}"))


def test_a_run_directorys_yaml_is_read_with_safe_loads_types_and_a_depth_limit():
    """gan_cli.rundir.load_yaml reads what yaml.safe_load reads (a saved config of every shipped
    experiment's kind, YAML 1.1 scalars included), and a file nested 100,000 deep is a YAMLError
    from libyaml's depth limit, where PyYAML's own scanner spends seconds before a RecursionError."""
    import yaml

    from gan_cli.rundir import load_yaml

    text = "\n".join(f"{e}: {{steps: 10, lr: 2.0e-4, on: yes, off: ~, tag: !!str 1, list: [1, .nan, x]}}"
                     for e in EXPERIMENTS)
    assert repr(load_yaml(text)) == repr(yaml.safe_load(text))
    with pytest.raises(yaml.YAMLError, match="nesting depth"):
        load_yaml("[" * 100_000)
