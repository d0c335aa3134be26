"""ProGAN, StyleGAN and StyleGAN2 through the real command line (issue 14): every preset composes
with the numbers its file cites and trains a few steps at tiny widths; figures follow the phase;
resume in the middle of a fade-in is bitwise exact; StyleGAN2's lazy R1 and path length run at
their intervals with the corrected learning rates and betas; gan-eval works on all three (psi in W
for the style generators, with their figures); a DataLoader-backed source refuses per-phase
batches with a configuration error.

The CLI runs shrink the presets the way a user would on the command line (TINY below): widths of
16, 8, 4 feature maps at 7, 14, 28 px, z and w of 16, 256 real images, and segments of 2 steps of 16
images (7 px: steps 0-1, fade-in to 14 px: 2-3, 14 px: 4-5, fade-in to 28 px: 6-7, 28 px: 8-).
"""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gan_cli.build import build_generator, build_schedule, generator_from_checkpoint, restore_phase
from gan_cli.checkpoint import load_checkpoint
from gan_cli.data.base import DataInfo
from gan_cli.errors import EXIT_CONFIG, ConfigError
from gan_cli.metrics.tracker import make_sampler
from gan_cli.models import stylegan2
from gan_cli.models.style_layers import channels_at
from gan_cli.seeding import derive_seed
from tests.conftest import read_metrics, run_cli
from tests.test_training_extensions import assert_same_checkpoint, compose_train

WIDTHS = ["model.generator.channel_base=112", "model.generator.channel_max=16",
          "model.discriminator.channel_base=112", "model.discriminator.channel_max=16", "model.z_dim=16"]
STYLE = ["model.generator.w_dim=16", "model.generator.mapping_layers=2"]
SEGMENTS = ["model.schedule.training_kimg=0.032", "model.schedule.transition_kimg=0.032"]
RUN = ["logger=none", "hardware.num_threads=1", "dataset.limit=256", "train.batch_size=16",
       "train.log_every_steps=1", "metrics.every_steps=0"]
TINY = {
    "progan_fashion_cpu": [*RUN, *WIDTHS, *SEGMENTS],
    "stylegan_fashion_cpu": [*RUN, *WIDTHS, *STYLE, *SEGMENTS],
    "stylegan2_fashion_cpu": [*RUN, *WIDTHS, *STYLE],
}


def run_eval(args: list[str], run_dir: Path) -> subprocess.CompletedProcess:
    """``gan-eval`` with ``args`` into ``run_dir``, in this process (tests/inprocess.py)."""
    return run_cli(args, run_dir, prog="gan-eval", in_process=True)


