"""pix2pix end to end: the CPU preset trains through gan-train with input | output | target figures
and held-out metrics, a resume in the middle of an epoch is bitwise exact, gan-eval prints the
paired metrics of a checkpoint, the L1-only ablation (loss=none) leaves D untouched, a folder's
input channels reach G and D, and the metric records against values computed here by hand (and
with numpy / scipy) on fixed tensors."""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import linalg, ndimage

from gan_cli.checkpoint import load_checkpoint
from gan_cli.data.base import Batch
from gan_cli.data.idx import DEBIAN_FASHION_MNIST, read_idx
from gan_cli.losses import NoAdversarial
from gan_cli.metrics.feature_net import load_fashion_cnn
from gan_cli.metrics.registry import compute_metrics
from tests.conftest import REPO, read_metrics, run_cli
from tests.test_training_extensions import assert_same_checkpoint

HAS_FASHION = DEBIAN_FASHION_MNIST.is_dir()
needs_fashion = pytest.mark.skipif(not HAS_FASHION, reason="needs Debian's dataset-fashion-mnist")

# The CPU preset, shrunk to seconds: 80 training pairs, batch 16 (5 batches an epoch), widths 4.
TINY = ["experiment=pix2pix_fashion", "logger=none", "dataset.limit=80", "train.batch_size=16",
        "model.generator.width=4", "model.discriminator.width=4", "train.log_every_steps=1"]


def run_eval(args: list[str], run_dir: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    """``gan-eval`` with ``args`` into ``run_dir``, in this process (tests/inprocess.py)."""
    return run_cli(args, run_dir, prog="gan-eval", cwd=tmp_path, in_process=True,
                   env={"GAN_CLI_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"})


def tile(png: np.ndarray, index: int, per_row: int, side: int = 32, pad: int = 2) -> np.ndarray:
    """Image ``index`` of a torchvision grid (``per_row`` images a row, ``pad`` px around each)."""
    r, c = divmod(index, per_row)
    top, left = pad + r * (side + pad), pad + c * (side + pad)
    return png[top:top + side, left:left + side]


# ---------------------------------------------------------------------------------------------
# The presets: each number as its YAML comment says.


def compose_preset(*overrides: str):
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from gan_cli.cli import CONF_DIR
    from gan_cli.config import register_configs, validate

    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="train", overrides=list(overrides))
    validate(cfg)
    return cfg


@pytest.mark.parametrize("name,task,res,batch,steps,rf,width,norm,direction,held_out", [
    ("pix2pix_fashion", "edges", 32, 64, 2000, 34, 16, "batch", None, None),
    ("pix2pix_facades", None, 256, 1, 80_000, 70, 64, "instance", "BtoA", "test"),
    ("pix2pix_edges2shoes", None, 256, 4, 186_840, 70, 64, "batch", "AtoB", "val"),
])
@pytest.mark.slow
def test_the_presets_compose_validate_and_build(name, task, res, batch, steps, rf, width, norm,
                                                direction, held_out):
    from gan_cli.build import build_discriminator, build_generator
    from gan_cli.data.paired import PairedDataInfo

    folder = [] if task else ["dataset.path=/data/pairs"]  # the user's folder of the dataset
    cfg = compose_preset(f"experiment={name}", *folder)
    m, opt = cfg.model, cfg.optimizer
    assert cfg.loss._target_.endswith("NonSaturating") and cfg.loss.n_critic == 1
    assert m.regularizers.l1.weight == 100.0 and m.generator.dropout == 0.5
    assert opt.lr_g == opt.lr_d == 2e-4 and list(opt.betas) == [0.5, 0.999]
    assert (cfg.train.batch_size, cfg.train.steps) == (batch, steps)
    assert (m.discriminator.receptive_field, m.generator.width, m.generator.norm) == (rf, width, norm)
    assert cfg.dataset.resolution == res
    if task is not None:
        assert cfg.dataset.task == task and cfg.hardware.device == "cpu"
    else:
        assert cfg.dataset.direction == direction and cfg.dataset.held_out_split == held_out
        assert cfg.hardware.device == "cuda"
    channels = 1 if task else 3
    info = PairedDataInfo(shape=(channels, res, res), bounded=True, input_shape=(channels, res, res))
    G, D = build_generator(m, info), build_discriminator(m, info, "score")
    assert G.depth == round(math.log2(res)) and D.receptive_field == rf  # the U-Net down to 1x1
    y = torch.zeros(1, channels, res, res)
    assert D(G(torch.zeros(1, m.z_dim), y), y).shape == (D.patches,)
    # the L1-only ablation is the same preset with loss=none
    ablation = compose_preset(f"experiment={name}", "loss=none", *folder)
    assert ablation.loss._target_.endswith("NoAdversarial")


