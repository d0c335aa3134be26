"""Issue 30, sections 1 and 2: the commands' help and version, typos caught with or without ``+``,
the nearest option, gan-eval's positional checkpoint."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from gan_cli.config.schemas import SCHEMAS
from gan_cli.errors import EXIT_CONFIG, ConfigError
from gan_cli.help import field_docs, help_text, metric_names
from gan_cli.typos import check_added_keys, command_args, option_typo
from tests.conftest import REPO, SMALL, run_cli
from tests.inprocess import run_in_process


def test_train_help_lists_user_groups_with_descriptions_and_no_internal_ones(tmp_path):
    done = run_in_process("gan-train", ["--help"], tmp_path)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    for group in ("dataset", "model", "loss", "optimizer", "hardware", "logger", "experiment"):
        assert f"\n  {group} (default: " in out
    # an option with the first words of its file's comment
    assert "wgan_gp                 WGAN with gradient penalty (Gulrajani et al. 2017)" in out
    for internal in ("schema", "tiny", "tuned", "recipe", "schedule"):
        assert f"\n  {internal} (default" not in out
    assert "toy_mixture" not in out and "ring8_mlp" not in out
    assert "fd_fashion" in out  # the metric names
    assert not list(tmp_path.iterdir())  # help runs nothing: no run directory


def test_help_of_chosen_options_shows_their_keys_defaults_and_documentation():
    text = help_text("gan-train", "train", ["loss=wgan_gp", "model=mlp"])
    assert "loss.gp_lambda = 10.0    (float)\n      weight of the gradient penalty on interpolates" in text
    assert "loss.n_critic = 5" in text  # WGANGPConfig's own default over LossConfig's 1
    assert "model.generator.activation = relu" in text
    assert "relu | leaky_relu | tanh" in text
    # an option file's own value wins over the schema's default (conf/loss/ns_r1.yaml sets r1_gamma)
    ns_r1 = help_text("gan-train", "train", ["loss=ns_r1"])
    assert "loss.r1_gamma = 0.0 " not in ns_r1
    assert "did you mean 'loss=wgan_gp'" in help_text("gan-train", "train", ["loss=wgangp"]).lower()
    assert "train.steps = 5000" in help_text("gan-train", "train", ["train"])


def test_schema_comments_are_read_as_documentation():
    from gan_cli.config.loss import WGANGPConfig
    from gan_cli.config.train import TrainLoopConfig

    docs = field_docs(TrainLoopConfig)
    # a trailing comment with its indented continuation lines
    assert docs["batch_per_device"].startswith("each process's share, batch_size / world size; null = "
                                               "derived")
    assert docs["batch_per_device"].endswith("it must equal batch_size / world size")
    # a block comment above the field (not the continuation lines of the field before)
    assert docs["nonfinite"].startswith("A non-finite (NaN/inf) loss")
    assert docs["log_every_steps"] == "console, metrics.jsonl and W&B interval (generator steps)"
    # inherited from LossConfig; a field under a commented one shares its block
    assert docs_of(WGANGPConfig, "r2_gamma") == docs_of(WGANGPConfig, "r1_gamma") != ""


def docs_of(schema, key):
    return field_docs(schema)[key]


def test_eval_and_sample_help_list_their_own_keys_metric_names_and_modes():
    text = help_text("gan-eval", "eval", [])
    assert "num_samples = 10000" in text and "modes" in text and "loss (default" not in text
    assert "Metric names (metrics=[...]): " + ", ".join(metric_names()) in text
    sample = help_text("gan-sample", "sample", [])
    assert "Modes (mode=...): export, grid, interp, arithmetic, classes, mixing, psi" in sample
    assert "Metric names" not in sample and "dataset (default" not in sample


def test_metric_names_read_without_torch_match_the_registry():
    from gan_cli.metrics.registry import METRICS, check_names

    check_names(["fid"], "x")  # loads every definition
    assert metric_names() == sorted(METRICS)


def test_version_is_gan_clis_and_help_imports_nothing_heavy(tmp_path):
    done = run_in_process("gan-train", ["--version"], tmp_path)
    assert done.returncode == 0 and done.stdout.startswith("gan-cli ")
    # a new interpreter: what --help imports
    probe = ("import sys; sys.argv = ['gan-train', '--help']; from gan_cli.cli import train_main; "
             "train_main(); heavy = [m for m in ('torch', 'torchmetrics', 'wandb', 'matplotlib') "
             "if m in sys.modules]; assert not heavy, heavy")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr


@pytest.mark.slow
def test_an_added_key_with_a_typo_is_refused_with_did_you_mean(tmp_path):
    """`+trian.steps=1` used to train all the steps silently."""
    done = run_cli(["+trian.steps=1", "model=mlp", "dataset=ring8"], tmp_path / "run")
    assert done.returncode == EXIT_CONFIG, done.stderr
    assert "unknown key 'trian'. Did you mean 'train'?" in done.stderr
    done = run_cli([*SMALL, "++train.stpes=1"], tmp_path / "run2")
    assert done.returncode == EXIT_CONFIG
    assert "unknown key 'train.stpes'. Did you mean 'train.steps'?" in done.stderr


def compose_train(*overrides: str):
    """conf/train.yaml composed with ``overrides``, not validated."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from gan_cli.config import CONF_DIR, register_configs

    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="train", overrides=list(overrides))