def train_preset(name: str, run_dir: Path, *extra: str) -> subprocess.CompletedProcess:
    proc = run_cli([f"experiment={name}", *TINY[name], *extra], run_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


# ---------------------------------------------------------------------------------------------
# The presets compose to the numbers their files cite.


def test_progan_celeba_is_the_papers_celeba_setting():
    cfg = compose_train("experiment=progan_celeba")
    schedule = build_schedule(cfg.model)
    assert schedule.resolutions == [4, 8, 16, 32, 64, 128]
    # fmap_base 2048 of the authors' code: 512, 512, 256, 128, 64, 32 feature maps
    assert [channels_at(r, cfg.model.generator.channel_base, cfg.model.generator.channel_max)
            for r in schedule.resolutions] == [512, 512, 256, 128, 64, 32]
    assert (schedule.training_kimg, schedule.transition_kimg) == (800, 800)
    assert set(schedule.batch_sizes.values()) == {16} and schedule.n_critic == 1
    assert cfg.train.steps * 16 / 1000 == 10_000  # total_kimg
    assert cfg.loss._target_.endswith("WGANGP") and cfg.loss.gp_lambda == 10
    assert cfg.model.regularizers.drift.epsilon == 0.001
    assert (cfg.optimizer.lr_g, cfg.optimizer.lr_d, list(cfg.optimizer.betas)) == (1e-3, 1e-3, [0.0, 0.99])
    # G_smoothing 0.999 per step of 16 images as a half-life: 0.5 ** (16 / (1000 h)) = 0.999
    assert 0.5 ** (16 / (1000 * cfg.ema.half_life_kimg)) == pytest.approx(0.999, abs=1e-6)
    assert cfg.ema.rampup is None and cfg.hardware.device == "cuda"
    assert cfg.dataset._target_.endswith("celeba") and cfg.dataset.resolution == 128


def test_stylegan2_cifar10_is_nvidias_cifar_configuration():
    cfg = compose_train("experiment=stylegan2_cifar10")
    m = cfg.model
    assert (m.generator.mapping_layers, m.generator.mixing_prob) == (2, 0.0)
    assert m.regularizers.path_length is None  # pl_weight = 0
    assert (m.regularizers.r1.gamma, m.regularizers.r1.interval) == (0.01, 16)
    assert (m.discriminator.mbstd_group_size, m.discriminator.architecture) == (32, "orig")
    assert m.generator.channel_base == m.discriminator.channel_base == 32768  # fmaps 1
    assert cfg.optimizer.lr_d == 0.0025 and cfg.optimizer.lr_g == pytest.approx(0.0025 * 4 / 5)
    assert (cfg.ema.half_life_kimg, cfg.ema.rampup) == (500, 0.05)
    assert cfg.train.batch_size == 64 and cfg.train.steps * 64 / 1000 == 100_000
    assert cfg.loss._target_.endswith("NonSaturating") and cfg.loss.r1_gamma == 0


@pytest.mark.parametrize("name", sorted(TINY))
def test_cpu_presets_grow_to_28_px_with_the_papers_optimizer(name):
    cfg = compose_train(f"experiment={name}")
    assert cfg.dataset._target_.endswith("fashion_mnist") and cfg.dataset.resolution == 28
    assert list(cfg.optimizer.betas) == [0.0, 0.99] and cfg.ema.half_life_kimg == 10
    G = build_generator(cfg.model, DataInfo((1, 28, 28), 10, True))
    assert G.resolutions == [7, 14, 28]
    if cfg.model.schedule is not None:
        assert build_schedule(cfg.model).resolutions == [7, 14, 28]


@pytest.mark.parametrize("override,key", [
    ("model.schedule.training_kimg=0", "model.schedule.training_kimg"),
    ("model.schedule.transition_kimg=-1", "model.schedule.transition_kimg"),
    ("model.regularizers.r1.interval=0", "model.regularizers.r1.interval"),
    ("model.regularizers.drift.epsilon=-0.1", "model.regularizers.drift.epsilon"),
])
def test_impossible_values_of_the_new_nodes_name_the_key(override, key):
    model = "stylegan" if "r1" in key else "progan"
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        compose_train(f"model={model}", override)


@pytest.mark.slow
def test_a_typo_in_the_schedule_is_a_configuration_error(tmp_path):
    proc = run_cli(["experiment=progan_fashion_cpu", "model.schedule.training_kimgg=5"], tmp_path / "r")
    assert proc.returncode == EXIT_CONFIG and "training_kimgg" in proc.stderr


# ---------------------------------------------------------------------------------------------
# Training through the command line.


def tiles(png: Path, side: int = 28, pad: int = 2) -> list[np.ndarray]:
    """The images of a sample grid (8 x 8 of side x side with ``pad`` pixels between)."""
    grid = np.asarray(Image.open(png).convert("L"), dtype=np.int16)
    step = side + pad
    return [grid[pad + r * step: pad + r * step + side, pad + c * step: pad + c * step + side]
            for r in range(8) for c in range(8)]


def block_constant(tile: np.ndarray, block: int) -> bool:
    """Every block x block square of the tile holds one value (an upsampled low-resolution image)."""
    blocks = tile.reshape(tile.shape[0] // block, block, tile.shape[1] // block, block)
    return bool((blocks == blocks[:, :1, :, :1]).all())


@pytest.mark.slow
def test_progan_preset_trains_through_every_phase_with_its_terms(tmp_path):
    run = tmp_path / "progan"
    train_preset("progan_fashion_cpu", run, "train.steps=10", "train.sample_every_steps=2",
                 "train.ckpt_every_steps=10")
    records = read_metrics(run)
    assert {"gp", "drift", "wasserstein"} <= records[0].keys()
    # kimg counts 16 real images per step (one critic step)
    assert [r["kimg"] for r in records] == pytest.approx([0.016 * s for s in range(1, 11)])
    # the figure after the 7 px segment (steps 0-1) is 7 px upsampled: 4 x 4 blocks; after the
    # 14 px segment (steps 4-5) 2 x 2 blocks; at 28 px the images have detail finer than 2 x 2
    assert all(block_constant(t, 4) for t in tiles(run / "samples" / "step_00000002.png"))
    fourteen = tiles(run / "samples" / "step_00000006.png")
    assert all(block_constant(t, 2) for t in fourteen) and not all(block_constant(t, 4) for t in fourteen)
    assert not all(block_constant(t, 2) for t in tiles(run / "samples" / "step_00000010.png"))
    ckpt = load_checkpoint(run / "checkpoints" / "last.pt")
    # Adam was reset when the 28 px segment began at step 8: 2 updates since
    assert {s["step"].item() for s in ckpt["opt_d"]["state"].values()} == {2}
    assert ckpt["opt_d"]["param_groups"][0]["lr"] == 1e-3  # no lazy regulariser: lr as given


@pytest.mark.slow
def test_stylegan2_lazy_r1_and_path_length_run_at_their_intervals(tmp_path):
    run = tmp_path / "sg2"
    train_preset("stylegan2_fashion_cpu", run, "train.steps=33", "train.sample_every_steps=100",
                 "train.ckpt_every_steps=100")
    records = read_metrics(run)  # one record per step (log_every_steps=1)
    # R1 every 16 D updates (one per step): the updates 0, 16, 32 = logged steps 1, 17, 33;
    # path length every 4 G updates: logged steps 1, 5, 9, ...
    assert [r["step"] for r in records if "r1" in r] == [1, 17, 33]
    assert [r["step"] for r in records if "pl_length" in r] == list(range(1, 34, 4))
    ckpt = load_checkpoint(run / "checkpoints" / "last.pt")
    (d_group,), (g_group,) = ckpt["opt_d"]["param_groups"], ckpt["opt_g"]["param_groups"]
    # lr * k / (k + 1) and betas ** (k / (k + 1)), k = 16 for D, 4 for G (Adam 2.5e-3, 0 / 0.99)
    assert d_group["lr"] == pytest.approx(2.5e-3 * 16 / 17)
    assert list(d_group["betas"]) == pytest.approx([0.0, 0.99 ** (16 / 17)])
    assert g_group["lr"] == pytest.approx(2.5e-3 * 4 / 5)
    assert list(g_group["betas"]) == pytest.approx([0.0, 0.99 ** 0.8])
    # the path length's moving average is checkpointed; w_avg moved away from 0 and G_ema has it
    assert ckpt["regularizers"]["PathLength"]["pl_mean"] > 0
    assert ckpt["G"]["mapping.w_avg"].abs().sum() > 0
    assert torch.equal(ckpt["G_ema"]["mapping.w_avg"], ckpt["G"]["mapping.w_avg"])


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(TINY))
def test_resume_in_the_middle_of_a_fade_in_is_bitwise_exact(tmp_path, name):
    """10 steps straight against 7 + 3 after a resume; step 7 is the second step of the fade-in to
    28 px (alpha 0.5) for the growing models, between lazy R1/path-length steps for StyleGAN2.
    The first half ends with a figure the straight run does not draw: StyleGAN's noise inputs in
    it must not consume the training's random stream."""
    straight, split = tmp_path / "straight", tmp_path / "split"
    common = ["train.sample_every_steps=100", "train.ckpt_every_steps=100"]
    train_preset(name, straight, "train.steps=10", *common)
    train_preset(name, split, "train.steps=7", *common)
    resumed = run_cli([f"experiment={name}", *TINY[name], "train.steps=10", *common,
                       f"resume={split}"], split)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    a = load_checkpoint(straight / "checkpoints" / "last.pt")
    b = load_checkpoint(split / "checkpoints" / "last.pt")
    assert a["step"] == b["step"] == 10
    assert_same_checkpoint(a, b)  # every tensor: G, D, G_ema, optimizers, RNG, data, pl_mean


def make_celeba(root: Path, count: int = 48) -> None:
    """A stand-in for CelebA in torchvision's layout: random 20 x 24 RGB JPEG-free PNGs."""
    folder = root / "celeba" / "img_align_celeba"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (24, 20, 3), dtype=np.uint8)).save(folder / f"{i:06d}.png")


