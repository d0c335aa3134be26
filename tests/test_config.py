"""Config composition: every option of every group composes, validates and builds; bad
overrides end with exit status 2 and a message that names the key and the valid choices."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf

from gan_cli.build import build, build_loss, build_network, build_optimizers
from gan_cli.cli import CONF_DIR
from gan_cli.config import GROUPS, SCHEMAS, register_configs, validate
from gan_cli.data.base import Batch
from gan_cli.errors import ConfigError, DataNotFoundError
from tests.conftest import SMALL, run_cli

# datasets with no offline source on a fresh machine: building them must fail with a clear message
ONLINE_ONLY = {"mnist", "cifar10", "celeba", "lsun", "image_folder", "mnist_5k", "paired_folder"}
# models with a network per scale of one image, whose shapes (and latent sizes) the data set
PER_SCALE = {"singan"}
# models conditioned on an input image (paired data: no labels, input_channels from the data)
IMAGE_TO_IMAGE = {"pix2pix"}


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


def compose_cfg(overrides: list[str]):
    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides)
    if "path" in cfg.dataset.keys() and OmegaConf.is_missing(cfg.dataset, "path"):  # image_folder
        cfg.dataset.path = "/nonexistent/images"
    return cfg


def test_every_group_has_options_and_schemas():
    for group in GROUPS:
        assert options(group), group
    # every YAML option names a schema that exists
    for group in GROUPS:
        for name in options(group):
            text = (CONF_DIR / group / f"{name}.yaml").read_text()
            schema = text.split(f"/schema/{group}@_here_:")[1].split()[0]
            assert schema in SCHEMAS[group], (group, name)


@pytest.mark.parametrize("group,option", [(g, o) for g in GROUPS for o in options(g)])
def test_every_option_composes_validates_and_builds(group, option):
    cfg = compose_cfg([f"{group}={option}"])
    validate(cfg)
    assert OmegaConf.get_type(cfg[group]) is not dict  # typed by its schema
    if group == "dataset":
        try:
            data = build(cfg.dataset, "dataset", batch_size=8, device="cpu", seed=0)
        except DataNotFoundError as e:  # no offline source for it on this machine
            assert option in ONLINE_ONLY, (option, e)
            assert "tried" in str(e).lower() or "no images" in str(e).lower(), str(e)
            return
        batch = Batch.of(data.next())  # (x, y) or a Batch (paired data)
        assert batch.x.shape == (8, *data.info.shape)
    elif group == "loss":
        loss = build_loss(cfg.loss)  # the R1/R2 keys configure regularisers, built apart
        assert loss.n_critic == cfg.loss.n_critic
    elif group == "model" and option in PER_SCALE:
        # one network per scale, shaped by the image (no z_dim): build the coarsest scale's pair
        G = build_network(cfg.model.generator, "model.generator", data_shape=(3, 25, 25),
                          num_classes=10, bounded=True)
        D = build_network(cfg.model.discriminator, "model.discriminator", data_shape=(3, 25, 25),
                          num_classes=10, output="score")
        assert G.num_classes == D.num_classes == 0
        assert D(G(torch.randn(3, G.z_dim))).shape == (3,)
    elif group == "model" and option in IMAGE_TO_IMAGE:
        shape = (1, 16, 16)
        G = build_network(cfg.model.generator, "model.generator", z_dim=cfg.model.z_dim,
                          data_shape=shape, num_classes=0, bounded=True, input_channels=2)
        D = build_network(cfg.model.discriminator, "model.discriminator", data_shape=shape,
                          num_classes=0, output="score", input_channels=2,
                          receptive_field=16)  # the default 70 px needs at least 32 px
        y = torch.randn(3, 2, 16, 16)  # the input images
        assert D(G(torch.randn(3, cfg.model.z_dim), y), y).shape == (3 * D.patches,)
    elif group == "model":
        shape = (2,) if option == "mlp" else (1, 16, 16)
        G = build_network(cfg.model.generator, "model.generator", z_dim=cfg.model.z_dim,
                          data_shape=shape, num_classes=10, bounded=False)
        D = build_network(cfg.model.discriminator, "model.discriminator", data_shape=shape,
                          num_classes=10, output="score")
        assert G.num_classes == D.num_classes
        z, y = torch.randn(3, cfg.model.z_dim), torch.tensor([0, 1, 2])
        assert D(G(z, y), y).shape == (3,)
    elif group == "optimizer":
        G, D = torch.nn.Linear(2, 2), torch.nn.Linear(2, 1)
        opt_g, opt_d = build_optimizers(cfg.optimizer, G, D)
        assert opt_g.param_groups[0]["lr"] == cfg.optimizer.lr_g
        assert opt_d.param_groups[0]["lr"] == cfg.optimizer.lr_d
    elif group == "logger":
        assert hasattr(instantiate(cfg.logger), "log")


def test_paper_defaults_for_n_critic():
    n_critic = {o: compose_cfg([f"loss={o}"]).loss.n_critic for o in options("loss")}
    assert n_critic == {"began": 1, "dragan": 1, "fgan": 1, "hinge": 1, "lsgan": 1, "minimax": 1,
                        "mmd": 5, "ns": 1, "ns_r1": 1, "wgan": 5, "wgan_gp": 5,
                        "singan_wgan_gp": 3, "none": 1}


@pytest.mark.parametrize("override,key", [
    (["optimizer.lr_d=-1e-4"], "optimizer.lr_d"),
    (["train.batch_size=0"], "train.batch_size"),
    (["train.steps=-5"], "train.steps"),
    (["loss=wgan", "loss.clip_value=0"], "loss.clip_value"),
    (["loss=wgan_gp", "loss.n_critic=0"], "loss.n_critic"),
    (["dataset=ring8", "dataset.std=-0.1"], "dataset.std"),
    (["model=mlp", "model.generator.hidden=[]"], "model.generator.hidden"),
    (["hardware.precision=fp8"], "hardware.precision"),
    (["dataset=image_folder"], "dataset.path"),
    (["model=dcgan", "model.discriminator.conditioning=both"], "model.discriminator.conditioning"),
])
def test_impossible_values_are_config_errors_naming_the_key(override, key):
    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="train", overrides=override)
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        validate(cfg)


# --- through the real CLI ----------------------------------------------------------------------

BAD = [
    # (overrides, words the message must contain)
    (["loss=wgangp"], ["Could not find 'loss/wgangp'", "wgan_gp", "hinge", "began"]),
    (["dataset=ring9"], ["dataset/ring9", "ring8", "grid25", "sine", "swissroll"]),
    (["loss=wgan_gp", "loss.gp_lamda=5"], ["unknown key 'loss.gp_lamda'", "loss.gp_lambda",
                                           "gp_lambda", "n_critic"]),
    (["train.step=10"], ["unknown key 'train.step'", "train.steps"]),
    (["optimizer.lr_d=-1e-4"], ["optimizer.lr_d", "must be > 0"]),
    (["train.batch_size=0"], ["train.batch_size", "must be > 0"]),
    (["optimizer.lr_g=fast"], ["lr_g", "fast"]),
    (["hardware.device=tpu"], ["hardware.device", "cpu, cuda"]),
    (["los=ns"], ["unknown key 'los'", "loss"]),
]


@pytest.mark.parametrize("overrides,words", BAD, ids=[" ".join(b[0]) for b in BAD])
def test_bad_overrides_exit_2_with_one_clear_message(tmp_path: Path, overrides, words):
    proc = run_cli([*SMALL, *overrides], tmp_path / "run")
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    for word in words:
        assert word in proc.stderr, (word, proc.stderr)
    assert not (tmp_path / "run" / "checkpoints").exists()  # stopped before training


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_gpu_asked_for_and_absent_is_a_clear_error(tmp_path: Path):
    proc = run_cli([*SMALL, "hardware=gpu"], tmp_path / "run")
    assert proc.returncode == 2
    assert "no CUDA GPU" in proc.stderr and "hardware=cpu" in proc.stderr
    assert "Traceback" not in proc.stderr