def test_plus_stays_open_where_a_node_is_untyped():
    reg = "+model.regularizers={r1: {_target_: gan_cli.losses.R1, gamma: 1.0, interval: 2}}"
    cfg = compose_train("tiny=toy", reg, "+model.schedule._target_=x.Y")
    check_added_keys(cfg, [reg, "+model.schedule._target_=x.Y", "+hydra.job.env_set.A=1"])
    cfg = compose_train("tiny=toy", "+model.generator.hiden=[8]")
    with pytest.raises(ConfigError, match=r"unknown key 'model.generator.hiden'. Did you mean "
                                          r"'model.generator.hidden'\?"):
        check_added_keys(cfg, ["+model.generator.hiden=[8]"])


def test_an_option_typo_names_the_nearest_option(tmp_path):
    assert option_typo("loss", "wgangp").startswith("loss=wgangp: no such option. Did you mean "
                                                    "'loss=wgan_gp'?")
    assert option_typo("loss", "hinge") is None
    done = run_cli(["loss=wgangp"], tmp_path / "run")
    assert done.returncode == EXIT_CONFIG and "Did you mean 'loss=wgan_gp'?" in done.stderr


def test_eval_and_sample_arguments():
    assert command_args(["runs/a b/last.pt", "metrics=[modes]"], "gan-eval", "eval") == [
        "ckpt='runs/a b/last.pt'", "metrics=[modes]"]
    assert command_args(["-cn", "eval", "x.pt"], "gan-sample", "sample") == ["ckpt='x.pt'", "-cn", "eval"]
    assert command_args(["--info", "config", "x.pt"], "gan-eval", "eval") == [
        "ckpt='x.pt'", "--info", "config"]
    with pytest.raises(ConfigError, match="takes the model, loss, dataset and training settings from the "
                                          "checkpoint"):
        command_args(["ckpt=x.pt", "loss=hinge"], "gan-eval", "eval")
    with pytest.raises(ConfigError, match="given twice"):
        command_args(["x.pt", "ckpt=y.pt"], "gan-eval", "eval")
    assert "ema.half_life_kimg" not in SCHEMAS  # (ema is a training key: refused the same way)
    with pytest.raises(ConfigError, match="from the checkpoint"):
        command_args(["x.pt", "+ema.half_life_kimg=1"], "gan-sample", "sample")