CELEBA_TINY = ["hardware=cpu", "hardware.num_threads=1", "logger=none", "dataset.resolution=16",
               "dataset.num_workers=0", "model.z_dim=16", "model.generator.channel_base=64",
               "model.generator.channel_max=8", "model.discriminator.channel_base=64",
               "model.discriminator.channel_max=8", "model.schedule.training_kimg=0.032",
               "model.schedule.transition_kimg=0.032", "metrics.every_steps=0",
               "train.log_every_steps=2", "train.sample_every_steps=100", "train.ckpt_every_steps=100"]


@pytest.mark.slow
def test_progan_celeba_trains_from_a_dataloader_with_its_one_batch(tmp_path):
    make_celeba(tmp_path / "data")
    run = tmp_path / "run"
    proc = run_cli(["experiment=progan_celeba", f"dataset.root={tmp_path / 'data'}", *CELEBA_TINY,
                    "train.steps=12"], run)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ckpt = load_checkpoint(run / "checkpoints" / "last.pt")
    assert ckpt["data"]["kind"] == "loader" and ckpt["nimg"] == 12 * 16


@pytest.mark.slow
def test_a_dataloader_source_refuses_per_phase_batches(tmp_path):
    make_celeba(tmp_path / "data")
    proc = run_cli(["experiment=progan_celeba", f"dataset.root={tmp_path / 'data'}", *CELEBA_TINY,
                    "train.steps=12", "model.schedule.batch_sizes={4:16,8:16,16:8}"], tmp_path / "run")
    assert proc.returncode == EXIT_CONFIG
    assert "dataset.in_memory=true" in proc.stderr and "model.schedule.batch_sizes=16" in proc.stderr


