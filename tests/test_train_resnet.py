"""The ResNet family, EMA, truncation and the experiment configs through the real CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from PIL import Image

from gan_cli.build import build_generator, build_network
from gan_cli.checkpoint import load_checkpoint
from gan_cli.cli import CONF_DIR
from gan_cli.config import register_configs, validate
from tests.conftest import SMALL, assert_resumed_exactly, read_metrics, run_cli
from tests.inprocess import run_in_process

HAVE_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist").is_dir()
pytestmark = pytest.mark.skipif(not HAVE_FASHION_MNIST,
                                reason="needs Debian's dataset-fashion-mnist (make data)")

RESNETS = ("resnet", "sngan", "sagan", "biggan")
TINY = [  # narrow networks on 256 real Fashion-MNIST images
    *[a for a in SMALL if not a.startswith(("dataset=", "model="))],
    "dataset=fashion_mnist",
    "dataset.limit=256",
    "train.batch_size=16",
    "model.generator.width=8",
    "model.discriminator.width=8",
]
UNCONDITIONAL = ["model.generator.conditional=false", "model.discriminator.conditioning=none"]


def last(run_dir: Path) -> dict:
    return load_checkpoint(run_dir / "checkpoints" / "last.pt")


def run_ok(args: list[str], run_dir: Path) -> None:
    proc = run_cli(args, run_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.mark.parametrize("conditional", [True, False], ids=["conditional", "unconditional"])
@pytest.mark.parametrize("model", RESNETS)
@pytest.mark.slow
def test_resnet_models_train_through_the_cli(tmp_path: Path, model: str, conditional: bool):
    if model == "resnet" and conditional:
        cond = ["model.generator.conditional=true", "model.discriminator.conditioning=projection"]
    else:
        cond = [] if conditional else UNCONDITIONAL
    run_dir = tmp_path / "run"
    run_ok([*TINY, f"model={model}", *cond], run_dir)
    state = last(run_dir)
    assert state["step"] == 12
    assert [r["step"] for r in read_metrics(run_dir)] == [4, 8, 12]
    assert (run_dir / "samples" / "step_00000012.png").is_file()
    g_keys, d_keys = " ".join(state["G"]), " ".join(state["D"])
    assert any(k.startswith("embed.") for k in state["D"]) == conditional  # the projection head
    # the labels reach G: BigGAN's shared embedding, else a per-class BN gain table
    label_key = "shared." if model == "biggan" else ".gain."
    assert any(label_key in k for k in state["G"]) == conditional
    if model != "resnet":  # spectral norm in D (and G for sagan / biggan), with its u vectors
        assert "parametrizations.weight.original" in d_keys and "_u" in d_keys
    assert ("parametrizations" in g_keys) == (model in ("sagan", "biggan"))
    if conditional:  # one row per class in the sample figure: 10 rows of 28 px (+ padding)
        with Image.open(run_dir / "samples" / "step_00000012.png") as im:
            assert im.height == 10 * 30 + 2


@pytest.mark.slow
@pytest.mark.parametrize("res", [32, 64])
@pytest.mark.parametrize("model", RESNETS)
def test_resnet_models_train_at_32_and_64_px_in_rgb(tmp_path: Path, model: str, res: int):
    run_dir = tmp_path / "run"
    run_ok([*TINY, f"model={model}", f"dataset.resolution={res}", "dataset.channels=3",
            "train.steps=4", "train.log_every_steps=2"], run_dir)
    G = last(run_dir)["G"]
    out = [v for k, v in G.items() if k.startswith("out_conv") and v.dim() == 4]
    assert out and out[0].shape[0] == 3  # an RGB output layer


@pytest.mark.slow
def test_biggan_at_128_px(tmp_path: Path):
    """BigGAN at 128 px: the figure is a 2 x 2 grid of 128 px samples, the logged losses are
    finite, and G rebuilt from the checkpoint draws 128 x 128 images in [-1, 1] that are not
    flat, which D (rebuilt too) scores with finite numbers."""
    from gan_cli.build import build_discriminator, generator_from_checkpoint

    run_dir = tmp_path / "run"
    run_ok([*TINY, "model=biggan", "dataset.resolution=128", "dataset.limit=32",
            "train.batch_size=4", "train.steps=2", "train.log_every_steps=1",
            "train.figure_samples=4", *UNCONDITIONAL], run_dir)
    with Image.open(run_dir / "samples" / "step_00000002.png") as im:
        assert im.size == (2 * 130 + 2, 2 * 130 + 2)  # 2 x 2 tiles of 128 px, 2 px padding
    records = read_metrics(run_dir)
    assert [r["step"] for r in records] == [1, 2]
    assert all(math.isfinite(r[k]) for r in records for k in ("loss_d", "loss_g"))
    ckpt_path = run_dir / "checkpoints" / "last.pt"
    rebuilt = generator_from_checkpoint(ckpt_path, device=torch.device("cpu"), use_ema=False)
    assert rebuilt.config.dataset.resolution == 128
    with torch.no_grad():
        x = rebuilt.G(torch.randn(3, rebuilt.config.model.z_dim,
                                  generator=torch.Generator().manual_seed(0)))
    assert x.shape == (3, 1, 128, 128)
    assert x.min() >= -1 and x.max() <= 1 and x.std() > 1e-3
    D = build_discriminator(rebuilt.config.model, rebuilt.data.info, "score")
    D.load_state_dict(last(run_dir)["D"])
    with torch.no_grad():
        scores = D.eval()(x)
    assert scores.shape == (3,) and torch.isfinite(scores).all()


# ---------------------------------------------------------------------------------------------
# EMA and truncation, end to end


@pytest.mark.slow
def test_exact_resume_with_ema_and_spectral_norm(tmp_path: Path):
    """12 steps straight == 6 + resume + 6, bitwise in the whole checkpoint: G, D (with spectral
    norm's u, v), G_ema, the optimizers, every RNG, the data position."""
    straight, split = tmp_path / "straight", tmp_path / "split"
    base = [*TINY, "model=sngan", "loss=hinge", "ema.half_life_kimg=0.1",
            "train.ckpt_every_steps=6"]
    run_ok([*base, "train.steps=12"], straight)
    run_ok([*base, "train.steps=6"], split)
    run_ok([f"resume={split}", "train.steps=12"], split)
    a = assert_resumed_exactly(straight, split)  # every tensor and value, G_ema included
    assert any(k.endswith("_u") for k in a["D"])
    # the average differs from the last iterate
    assert any(not torch.equal(a["G"][k], a["G_ema"][k]) for k in a["G"])


@pytest.mark.slow
def test_ema_checkpoint_samples_and_gan_eval(tmp_path: Path):
    """The run keeps G_ema; gan-eval uses it by default, G with use_ema=false; truncation
    reaches the metrics and the sweep figure."""
    run_dir = tmp_path / "run"
    run_ok([*TINY, "model=biggan", "ema.half_life_kimg=0.1", "train.figure_truncation=0.5",
            *UNCONDITIONAL], run_dir)
    state = last(run_dir)
    assert state["G_ema"].keys() == state["G"].keys()

    def gan_eval(out: Path, *args: str) -> dict:  # in this process, its cache in tmp_path
        proc = run_in_process("gan-eval", [f"ckpt={run_dir / 'checkpoints' / 'last.pt'}",
                                           "metrics=[fd_fashion]", "num_samples=200", "num_real=200",
                                           f"hydra.run.dir={out}", *args],
                              tmp_path, {"GAN_CLI_CACHE": str(tmp_path / "cache")})
        assert proc.returncode == 0, proc.stderr[-3000:]
        return json.loads((out / "metrics.json").read_text()), proc.stdout

    ema, text = gan_eval(tmp_path / "e1", "truncation=0.5", "sweep_columns=6")
    assert ema["generator"] == "G_ema" and "[G_ema, truncation 0.5 (resample)]" in text
    assert ema["truncation"] == 0.5 and ema["truncation_method"] == "resample"
    with Image.open(tmp_path / "e1" / "truncation_sweep.png") as im:
        # one untruncated row + the 5 default thresholds, 6 columns of 28 px with 2 px padding
        assert (im.width, im.height) == (6 * 30 + 2, 6 * 30 + 2)
    raw, text = gan_eval(tmp_path / "e2", "use_ema=false", "sweep_columns=0")
    assert raw["generator"] == "G" and raw["truncation"] is None
    assert not (tmp_path / "e2" / "truncation_sweep.png").exists()
    assert raw["metrics"]["fd_fashion"] != ema["metrics"]["fd_fashion"]


@pytest.mark.slow
def test_linear_lr_decay_is_logged_and_reaches_zero(tmp_path: Path):
    run_dir = tmp_path / "run"
    run_ok([*TINY, "model=dcgan", "optimizer.lr_decay=linear", "optimizer.lr_g=1e-3"], run_dir)
    records = read_metrics(run_dir)
    # the update of step s (1-based) used lr * (1 - (s - 1) / steps)
    assert [r["lr_g"] for r in records] == pytest.approx([1e-3 * (1 - (s - 1) / 12)
                                                          for s in (4, 8, 12)])
    assert records[-1]["lr_d"] == pytest.approx(2e-4 / 12)


# ---------------------------------------------------------------------------------------------
# The papers' settings


# the CIFAR-10 settings (other experiment files, e.g. pix2pix's, are tested with their models)
# (a cascade's preset, one pair per level, is checked with its model: tests/test_train_cascade.py)
EXPERIMENTS = sorted(p.stem for p in (CONF_DIR / "experiment").glob("*_cifar10.yaml")
                     if p.stem != "lapgan_cifar10")


def test_there_is_an_experiment_config_per_architecture():
    assert set(EXPERIMENTS) >= {"resnet_wgan_gp_cifar10", "sngan_cifar10", "sagan_cifar10",
                                "biggan_cifar10"}


@pytest.mark.parametrize("name", EXPERIMENTS)
@pytest.mark.slow
def test_experiment_configs_compose_validate_and_build(name: str):
    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="train", overrides=[f"experiment={name}"])
    validate(cfg)
    assert cfg.dataset._target_.endswith("cifar10") and cfg.hardware.device == "cuda"
    assert cfg.train.batch_size == 64 and cfg.train.steps >= 50_000

    class Info:  # CIFAR-10's shape facts, without the data
        shape, num_classes, bounded = (3, 32, 32), 10, True

    G = build_generator(cfg.model, Info)
    D = build_network(cfg.model.discriminator, "model.discriminator", data_shape=Info.shape,
                      num_classes=10, output="score")
    z, y = torch.randn(2, cfg.model.z_dim), torch.tensor([1, 2])
    yg = y if G.num_classes else None
    assert D(G(z, yg), y if D.num_classes else None).shape == (2,)
    expected = {  # (loss, n_critic, betas, lr_decay) from the papers' code, see the YAML comments
        "resnet_wgan_gp_cifar10": ("WGANGP", 5, [0.0, 0.9], "linear"),
        "sngan_cifar10": ("Hinge", 5, [0.0, 0.9], "linear"),
        "sagan_cifar10": ("Hinge", 5, [0.5, 0.999], "none"),
        "biggan_cifar10": ("Hinge", 5, [0.5, 0.999], "none"),
    }.get(name)
    if expected:
        loss, n_critic, betas, decay = expected
        assert cfg.loss._target_.endswith(loss) and cfg.loss.n_critic == n_critic
        assert list(cfg.optimizer.betas) == betas and cfg.optimizer.lr_decay == decay
    if name == "biggan_cifar10":
        assert G.hierarchical_z and G.shared is not None and cfg.ema.half_life_kimg > 0