@pytest.mark.slow
def test_gan_eval_takes_the_checkpoint_positionally(tmp_path, toy_run):
    run = toy_run  # gan-train tiny=toy
    done = run_in_process("gan-eval", [str(run / "checkpoints" / "last.pt"), "metrics=[modes]",
                                       f"hydra.run.dir={tmp_path / 'eval'}"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "eval" / "metrics.json").is_file()
    done = run_in_process("gan-eval", [str(run / "checkpoints" / "last.pt"), "loss=hinge"], tmp_path)
    assert done.returncode == EXIT_CONFIG and "from the checkpoint" in done.stderr


# Issue 30, section 8: a model that needs its own kind of data picks it when no dataset is named.

@pytest.mark.parametrize("model, dataset, target", [
    ("pix2pix", "fashion_edges", "gan_cli.data.paired.fashion_pairs"),
    ("singan", "single_image", "gan_cli.data.single_image.single_image"),
])
def test_a_model_alone_picks_its_own_dataset(model, dataset, target):
    from gan_cli.defaults import NOTES, model_dataset

    NOTES.clear()
    args = model_dataset([f"model={model}", "train.steps=2"])
    assert args == [f"model={model}", "train.steps=2", f"dataset={dataset}"]
    assert NOTES == [f"model={model} and no dataset named: training on its default dataset={dataset} "
                     f"(another: dataset=...)"]
    assert compose_train(*args).dataset._target_ == target


def test_a_named_dataset_or_a_model_without_a_default_is_left_alone():
    from gan_cli.defaults import NOTES, model_dataset

    NOTES.clear()
    for argv in (["model=pix2pix", "dataset=fashion_mnist"], ["model=pix2pix", "dataset.limit=8"],
                 ["model=pix2pix", "experiment=pix2pix_facades"], ["model=singan", "tiny=images"],
                 ["model=pix2pix,singan"], ["model=dcgan"], ["loss=hinge"], ["model=nosuch"]):
        assert model_dataset(argv) == argv
    assert NOTES == []


@pytest.mark.slow
def test_a_named_dataset_is_still_checked_against_the_model(tmp_path):
    done = run_cli(["model=pix2pix", "dataset=ring8", "logger=none"], tmp_path / "run")
    assert done.returncode == EXIT_CONFIG and "U-Net generator" in done.stderr  # nothing picked


# Issue 30, section 7: the Hydra plugins are extras; a config that needs a missing one says what to
# install.

def test_the_hydra_plugins_are_extras_that_make_install_installs():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert not [d for d in project["dependencies"] if d.startswith(("hydra-optuna", "hydra-joblib",
                                                                    "hydra-submitit"))]
    extras = project["optional-dependencies"]
    assert extras["sweeps"] == ["hydra-optuna-sweeper==1.3.0", "hydra-joblib-launcher==1.2.0"]
    assert extras["slurm"] == ["hydra-submitit-launcher==1.2.0"]
    assert extras["all"] == ["gan-cli[sweeps,slurm]"]
    assert "-e '.[dev,all]'" in (REPO / "Makefile").read_text()


def test_a_config_of_a_missing_plugin_says_which_extra_installs_it(monkeypatch):
    from hydra.errors import MissingConfigException

    from gan_cli import typos
    from gan_cli.cli import describe_config_error

    missing = MissingConfigException("In 'hparams_search/ring8_optuna': Could not find "
                                     "'hydra/sweeper/optuna'", "hydra/sweeper/optuna")
    # installed here: Hydra's own message stays (a mistyped name is no missing plugin)
    assert "pip install" not in describe_config_error(missing, ["hparams_search=ring8_optuna"])
    monkeypatch.setitem(typos.PLUGINS, "hydra/sweeper/optuna", ("sweeps", "hydra-optuna-sweeper", "gone"))
    assert describe_config_error(missing, ["hparams_search=ring8_optuna"]) == (
        "'hydra/sweeper/optuna' comes from Hydra's hydra-optuna-sweeper plugin, which is not installed: "
        "pip install 'gan-cli[sweeps]' (or gan-cli[all]; `make install` installs it)")
    assert typos.missing_plugin("hydra/launcher/submitit_slurm") is None  # installed here
    assert typos.missing_plugin("loss/wgangp") is None