@pytest.mark.slow
def test_stylegan2_cifar10_preset_trains_a_few_steps_on_cpu(tmp_path):
    """The CIFAR-10 preset's model, loss and regularisers (orig D, mbstd 32, no path length) on
    Fashion-MNIST resized to 32 px, since no package ships CIFAR-10."""
    run = tmp_path / "run"
    run_args = [a for a in RUN if not a.startswith("train.batch_size")]
    proc = run_cli(["experiment=stylegan2_cifar10", "hardware=cpu", "dataset=fashion_mnist",
                    "dataset.resolution=32", *run_args, "train.batch_size=32", "train.steps=3",
                    "train.sample_every_steps=100", "train.ckpt_every_steps=100", "model.z_dim=16",
                    "model.generator.w_dim=16", "model.generator.channel_base=128",
                    "model.generator.channel_max=16", "model.discriminator.channel_base=128",
                    "model.discriminator.channel_max=16"], run)
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = read_metrics(run)
    assert "r1" in records[0] and not any("pl_length" in r for r in records)
    ckpt = load_checkpoint(run / "checkpoints" / "last.pt")
    assert not any("skip" in k for k in ckpt["D"])  # architecture orig
    assert ckpt["opt_g"]["param_groups"][0]["lr"] == pytest.approx(0.002)  # no G regulariser