# ---------------------------------------------------------------------------------------------
# The preset through gan-train, and gan-eval on its checkpoint.


@pytest.fixture(scope="module")
def preset_run(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("pix2pix") / "run"
    proc = run_cli([*TINY, "train.steps=4", "train.sample_every_steps=4", "train.ckpt_every_steps=4",
                    "metrics.every_steps=2", "metrics.num_samples=64"], run_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return run_dir


@needs_fashion
@pytest.mark.slow
def test_the_preset_trains_with_input_output_target_figures_and_held_out_metrics(preset_run: Path):
    records = read_metrics(preset_run)
    assert [r["step"] for r in records] == [1, 2, 3, 4]
    assert all(r["l1"] > 0 and "loss_d" in r for r in records)  # the L1 term trains G
    evals = [r for r in records if "paired_l1" in r]
    assert [r["step"] for r in evals] == [2, 4]  # metrics.every_steps=2
    for r in evals:
        assert 0 < r["paired_l1"] <= 2 and 0 <= r["paired_fd_fashion"]
        assert 0 < r["paired_psnr_db"] < 60 and -1 <= r["paired_ssim"] <= 1
        assert r["best/paired_l1"] == min(e["paired_l1"] for e in evals if e["step"] <= r["step"])
    ckpt = load_checkpoint(preset_run / "checkpoints" / "last.pt")
    assert ckpt["G"]["down.0.0.weight"].shape[1] == 1  # G's first conv takes the 1-channel input
    assert ckpt["D"]["net.0.weight"].shape[1] == 2  # D's takes (input, image) channels

    # The figure: 24 triples input | output | target, 3 a row (9 tiles), from the first training
    # pairs. Pair 0's input is the edge map of the first Fashion-MNIST training item, computed
    # here with scipy from the IDX file: 1 where the Sobel magnitude / 4 exceeds 0.25.
    png = np.asarray(Image.open(preset_run / "samples" / "step_00000004.png"))[..., 0]
    assert png.shape == (2 + 8 * 34, 2 + 9 * 34)  # 8 rows of 9 tiles of 32 px, padding 2
    item = np.pad(read_idx(sorted(DEBIAN_FASHION_MNIST.glob("train-images*"))[0])[0], 2)
    u = item.astype(np.float64) / 255.0
    gx = ndimage.correlate(u, np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], float), mode="constant")
    gy = ndimage.correlate(u, np.array([[-1, -2, -1], [0, 0, 0], [1, 2, 1]], float), mode="constant")
    edges = (np.hypot(gx, gy) / 4 > 0.25).astype(np.uint8) * 255
    np.testing.assert_array_equal(tile(png, 0, 9), edges)  # input
    np.testing.assert_array_equal(tile(png, 2, 9), item)  # target
    output = tile(png, 1, 9)
    assert not np.array_equal(output, edges) and not np.array_equal(output, item)


