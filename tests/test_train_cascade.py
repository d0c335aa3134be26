"""LAPGAN and SinGAN end to end: their stages objects (gan_cli/models/stages.py), the presets, runs
through the command line (level by level, scale by scale), resume in the middle of a level or
scale (bitwise), gan-eval on both, SiFID as a metric and the cascades' figures.

The CLI runs take tens of seconds each (marked slow); they share two module fixtures: a straight
run of 6 steps (2 per level / scale, a checkpoint every 3 steps) and a run resumed from its
step-3 checkpoint, in the middle of the second stage.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import linalg

from gan_cli.build import build_stages, generator_from_checkpoint
from gan_cli.checkpoint import load_checkpoint
from gan_cli.data.base import Batch, DataInfo
from gan_cli.data.pyramids import resize_image, upsample
from gan_cli.data.single_image import single_image
from gan_cli.errors import ConfigError
from gan_cli.latents import Noise
from gan_cli.losses import SinGANReconstruction
from gan_cli.metrics.registry import compute_metrics
from gan_cli.metrics.sifid import FashionLowFeatures
from gan_cli.models import lapgan, singan
from gan_cli.models.stages import LAPGANStages, SinGANStages, even_steps
from tests.conftest import read_metrics, run_cli
from tests.test_eval_cli import HAS_FASHION, run_eval
from tests.test_training_extensions import assert_same_checkpoint, compose_train

SINGLE_IMAGE = {"_target_": "gan_cli.data.single_image.single_image", "path": None, "name": "rocket",
                "max_size": 64, "min_size": 25, "scale_factor": 0.75, "channels": 3}
ROCKET_64 = [(25, 37), (33, 49), (43, 64)]  # scale_sizes(427, 640, 25, 64, 0.75)

# ---------------------------------------------------------------------------------------------
# The stages objects, in process.


def test_even_steps_split_the_run_and_give_the_remainder_to_the_last_stage():
    assert even_steps(10, 3) == [3, 3, 4]
    assert even_steps(6, 3) == [2, 2, 2]
    assert even_steps(1, 3) == [0, 0, 1]
    assert even_steps(2400, 1) == [2400]


def test_lapgan_stages_train_the_coarsest_level_first_from_its_own_network_configs():
    stages = LAPGANStages(levels=3, z_dim=100)
    info = DataInfo((1, 28, 28), num_classes=10, bounded=True)
    assert stages.num_stages == 3 and stages.steps(2400) == [800, 800, 800]
    assert [stages.info(k, info) for k in range(3)] == [
        DataInfo((1, 7, 7), 10, True),      # I_K, a plain GAN of a bounded image
        DataInfo((1, 14, 14), 10, False),   # h_1: a difference of images, not bounded
        DataInfo((1, 28, 28), 10, False)]   # h_0
    assert stages.network_kwargs(0, info) == {}
    assert stages.network_kwargs(1, info) == stages.network_kwargs(2, info) == {
        "networks": ("level_generator", "level_discriminator")}
    with pytest.raises(ConfigError, match="model.levels=4"):  # 28 -> 14 -> 7 cannot halve again
        stages_4 = LAPGANStages(levels=4)
        stages_4.info(0, info)
    # each stage's batch is its level of the real pyramid
    x, labels = torch.rand(2, 1, 28, 28) * 2 - 1, torch.tensor([3, 5])
    coarse = stages.prepare(0, Batch(x, labels), [])
    assert coarse.x.shape == (2, 1, 7, 7) and coarse.y is labels
    fine = stages.prepare(2, Batch(x, labels), [])
    torch.testing.assert_close(fine.x + fine.y.image, x)  # h_0 + l_0 = I_0
    assert fine.y.labels is labels


def _lapgan_generators(num_classes: int = 10):
    torch.manual_seed(0)
    return [lapgan.CoarseGenerator(z_dim=4, data_shape=(1, 7, 7), num_classes=num_classes),
            lapgan.LevelGenerator(z_dim=4, data_shape=(1, 14, 14), num_classes=num_classes),
            lapgan.LevelGenerator(z_dim=4, data_shape=(1, 28, 28), num_classes=num_classes)]


def test_a_lapgan_cascade_in_training_keeps_each_levels_latent_and_its_frozen_levels_in_eval():
    stages = LAPGANStages(levels=3, z_dim=4)
    G2, G1, G0 = _lapgan_generators()
    one, two, full = stages.cascade([G2]), stages.cascade([G2, G1]), stages.cascade([G2, G1, G0])
    # every partial cascade takes the full latent [z_0, z_1, z_2]; the untrained levels' parts
    # are skipped, so the coarse image of one latent is the same at every stage
    assert one.z_dim == two.z_dim == full.z_dim == 12
    z, y = torch.randn(5, 12), torch.arange(5)
    for c in (one, two, full):
        c.eval()
    coarse = G2(z[:, 8:], y)
    torch.testing.assert_close(one(z, y), coarse)
    levels = two.levels(z, y)
    torch.testing.assert_close(levels[0][0], coarse)
    low = upsample(coarse)
    torch.testing.assert_close(levels[1][0], low + G1(z[:, 4:8], lapgan.LevelCondition(low, y)))
    assert full(z, y).shape == (5, 1, 28, 28)
    # train(True), as figures and metrics restore it, trains only the newest (finest) level
    two.train()
    assert G1.training and not G2.training
    two.eval()
    assert not G1.training


def test_singan_stages_count_the_scales_from_the_dataset_node():
    stages = SinGANStages(SINGLE_IMAGE)
    assert stages.sizes == ROCKET_64 and stages.num_stages == 3
    assert stages.steps(2500) == [833, 833, 834]
    finest = DataInfo((3, 43, 64), 0, True)
    assert [stages.info(k, finest).shape for k in range(3)] == [(3, 25, 37), (3, 33, 49), (3, 43, 64)]
    assert [stages.network_kwargs(k, finest) for k in range(3)] == [{"scale": 0}, {"scale": 1},
                                                                   {"scale": 2}]
    with pytest.raises(ConfigError, match="use dataset=single_image"):
        stages.info(0, DataInfo((1, 28, 28), 10, True))
    with pytest.raises(ConfigError, match="use dataset=single_image"):
        SinGANStages({"_target_": "gan_cli.data.images.fashion_mnist", "root": None})


class _Pair(SimpleNamespace):
    @property
    def G_sample(self):
        return self.G


def _singan_state(stages: SinGANStages):
    """The pieces of a TrainState that SinGANStages.begin touches: pairs, data, noise, step."""
    torch.manual_seed(0)
    pairs = []
    for k, (h, w) in enumerate(stages.sizes):
        G = singan.ScaleGenerator(data_shape=(3, h, w), scale=k)
        D = singan.ScaleDiscriminator(data_shape=(3, h, w), scale=k)
        pairs.append(_Pair(G=G, D=D, ema=None, regularizers=[SinGANReconstruction(alpha=10.0)]))
    data = single_image(max_size=64)
    noise = Noise(torch.Generator().manual_seed(0), None, torch.device("cpu"))
    return SimpleNamespace(pairs=pairs, data=data, noise=noise, step=0)


def test_singan_begin_copies_the_coarser_scale_and_sets_sigma_from_its_reconstruction():
    stages = SinGANStages(SINGLE_IMAGE)
    state = _singan_state(stages)
    stages.begin(0, state, fresh=True)
    p0, p1 = state.pairs[0], state.pairs[1]
    assert float(p0.G.noise_amp) == 1.0 and state.data.scale == 0
    assert state.noise.z_dim == 3 * 25 * 37
    with torch.no_grad():  # "train" scale 0: move its weights and BatchNorm statistics
        for t in list(p0.G.parameters()) + list(p0.D.parameters()) + list(p0.G.buffers()):
            if t.dtype.is_floating_point and t.dim() > 0 and t.shape != p0.G.z_rec.shape:
                t.add_(0.01 * torch.randn_like(t))
    stages.begin(1, state, fresh=True)
    assert state.data.scale == 1 and state.noise.z_dim == 3 * 33 * 49
    assert not p0.G.training and not any(p.requires_grad for p in p0.G.parameters())
    # scale 1 starts from scale 0's weights (same width, 32); its own z_rec and noise_amp stay
    for (name, a), (_, b) in zip(p0.G.state_dict().items(), p1.G.state_dict().items(), strict=True):
        if name not in ("noise_amp", "z_rec"):
            assert torch.equal(a, b), name
    assert all(torch.equal(a, b) for a, b in zip(p0.D.state_dict().values(), p1.D.state_dict().values(),
                                                  strict=True))
    assert torch.count_nonzero(p1.G.z_rec) == 0
    # sigma_1 = 0.1 * RMSE(up(x_rec_0), x_1), x_rec_0 = G_0(z*, 0) in eval mode
    with torch.no_grad():
        rec0 = p0.G(p0.G.z_rec, torch.zeros_like(p0.G.z_rec))
    up = resize_image(rec0, (33, 49))  # the pyramid's resize (tests/test_models_singan.py)
    x1 = state.data.image(1)
    expected = 0.1 * math.sqrt(float((up - x1).square().mean()))
    assert float(p1.G.noise_amp) == pytest.approx(expected, rel=1e-5)
    rec = p1.regularizers[0]
    torch.testing.assert_close(rec.y, up)
    assert torch.equal(rec.z, p1.G.z_rec)
    # re-entered by a resumed run: nothing recomputed or copied (the checkpoint holds it)
    with torch.no_grad():
        p1.G.noise_amp.fill_(0.5)
        next(p1.G.parameters()).add_(1.0)
    before = {k: v.clone() for k, v in p1.G.state_dict().items()}
    stages.begin(1, state, fresh=False)
    assert all(torch.equal(before[k], v) for k, v in p1.G.state_dict().items())


# ---------------------------------------------------------------------------------------------
# Metrics and figures, in process.


def _sifid_by_hand(features, real: torch.Tensor, fake: torch.Tensor) -> float:
    """||mu - mu~||^2 + Tr(S + S~ - 2 sqrtm(S S~)) with numpy and scipy, on positions as samples."""
    a = features(real)[0].flatten(1).T.double().numpy()
    b = features(fake)[0].flatten(1).T.double().numpy()
    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = linalg.sqrtm(s_a @ s_b).real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(s_a + s_b - 2 * root))


def test_sifid_is_the_mean_of_each_samples_sifid_against_the_training_image():
    data = single_image(max_size=64)
    real = data.image(2)  # 43 x 64, the finest scale
    g = torch.Generator().manual_seed(0)
    fakes = torch.stack([(real[0] + s * torch.randn(real[0].shape, generator=g)).clamp(-1, 1)
                         for s in (0.05, 0.1, 0.2, 0.4)])
    served = iter([fakes])
    values = compute_metrics(["sifid"], lambda n: next(served)[:n], None,
                             {"num_fake": 10000, "sifid": {"num_fake": 4}}, data=data)
    features = FashionLowFeatures()
    by_hand = [_sifid_by_hand(features, real, f[None]) for f in fakes]
    assert values["sifid"] == pytest.approx(np.mean(by_hand), rel=1e-6)
    assert values["sifid_std"] == pytest.approx(np.std(by_hand), rel=1e-5)
    assert by_hand == sorted(by_hand)  # more noise, further from the image


def test_sifid_draws_fifty_samples_by_default_and_needs_a_single_image():
    data = single_image(max_size=64)
    asked = []

    def sample(n):
        asked.append(n)
        return data.image(2).expand(n, -1, -1, -1)

    values = compute_metrics(["sifid"], sample, None, {"num_fake": 10000}, data=data)
    assert sum(asked) == 50
    assert values["sifid"] == pytest.approx(0.0, abs=1e-3)  # the image itself
    with pytest.raises(ConfigError, match="dataset=single_image"):
        compute_metrics(["sifid"], sample, None, {}, data=SimpleNamespace(name="fashion"))


def test_singan_figures_show_the_reconstruction_and_other_sizes(tmp_path: Path):
    data = single_image(max_size=64)
    torch.manual_seed(0)
    gens = [singan.ScaleGenerator(data_shape=(3, h, w), scale=k) for k, (h, w) in enumerate(ROCKET_64)]
    cascade = singan.SinGANCascade(gens).eval()
    values = compute_metrics(["singan_figures"], lambda n: None, None,
                             {"figure_dir": str(tmp_path)}, generator=cascade, data=data)
    with torch.no_grad():
        rec = cascade.reconstruct(2)
    assert values["singan_rec_rmse"] == pytest.approx(
        math.sqrt(float((rec - data.image(2)).square().mean())), rel=1e-6)
    # rows, each 2 px of padding around: real | reconstruction; 4 samples at 43x64; 2 samples
    # twice as wide (43x128); 4 samples half again as tall (64x64)
    width, height = Image.open(tmp_path / "singan_samples.png").size
    assert width == max(2 * 66 + 2, 4 * 66 + 2, 2 * 130 + 2, 4 * 66 + 2)
    assert height == (43 + 4) * 3 + (64 + 4)


def test_lapgan_levels_figure_has_a_row_per_class_and_two_columns_per_level(tmp_path: Path):
    cascade = LAPGANStages(levels=3, z_dim=4).cascade(_lapgan_generators()).eval()
    values = compute_metrics(["lapgan_levels"], lambda n: None, None,
                             {"figure_dir": str(tmp_path)}, generator=cascade)
    assert values == {}
    width, height = Image.open(tmp_path / "lapgan_levels.png").size
    assert (width, height) == (5 * 30 + 2, 10 * 30 + 2)  # I_2 | h_1 | I_1 | h_0 | I_0, 10 classes


# ---------------------------------------------------------------------------------------------
# Presets.


@pytest.mark.slow
def test_the_presets_compose_validate_and_hold_the_papers_numbers():
    cifar = compose_train("experiment=lapgan_cifar10")
    m = cifar.model
    assert (list(m.generator.hidden), list(m.discriminator.hidden)) == ([1200, 1200], [600, 600])
    assert m.discriminator.dropout == 0.5 and m.level_discriminator.dropout == 0.5
    assert m.level_generator.width == 128 and m.level_generator.depth == 3
    assert not m.level_discriminator.batch_norm and m.z_dim == 100
    assert cifar.optimizer._target_ == "torch.optim.SGD" and cifar.optimizer.lr_g == 0.02
    assert cifar.optimizer.momentum == 0.5 and cifar.train.batch_size == 128
    assert cifar.dataset._target_.endswith("cifar10") and cifar.hardware.device == "cuda"
    paper = compose_train("experiment=singan_paper")
    assert paper.dataset.max_size == 250 and paper.dataset.min_size == 25
    assert paper.dataset.scale_factor == 0.75 and paper.loss.gp_lambda == 0.1
    assert paper.model.regularizers.rec.alpha == 10 and paper.model.stages.noise_amp_init == 0.1
    assert paper.optimizer.lr_g == paper.optimizer.lr_d == 5e-4
    assert list(paper.optimizer.betas) == [0.5, 0.999]
    # 2,000 iterations of 3 + 3 updates on each of rocket's 8 scales at 250 px
    assert build_stages(paper.model).num_stages == 8
    assert paper.train.steps == 8 * 2000 * 3 and paper.loss.n_critic == 1
    cpu = compose_train("experiment=singan_cpu")
    assert build_stages(cpu.model).sizes == [(25, 38), (32, 47), (40, 60), (51, 76), (64, 96)]
    assert compose_train("experiment=lapgan_fashion").model.stages.levels == 3


# ---------------------------------------------------------------------------------------------
# Through the command line.

LAPGAN = ["experiment=lapgan_fashion", "logger=none", "hardware.num_threads=1", "dataset.limit=128",
          "train.steps=6", "train.batch_size=16", "train.log_every_steps=1",
          "train.sample_every_steps=2", "train.ckpt_every_steps=3", "train.keep_ckpts=10"]
SINGAN = ["experiment=singan_cpu", "logger=none", "hardware.num_threads=1", "dataset.max_size=64",
          "train.steps=6", "train.log_every_steps=1", "train.sample_every_steps=3",
          "train.ckpt_every_steps=3", "train.keep_ckpts=10"]


def _straight_and_resumed(base: list[str], root: Path) -> tuple[Path, Path]:
    straight, resumed = root / "straight", root / "resumed"
    proc = run_cli(base, straight, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # into a new directory from the step-3 checkpoint, in the middle of the second stage
    proc = run_cli([*base, f"resume={straight / 'checkpoints' / 'step_00000003.pt'}"], resumed,
                   timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return straight, resumed


@pytest.fixture(scope="module")
def lapgan_runs(tmp_path_factory) -> tuple[Path, Path]:
    if not HAS_FASHION:
        pytest.skip("needs Debian's dataset-fashion-mnist")
    return _straight_and_resumed(LAPGAN, tmp_path_factory.mktemp("lapgan"))


@pytest.fixture(scope="module")
def singan_runs(tmp_path_factory) -> tuple[Path, Path]:
    return _straight_and_resumed(SINGAN, tmp_path_factory.mktemp("singan"))


@pytest.mark.slow
def test_lapgan_trains_level_by_level_through_the_cli(lapgan_runs):
    run, _ = lapgan_runs
    end = load_checkpoint(run / "checkpoints" / "last.pt")
    mid = load_checkpoint(run / "checkpoints" / "step_00000003.pt")
    assert end["stage"] == 2 and len(end["stages"]) == 3 and mid["stage"] == 1
    G = [s["G"] for s in end["stages"]]
    # stage 0 the coarse MLP of 7x7 images, then the levels 14x14 and 28x28, class-conditional
    assert G[0]["net.4.weight"].shape == (7 * 7, 512) and G[0]["embed.weight"].shape == (10, 100)
    assert G[1]["noise.weight"].shape == (14 * 14, 100) and G[1]["embed.weight"].shape == (10, 196)
    assert G[2]["noise.weight"].shape == (28 * 28, 100)
    assert end["stages"][2]["D"]["embed.weight"].shape == (10, 784)
    # levels train one after another: level 2 is done (frozen) before step 3, level 0 untouched
    assert_same_checkpoint(mid["stages"][0], end["stages"][0])
    assert not mid["stages"][2]["opt_g"]["state"] and end["stages"][2]["opt_g"]["state"]
    # the figures come from the cascade of the levels trained so far: 7x7, 14x14, then 28x28
    # cells, 6 per row (64 samples: 6 per class)
    widths = [Image.open(run / "samples" / f"step_{s:08d}.png").size[0] for s in (2, 4, 6)]
    assert widths == [6 * (side + 2) + 2 for side in (7, 14, 28)]
    assert [r["step"] for r in read_metrics(run)] == [1, 2, 3, 4, 5, 6]


@pytest.mark.slow
def test_lapgan_resume_in_the_middle_of_a_level_is_exact(lapgan_runs):
    straight, resumed = lapgan_runs
    assert_same_checkpoint(load_checkpoint(resumed / "checkpoints" / "last.pt"),
                           load_checkpoint(straight / "checkpoints" / "last.pt"))


@pytest.mark.slow
def test_gan_eval_on_lapgan_prints_the_fashion_metrics_and_draws_the_levels(lapgan_runs, tmp_path):
    run, _ = lapgan_runs
    proc = run_eval([f"ckpt={run / 'checkpoints' / 'last.pt'}", "num_samples=200", "num_real=128",
                     "batch_size=100"], tmp_path / "eval", tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert {"fd_fashion", "cis_fashion_mean", "precision_fashion"} <= result["metrics"].keys()
    assert "fd_fashion" in proc.stdout
    width, height = Image.open(tmp_path / "eval" / "lapgan_levels.png").size
    assert (width, height) == (5 * 30 + 2, 10 * 30 + 2)
    # a checkpoint from the middle of the run samples the levels trained by then (14x14)
    mid = generator_from_checkpoint(run / "checkpoints" / "step_00000003.pt", device=torch.device("cpu"))
    assert mid.G.num_levels == 2 and mid.G(torch.randn(2, mid.G.z_dim), torch.arange(2)).shape[-1] == 14


@pytest.mark.slow
def test_singan_trains_scale_by_scale_through_the_cli(singan_runs):
    run, _ = singan_runs
    end = load_checkpoint(run / "checkpoints" / "last.pt")
    mid = load_checkpoint(run / "checkpoints" / "step_00000003.pt")
    assert len(end["stages"]) == 3 and end["stage"] == 2 and mid["stage"] == 1
    assert [tuple(s["G"]["z_rec"].shape[-2:]) for s in end["stages"]] == ROCKET_64
    # scale 0 is frozen once scale 1 starts, its BatchNorm statistics included, although a figure
    # was drawn in the middle of scale 1 (step 3) while scale 0 kept sampling its conditions
    assert_same_checkpoint(mid["stages"][0], end["stages"][0])
    # sigma_0 = 1; sigma_k = 0.1 * RMSE(up(x_rec_{k-1}), x_k), with the frozen coarser scales
    rebuilt = generator_from_checkpoint(run / "checkpoints" / "last.pt", device=torch.device("cpu"))
    cascade, data = rebuilt.G, rebuilt.data
    amps = [float(s["G"]["noise_amp"]) for s in end["stages"]]
    assert amps[0] == 1.0
    for k in (1, 2):
        with torch.no_grad():
            up = resize_image(cascade.reconstruct(k - 1), ROCKET_64[k])
        expected = 0.1 * math.sqrt(float((up - data.image(k)).square().mean()))
        assert amps[k] == pytest.approx(expected, rel=1e-5)
    records = read_metrics(run)
    assert all("rec_mse" in r and "gp" in r for r in records)
    assert [Image.open(run / "samples" / f"step_{s:08d}.png").size for s in (3, 6)] == [
        (3 * (49 + 2) + 2, 3 * (33 + 2) + 2), (3 * (64 + 2) + 2, 3 * (43 + 2) + 2)]


@pytest.mark.slow
def test_singan_resume_in_the_middle_of_a_scale_is_exact(singan_runs):
    straight, resumed = singan_runs
    assert_same_checkpoint(load_checkpoint(resumed / "checkpoints" / "last.pt"),
                           load_checkpoint(straight / "checkpoints" / "last.pt"))


@pytest.mark.slow
def test_gan_eval_on_singan_reports_sifid_and_draws_the_samples(singan_runs, tmp_path):
    run, _ = singan_runs
    proc = run_eval([f"ckpt={run / 'checkpoints' / 'last.pt'}", "sweep_columns=0"],
                    tmp_path / "eval", tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert {"sifid", "sifid_std", "singan_rec_rmse"} == result["metrics"].keys()
    assert result["provenance"]["sifid"]["num_fake"] == 50
    assert result["provenance"]["sifid"]["network"].startswith("fashion_cnn-")
    assert "sifid" in proc.stdout and (tmp_path / "eval" / "singan_samples.png").is_file()


@pytest.mark.slow
def test_singan_on_other_data_is_a_configuration_error(tmp_path: Path):
    proc = run_cli(["model=singan", "dataset=ring8", "logger=none", "train.steps=2"], tmp_path / "run")
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "use dataset=single_image" in proc.stderr