# ---------------------------------------------------------------------------------------------
# gan-eval on all three.


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(TINY))
def test_gan_eval_works_on_each_with_psi_for_the_style_generators(tmp_path, name):
    run = tmp_path / "run"
    # 7 steps: the checkpoint is in the fade-in to 28 px, which gan-eval must restore
    train_preset(name, run, "train.steps=7", "train.sample_every_steps=100")
    out = tmp_path / "eval"
    proc = run_eval([f"ckpt={run / 'checkpoints' / 'last.pt'}", "metrics=[fd_fashion]",
                     "num_samples=64", "num_real=256", "truncation=0.7", "sweep_columns=4"], out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((out / "metrics.json").read_text())
    assert math.isfinite(result["metrics"]["fd_fashion"]) and result["step"] == 7
    style = name != "progan_fashion_cpu"
    assert result["truncation_method"] == ("psi" if style else "resample")
    figures = {"style_mixing", "stochastic_variation", "psi_sweep"} if style else {"truncation_sweep"}
    for fig in figures:
        assert (out / f"{fig}.png").is_file() and result[fig].endswith(f"{fig}.png")
    assert ("psi 0.7 in W" in proc.stdout) == style
    # every tool (gan-eval, gan-sample) rebuilds a growing G in the phase it last trained in
    rebuilt = generator_from_checkpoint(run / "checkpoints" / "last.pt", device=torch.device("cpu"))
    if rebuilt.config.model.get("schedule") is not None:
        phase = build_schedule(rebuilt.config.model).phase(6)
        assert phase.alpha < 1  # the fade-in, not the phase G is built in
        grown = getattr(rebuilt.G, "synthesis", rebuilt.G)  # StyleGAN grows its synthesis network
        assert (grown.phase_resolution, grown.alpha) == (phase.resolution, phase.alpha)


# ---------------------------------------------------------------------------------------------
# In process: what gan-eval's sampler and phase restoration do.


def test_the_sampler_truncates_a_plain_generators_z():
    class ZRecorder(torch.nn.Module):  # a G without truncation_in_w: sees the truncated z
        num_classes = 0

        def forward(self, z, y=None):
            self.z = z
            return z[:, :1, None, None].expand(-1, 1, 8, 8)

    plain = ZRecorder()
    make_sampler(plain, 64, torch.device("cpu"), seed=3, batch_size=50, truncation=0.5)(50)
    assert plain.z.abs().max() <= 0.5 and plain.z.abs().max() > 0.4


def test_the_sampler_gives_psi_to_a_style_generator():
    calls = []

    class Style(torch.nn.Module):
        num_classes = 0
        truncation_in_w = True

        def forward(self, z, y=None, psi=1.0):
            calls.append((z.abs().max().item(), psi))
            return torch.zeros(z.shape[0], 1, 4, 4)

    make_sampler(Style(), 64, torch.device("cpu"), seed=0, batch_size=50, truncation=0.5)(50)
    (z_max, psi), = calls
    assert psi == 0.5 and z_max > 2  # z untruncated: 50 x 64 normals reach beyond 2
    # a real style generator: the sampler's images are G(z, psi=0.5) of its own untruncated
    # stream (noise strengths start at 0, so the noise draws do not matter)
    torch.manual_seed(0)
    G = stylegan2.Generator(z_dim=8, data_shape=(1, 8, 8), w_dim=8, mapping_layers=2,
                            channel_base=32, channel_max=8).eval()
    G.mapping.w_avg.normal_()  # a w_avg away from 0, as after training
    x = make_sampler(G, 8, torch.device("cpu"), seed=0, batch_size=4, truncation=0.5)(4)
    z = torch.randn(4, 8, generator=torch.Generator().manual_seed(derive_seed(0, "eval_z")))
    with torch.no_grad():
        torch.testing.assert_close(x, G(z, psi=0.5))
        assert (x - G(z)).abs().max() > 1e-3  # psi 0.5 pulled the images towards w_avg's


def test_restore_phase_puts_a_growing_generator_into_its_last_trained_phase():
    cfg = compose_train("experiment=progan_fashion_cpu", *WIDTHS, *SEGMENTS, "train.batch_size=16")
    G = build_generator(cfg.model, DataInfo((1, 28, 28), 0, True))
    schedule = build_schedule(cfg.model)
    for step, (side, alpha) in {1: (7, 1.0), 3: (14, 0.0), 4: (14, 0.5), 8: (28, 0.5), 9: (28, 1.0)}.items():
        restore_phase(G, cfg.model, step)  # the phase of step - 1, the last one trained
        assert (G.phase_resolution, G.alpha) == (side, alpha)
        assert (schedule.phase(step - 1).resolution, schedule.phase(step - 1).alpha) == (side, alpha)
    assert G(torch.randn(2, 16)).shape == (2, 1, 28, 28)