@needs_fashion
@pytest.mark.slow
def test_gan_eval_prints_the_paired_metrics_of_a_pix2pix_checkpoint(preset_run: Path, tmp_path: Path):
    proc = run_eval([f"ckpt={preset_run / 'checkpoints' / 'last.pt'}", "num_samples=300"],
                    tmp_path / "eval", tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for key in ("paired_l1", "paired_psnr_db", "paired_ssim", "paired_fd_fashion"):
        assert key in proc.stdout, proc.stdout
    assert "300 pairs of Fashion-MNIST edges (test)" in proc.stdout  # the held-out split
    result = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    values = result["metrics"]
    assert set(values) == {"paired_l1", "paired_psnr_db", "paired_ssim", "paired_fd_fashion"}
    assert result["step"] == 4
    assert "truncation_sweep" not in result  # latents mean nothing to an image-to-image G
    # the same numbers as training's evaluation code computes them (fixed seed, forked RNG)
    from gan_cli.build import generator_from_checkpoint

    rebuilt = generator_from_checkpoint(preset_run / "checkpoints" / "last.pt", device=torch.device("cpu"))
    again = compute_metrics(["paired", "paired_fd"], None, None,
                            {"num_fake": 300, "paired_fd": {"features": "fashion"}},
                            generator=rebuilt.G, data=rebuilt.data)
    assert again == pytest.approx(values, rel=1e-6)


# ---------------------------------------------------------------------------------------------
# Exact resume in the middle of an epoch.


@needs_fashion
@pytest.mark.slow
def test_resume_in_the_middle_of_an_epoch_is_bitwise_exact(tmp_path: Path):
    args = [*TINY, "train.steps=12", "train.sample_every_steps=6", "train.ckpt_every_steps=6",
            "metrics.every_steps=3", "metrics.num_samples=32"]
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert run_cli(args, straight).returncode == 0
    first = run_cli([*args, "train.steps=6"], split)
    assert first.returncode == 0, first.stderr[-3000:]
    half = load_checkpoint(split / "checkpoints" / "last.pt")
    assert half["step"] == 6 and half["data"]["epoch"] == 1
    assert 0 < half["data"]["position"] < 80  # 6 batches of 16 from 5 an epoch: 1 into epoch 1
    second = run_cli([*args, f"resume={split}"], split)
    assert second.returncode == 0, second.stderr[-3000:]
    a = load_checkpoint(straight / "checkpoints" / "last.pt")
    b = load_checkpoint(split / "checkpoints" / "last.pt")
    assert a["step"] == b["step"] == 12
    assert_same_checkpoint(a, b)  # G, D, optimizers, data order, RNG, the metrics' best values
    assert [r["paired_l1"] for r in read_metrics(straight) if "paired_l1" in r] == \
        [r["paired_l1"] for r in read_metrics(split) if "paired_l1" in r]


# ---------------------------------------------------------------------------------------------
# The L1-only ablation: loss=none.


def test_no_adversarial_loss_is_zero_and_never_calls_D():
    def D(x, y=None):
        raise AssertionError("D must not be called")

    loss = NoAdversarial()
    real = torch.randn(4, 1, 8, 8)
    loss_d, stats = loss.d_loss(D, real, torch.randn(4, 1, 8, 8))
    assert loss_d.item() == 0 and stats["loss_d"].item() == 0
    loss_d.backward()  # a leaf: backward works and reaches no network
    fake = (-1 - torch.rand(4, 1, 8, 8)).requires_grad_()  # a negative sum
    loss_g, stats = loss.g_loss(D, fake)
    loss_g.backward()
    assert loss_g.item() == 0 and torch.equal(fake.grad, torch.zeros_like(fake))
    assert math.copysign(1.0, loss_g.item()) == 1.0  # logged as 0, not -0


@needs_fashion
@pytest.mark.slow
def test_the_l1_only_ablation_trains_g_and_leaves_d_at_its_init(tmp_path: Path):
    run_dir = tmp_path / "run"
    proc = run_cli([*TINY, "loss=none", "dataset=fashion_silhouette", "train.steps=2",
                    "train.ckpt_every_steps=1", "train.sample_every_steps=2", "metrics.every_steps=0"],
                   run_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    one = load_checkpoint(run_dir / "checkpoints" / "step_00000001.pt")
    two = load_checkpoint(run_dir / "checkpoints" / "step_00000002.pt")
    assert two["config"]["dataset"]["task"] == "silhouette"
    assert_same_checkpoint(one["D"], two["D"])  # never called, never stepped
    assert two["opt_d"]["state"] == {}
    assert not torch.equal(one["G"]["down.0.0.weight"], two["G"]["down.0.0.weight"])
    records = read_metrics(run_dir)
    assert all(r["loss_g"] == 0 and r["loss_d"] == 0 and r["l1"] > 0 for r in records)


# ---------------------------------------------------------------------------------------------
# A folder of pairs whose input has other channels than its target.


@pytest.mark.slow
def test_a_folder_with_gray_inputs_and_colour_targets_trains_and_is_judged_on_its_val_split(
        tmp_path: Path):
    rng = np.random.default_rng(0)
    for split, count in (("train", 8), ("val", 4)):
        for folder, shape in (("A", (32, 32)), ("B", (32, 32, 3))):
            (tmp_path / "data" / split / folder).mkdir(parents=True)
            for i in range(count):
                pixels = rng.integers(0, 256, shape, dtype=np.uint8)
                Image.fromarray(pixels).save(tmp_path / "data" / split / folder / f"{i}.png")
    run_dir = tmp_path / "run"
    proc = run_cli(["tiny=toy", "model=pix2pix", "dataset=paired_folder",
                    f"dataset.path={tmp_path / 'data'}", "dataset.split=train",
                    "dataset.layout=two_folders", "dataset.channels=3", "dataset.input_channels=1",
                    "dataset.resolution=32", "dataset.held_out_split=val", "train.batch_size=4",
                    "train.steps=2", "model.generator.width=4", "model.discriminator.width=4",
                    "model.discriminator.receptive_field=16", "metrics.every_steps=2",
                    "metrics.names=[paired]"], run_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ckpt = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert ckpt["G"]["down.0.0.weight"].shape[1] == 1  # the gray input
    assert ckpt["G"]["up.4.0.weight"].shape[1] == 3  # the colour output (transposed: out channels)
    assert ckpt["D"]["net.0.weight"].shape[1] == 1 + 3
    assert "paired_l1" in read_metrics(run_dir)[-1]


# ---------------------------------------------------------------------------------------------
# The metric records on fixed tensors.


class FixedPairs:
    """A paired source of fixed tensors with a separate held-out source (the DataSource surface the
    metrics use: ``held_out()``, ``real_pairs``, ``num_samples``, ``name``)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, name: str = "fixed (test)",
                 held_out: FixedPairs | None = None) -> None:
        self.x, self.y, self.name, self._held_out = x, y, name, held_out

    @property
    def num_samples(self) -> int:
        return len(self.x)

    def held_out(self) -> FixedPairs:
        return self if self._held_out is None else self._held_out

    def real_pairs(self, num: int, batch_size: int = 500):
        stop = min(num, len(self.x))
        for start in range(0, stop, batch_size):
            end = min(start + batch_size, stop)
            yield Batch(x=self.x[start:end], y=self.y[start:end])


class CountingIdentity(torch.nn.Module):
    """G(z, y) = y, counting its calls."""

    num_classes = 0
    takes_condition = True
    z_dim = 2

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def forward(self, z, y):
        self.calls += 1
        return y


def test_paired_metric_against_hand_values_on_the_held_out_source():
    """Constant images (values in [-1, 1]; u = (v + 1) / 2 in [0, 1]):

    pair 0: target 0.0 (u 0.50), input 0.5 (u 0.75): |diff| 0.5, MSE_u 0.0625 -> 12.0412 dB
    pair 1: target -0.5 (u 0.25), input -0.3 (u 0.35): |diff| 0.2, MSE_u 0.01 -> 20 dB
    L1 = 0.35, PSNR = mean of the two = 16.0206 dB; with no variance SSIM = (2ab + C1) /
    (a^2 + b^2 + C1), C1 = 1e-4: 0.7501 / 0.8126 and 0.1751 / 0.1851, averaged.
    The training pairs (all zeros) must not be used."""
    full = lambda v: torch.full((1, 1, 16, 16), v, dtype=torch.float64)  # noqa: E731
    held = FixedPairs(torch.cat([full(0.0), full(-0.5)]), torch.cat([full(0.5), full(-0.3)]))
    train = FixedPairs(torch.zeros(3, 1, 16, 16, dtype=torch.float64),
                       torch.zeros(3, 1, 16, 16, dtype=torch.float64), "fixed (train)", held)
    G, provenance = CountingIdentity(), {}
    values = compute_metrics(["paired"], None, None, {"num_fake": 10}, provenance,
                             generator=G, data=train)
    assert values["paired_l1"] == pytest.approx(0.35, abs=1e-12)
    assert values["paired_psnr_db"] == pytest.approx((10 * math.log10(16) + 20) / 2, rel=1e-6)
    ssim = ((0.7501 / 0.8126) + (0.1751 / 0.1851)) / 2
    assert values["paired_ssim"] == pytest.approx(ssim, rel=1e-5)
    assert provenance["paired"]["pairs"] == "2 pairs of fixed (test)"


# dead ReLU units of the CNN give both feature sets zero-variance columns: sqrtm of the singular
# product warns, and its value still agrees
@pytest.mark.filterwarnings("ignore::scipy.linalg.LinAlgWarning")
def test_paired_fd_against_numpy_and_scipy_and_one_pass_of_G():
    """FD of the shipped Fashion CNN's features of G's outputs against those of the targets,
    computed here with numpy (mean, covariance) and scipy (sqrtm):
    ||mu1 - mu2||^2 + Tr(S1 + S2 - 2 sqrtm(S1 S2)). ``paired`` and ``paired_fd`` share G's pass."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(300, 1, 32, 32, generator=g) * 2 - 1
    y = (x + 0.3 * torch.randn(300, 1, 32, 32, generator=g)).clamp(-1, 1)
    data = FixedPairs(x, y)
    G = CountingIdentity()
    values = compute_metrics(["paired", "paired_fd"], None, None,
                             {"num_fake": 300, "batch_size": 100, "paired_fd": {"features": "fashion"}},
                             generator=G, data=data)
    assert G.calls == 3  # 300 pairs in batches of 100, once for both metrics
    net = load_fashion_cnn()
    with torch.no_grad():
        f_out, f_tgt = (net.features(t).double().numpy() for t in (y, x))
    mu1, mu2 = f_out.mean(0), f_tgt.mean(0)
    s1, s2 = np.cov(f_out, rowvar=False), np.cov(f_tgt, rowvar=False)
    fd = ((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * linalg.sqrtm(s1 @ s2).real)
    assert values["paired_fd_fashion"] == pytest.approx(fd, rel=1e-4)
    assert values["paired_l1"] == pytest.approx(float((y - x).abs().mean()), rel=1e-6)


def test_paired_metrics_refuse_a_model_without_paired_data():
    from gan_cli.errors import ConfigError

    with pytest.raises(ConfigError, match="image-to-image"):
        compute_metrics(["paired"], lambda n: torch.zeros(n, 2), None, {}, generator=torch.nn.Identity(),
                        data=object())


@needs_fashion
@pytest.mark.slow
def test_sampler_conditions_are_held_out_inputs_drawn_with_the_samplers_generator():
    from gan_cli.data.paired import fashion_pairs

    data = fashion_pairs("edges", limit=32, batch_size=8)
    state = torch.get_rng_state()
    got = data.conditions(5, torch.Generator().manual_seed(3))
    assert torch.equal(torch.get_rng_state(), state)  # the training RNG is untouched
    idx = torch.randint(10000, (5,), generator=torch.Generator().manual_seed(3))
    test = fashion_pairs("edges", split="test", batch_size=1)
    inputs = next(test.real_pairs(10000, batch_size=10000)).y  # the 10,000 held-out inputs
    assert torch.equal(got, inputs[idx])


@needs_fashion
@pytest.mark.slow
def test_the_identity_baseline_scores_the_held_out_inputs_against_their_targets():
    """scripts/paired_identity.py: L1 of copying the input = mean |input - target| of the first
    test pairs, read here from the IDX file and edge-mapped with scipy (as in the figure test)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("paired_identity", REPO / "scripts" / "paired_identity.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    values, provenance = script.identity_metrics(["experiment=pix2pix_fashion"], num=50,
                                                 names=["paired"])
    assert provenance["paired"]["pairs"] == "50 pairs of Fashion-MNIST edges (test)"
    items = np.pad(read_idx(sorted(DEBIAN_FASHION_MNIST.glob("t10k-images*"))[0])[:50],
                   ((0, 0), (2, 2), (2, 2))).astype(np.float64) / 255.0
    sobel = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], float)
    edges = np.stack([np.hypot(ndimage.correlate(u, sobel, mode="constant"),
                               ndimage.correlate(u, sobel.T, mode="constant")) / 4 > 0.25
                      for u in items]).astype(np.float64)
    targets = np.round(items * 255) / 127.5 - 1  # the stored bytes in [-1, 1]
    assert values["paired_l1"] == pytest.approx(np.abs((edges * 2 - 1) - targets).mean(), rel=1e-6)
