"""gan-sample (gan_cli/sample.py): interpolation, vector arithmetic, conditions, exports, GIFs, the
style figures, and every mode through the real command line on tiny checkpoints."""

from __future__ import annotations

import csv
import json
import math
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from gan_cli.animation import to_uint8, write_gif
from gan_cli.errors import ConfigError
from gan_cli.models import dcgan
from gan_cli.sample import (
    arithmetic_layout,
    conditions,
    export_images,
    export_points,
    frame_image,
    generate,
    latent_of_seed,
    lerp,
    slerp,
    style_figure,
    vector_arithmetic,
    walk,
)
from tests.conftest import SMALL, run_cli

HAS_FASHION = Path("/usr/share/datasets/fashion-mnist").is_dir()

# ---------------------------------------------------------------------------------------------
# Interpolation.


def test_lerp_and_slerp_by_hand():
    a, b = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 2.0])
    # lerp at t = 1/4: 3/4 a + 1/4 b
    assert lerp(a, b, torch.tensor([0.25]))[0].tolist() == pytest.approx([0.75, 0.5])
    # slerp at t = 1/2: the direction at 45 degrees, the norm halfway between 1 and 2
    mid = slerp(a, b, torch.tensor([0.5]))[0]
    assert mid.tolist() == pytest.approx([1.5 / math.sqrt(2), 1.5 / math.sqrt(2)], abs=1e-6)
    # at t = 1/3 the angle is a third of 90 degrees and the norm 4/3
    third = slerp(a, b, torch.tensor([1 / 3]))[0]
    assert third.tolist() == pytest.approx([4 / 3 * math.cos(math.pi / 6), 4 / 3 * math.sin(math.pi / 6)],
                                           abs=1e-6)


def test_slerp_keeps_the_norm_and_walks_the_great_circle():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(64, generator=g), torch.randn(64, generator=g)
    b = b * (a.norm() / b.norm())  # equal norms
    t = torch.linspace(0, 1, 11)
    path = slerp(a, b, t)
    assert path.norm(dim=1) == pytest.approx(torch.full((11,), float(a.norm())), rel=1e-6)
    # constant angular speed: the angle to a is t * the angle between a and b
    a64, p64 = a.double(), path.double()
    omega = torch.arccos(torch.dot(a64, b.double()) / a64.norm() ** 2)
    angles = torch.arccos((p64 @ a64 / (p64.norm(dim=1) * a64.norm())).clamp(-1, 1))
    assert angles == pytest.approx(t.double() * omega, abs=2e-3)  # float32 path: arccos near 1
    # lerp's midpoint is shorter than both ends (what slerp avoids)
    assert lerp(a, b, torch.tensor([0.5]))[0].norm() < 0.9 * a.norm()
    # unequal norms: the norm moves linearly
    c = 3 * torch.randn(64, generator=g)
    assert slerp(a, c, t).norm(dim=1) == pytest.approx((1 - t) * a.norm() + t * c.norm(), rel=1e-6)


def test_walk_passes_through_every_latent_once():
    z = torch.randn(3, 5)
    path = walk(z, 4, "slerp")
    assert path.shape == (7, 5)  # (3 - 1) * (4 - 1) + 1
    for k, i in enumerate((0, 3, 6)):
        assert torch.equal(path[i], z[k])


def small_dcgan(num_classes: int = 0) -> nn.Module:
    torch.manual_seed(0)
    return dcgan.Generator(z_dim=8, data_shape=(1, 16, 16), width=8, num_classes=num_classes,
                           conditional=num_classes > 0).eval()


def test_interpolation_endpoints_are_the_images_of_the_end_latents():
    G = small_dcgan()
    za, zb = latent_of_seed(1, 8), latent_of_seed(2, 8)
    frames = generate(G, walk(torch.stack([za, zb]), 5, "slerp"), None)
    with torch.no_grad():
        ends = G(torch.stack([za, zb]))
    assert torch.allclose(frames[0], ends[0], atol=1e-6)
    assert torch.allclose(frames[-1], ends[1], atol=1e-6)
    scale = float(ends.abs().max())
    assert (frames[2] - ends[0]).abs().max() > 0.05 * scale  # the middle is somewhere else


def test_the_latent_of_a_seed_is_the_first_draw_of_its_generator():
    assert torch.equal(latent_of_seed(7, 4), torch.randn(1, 4, generator=torch.Generator().manual_seed(7))[0])
    assert latent_of_seed(7, 4, truncation=0.5).abs().max() <= 0.5


# ---------------------------------------------------------------------------------------------
# Vector arithmetic.


class Identity(nn.Module):
    """A 'generator' whose image is its latent (1 x 1 x z_dim): the arithmetic is visible as is."""

    num_classes = 0

    def __init__(self) -> None:
        super().__init__()
        self.p = nn.Parameter(torch.zeros(()))

    def forward(self, z, y=None):
        return z.reshape(len(z), 1, 1, -1) + self.p


def test_vector_arithmetic_by_hand():
    z = torch.tensor([[1.0, 0.0], [3.0, 2.0], [0.0, 4.0], [2.0, 2.0], [0.0, -2.0]])
    g = torch.Generator().manual_seed(0)
    r = vector_arithmetic(Identity(), z, [[0, 1], [2], [3, 4]], perturb=0.25, generator=g)
    # means: A = (2, 1), B = (0, 4), C = (1, 0); Y = A - B + C = (3, -3)
    assert r.means.reshape(3, 2).tolist() == [[2.0, 1.0], [0.0, 4.0], [1.0, 0.0]]
    assert r.result[4].reshape(2).tolist() == [3.0, -3.0]  # the centre is G(Y)
    others = torch.cat([r.z_result[:4], r.z_result[5:]])
    assert (others - torch.tensor([3.0, -3.0])).abs().max() <= 0.25  # uniform in +-0.25
    assert (others - torch.tensor([3.0, -3.0])).abs().min() > 0  # and perturbed
    assert [len(x) for x in r.groups] == [2, 1, 2]
    assert torch.equal(r.groups[2].reshape(2, 2), z[[3, 4]])
    with pytest.raises(ConfigError, match="not in the candidates"):
        vector_arithmetic(Identity(), z, [[0], [9], [1]], perturb=0.25, generator=g)


def test_arithmetic_figure_layout():
    # rows: the largest group, a gap, the means; columns: A - B + C = and the 3 x 3 block
    assert arithmetic_layout([3, 1, 2]) == (5, 9)
    assert arithmetic_layout([1, 1, 1]) == (3, 9)


# ---------------------------------------------------------------------------------------------
# Conditions.


def test_conditions_of_a_conditional_generator():
    G = small_dcgan(num_classes=3)
    assert conditions(G, None, 5).tolist() == [0, 1, 2, 0, 1]  # all classes in turn
    assert conditions(G, None, 6, by_row=2).tolist() == [0, 0, 1, 1, 2, 2]  # one class per row
    assert conditions(G, None, 3, label=2).tolist() == [2, 2, 2]
    with pytest.raises(ConfigError, match="classes 0..2"):
        conditions(G, None, 3, label=3)
    with pytest.raises(ConfigError, match="not class-conditional"):
        conditions(small_dcgan(), None, 3, label=1)
    assert conditions(small_dcgan(), None, 3) is None


def test_an_image_conditioned_generator_gets_the_datas_inputs():
    class Translator(nn.Module):
        num_classes = 0
        takes_condition = True

    class Data:
        def conditions(self, n, generator):
            return torch.arange(n, dtype=torch.float32).reshape(n, 1, 1, 1)

    class FigureData:
        def figure_batch(self, n):
            from gan_cli.data.base import Batch

            return Batch(x=torch.zeros(n, 1, 2, 2), y=torch.ones(n, 1, 2, 2))

    assert conditions(Translator(), Data(), 3).reshape(3).tolist() == [0.0, 1.0, 2.0]
    assert torch.equal(conditions(Translator(), FigureData(), 2), torch.ones(2, 1, 2, 2))


# ---------------------------------------------------------------------------------------------
# Files.


def test_uint8_conversion_rounds_like_torchvisions_save_image(tmp_path: Path):
    from torchvision.utils import save_image

    x = torch.linspace(-1, 1, 3 * 7 * 5).reshape(1, 3, 7, 5)
    save_image(x.add(1).mul(0.5), tmp_path / "tv.png", padding=0)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "tv.png")), to_uint8(x)[0].numpy())


def test_exported_images_round_trip(tmp_path: Path):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(5, 1, 6, 6, generator=g) * 2 - 1
    z, labels = torch.randn(5, 4, generator=g), torch.tensor([0, 1, 2, 0, 1])
    npz = np.load(export_images(x, z, labels, None, tmp_path, "npz"))
    assert npz["images"].shape == (5, 6, 6, 1) and npz["images"].dtype == np.uint8
    # within half a grey level of the generated values, labels and latents exact
    assert np.abs(npz["images"] / 127.5 - 1 - x.permute(0, 2, 3, 1).numpy()).max() <= 1 / 255 + 1e-6
    assert np.array_equal(npz["labels"], labels.numpy()) and np.array_equal(npz["z"], z.numpy())
    (tmp_path / "png").mkdir()
    folder = export_images(x, z, labels, None, tmp_path / "png", "png")
    files = sorted(folder.glob("*.png"))
    assert [f.name for f in files] == [f"{i:06d}.png" for i in range(5)]
    for i, f in enumerate(files):
        assert np.array_equal(np.asarray(Image.open(f)), npz["images"][i, :, :, 0])
    rows = list(csv.reader(open(folder / "labels.csv")))
    assert rows == [["file", "label"]] + [[f"{i:06d}.png", str(int(labels[i]))] for i in range(5)]


def test_exported_points_round_trip(tmp_path: Path):
    x, z = torch.randn(4, 2), torch.randn(4, 3)
    npz = np.load(export_points(x, z, None, tmp_path, "npz"))
    assert np.array_equal(npz["points"], x.numpy()) and "labels" not in npz
    rows = list(csv.reader(open(export_points(x, z, None, tmp_path, "csv"))))
    assert rows[0] == ["x0", "x1"]
    assert np.array(rows[1:], dtype=np.float32).tolist() == x.tolist()  # repr(float) is exact


def test_gif_frame_count_and_frame_size(tmp_path: Path):
    frames = [np.full((8, 10, 3), 30 * i, np.uint8) for i in range(6)]
    gif = write_gif(frames, tmp_path / "a.gif", fps=5)
    with Image.open(gif) as im:
        assert im.n_frames == 6 and im.size == (10, 8)
    frame = frame_image(torch.zeros(4, 1, 16, 16))  # 2 x 2 grid of 16 px + padding, enlarged to >= 256
    assert frame.shape[2] == 3 and min(frame.shape[:2]) >= 256


# ---------------------------------------------------------------------------------------------
# Style figures on a directly built StyleGAN2 generator (checkpoints come with the style models).


def test_style_mixing_and_psi_figures_on_a_stylegan2_generator():
    from gan_cli.models import stylegan2
    from gan_cli.style_figures import crossover_bands

    torch.manual_seed(0)
    G = stylegan2.Generator(z_dim=8, data_shape=(3, 16, 16), w_dim=8, mapping_layers=2, channel_base=64,
                            channel_max=16)
    za, zb = torch.randn(2, 8), torch.randn(3, 8)
    bands = len(crossover_bands(G.layer_resolutions))
    mixing = style_figure(G, "mixing", za, zb, [])
    assert mixing.nrow == 1 + 3 and len(mixing.images) == (1 + bands * 2) * 4
    psi = style_figure(G, "psi", za, zb, [1.0, 0.0])
    assert psi.nrow == 2 and len(psi.images) == 2 * 2
    # psi = 0 is the image of w_avg: the same for both latents
    assert torch.allclose(psi.images[1], psi.images[3], atol=1e-5)


# ---------------------------------------------------------------------------------------------
# The command line.


def run_sample(args: list[str], out: Path) -> subprocess.CompletedProcess:
    """``gan-sample`` with ``args`` into ``out``, in this process (tests/inprocess.py)."""
    return run_cli(args, out, prog="gan-sample", in_process=True)


@pytest.fixture(scope="module")
def cdcgan_ckpt(fashion_cdcgan_run) -> Path:
    """A 2-step class-conditional DCGAN (tests/conftest.py, shared with other files)."""
    return fashion_cdcgan_run / "checkpoints" / "last.pt"


@pytest.mark.slow
def test_gan_sample_exports_what_the_generator_makes(tmp_path: Path, cdcgan_ckpt: Path):
    from gan_cli.build import generator_from_checkpoint
    from gan_cli.latents import sample_latents
    from gan_cli.seeding import derive_seed

    proc = run_sample([f"ckpt={cdcgan_ckpt}", "n=12", "format=npz", "seed=3"], tmp_path / "out")
    assert proc.returncode == 0, proc.stderr[-3000:]
    npz = np.load(tmp_path / "out" / "samples.npz")
    # the same samples, recomputed here from the checkpoint: G(z) for the stored z, classes in turn
    G = generator_from_checkpoint(cdcgan_ckpt, device=torch.device("cpu")).G
    z = sample_latents(12, 100, generator=torch.Generator().manual_seed(derive_seed(3, "export")))
    assert np.array_equal(npz["z"], z.numpy())
    assert npz["labels"].tolist() == [i % 10 for i in range(12)]
    with torch.no_grad():
        expected = to_uint8(G(z, torch.as_tensor(npz["labels"])))
    assert np.abs(npz["images"].astype(int) - expected.numpy().astype(int)).max() <= 1
    record = json.loads((tmp_path / "out" / "sample.json").read_text())
    assert record["mode"] == "export" and record["step"] == 2


@pytest.mark.slow  # three runs of the command
def test_gan_sample_figures_through_the_command_line(tmp_path: Path, cdcgan_ckpt: Path):
    out = tmp_path / "interp"
    proc = run_sample([f"ckpt={cdcgan_ckpt}", "mode=interp", "seeds=[1,2,3]", "steps=4"], out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with Image.open(out / "interp.gif") as im:
        assert im.n_frames == 7  # (3 - 1) * (4 - 1) + 1 points of the walk
    with Image.open(out / "interp.png") as im:
        assert im.size[0] == 7 * (28 + 2) + 2  # one row of 7 images, padding 2
    out = tmp_path / "arith"
    proc = run_sample([f"ckpt={cdcgan_ckpt}", "mode=arithmetic", "candidates=9", "select=[[0,1],[2],[3]]"],
                      out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (out / "candidates.png").is_file() and (out / "arithmetic.png").is_file()
    out = tmp_path / "classes"
    proc = run_sample([f"ckpt={cdcgan_ckpt}", "mode=classes", "columns=3"], out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with Image.open(out / "classes.png") as im:
        assert im.size == (3 * 30 + 2, 10 * 30 + 2)  # one row per class, 3 columns


@pytest.mark.slow
def test_gan_sample_refuses_what_it_cannot_do(tmp_path: Path, cdcgan_ckpt: Path):
    proc = run_sample([f"ckpt={cdcgan_ckpt}", "mode=psi"], tmp_path / "a")
    assert proc.returncode == 2 and "style-based generator" in proc.stderr
    proc = run_sample([f"ckpt={cdcgan_ckpt}", "mode=walk"], tmp_path / "b")
    assert proc.returncode == 2 and "mode" in proc.stderr and "Traceback" not in proc.stderr
    proc = run_sample([f"ckpt={cdcgan_ckpt}", "jacobian_threshold=10"], tmp_path / "d")
    assert proc.returncode == 2 and "unconditional" in proc.stderr and "Traceback" not in proc.stderr
    proc = run_sample([f"ckpt={tmp_path / 'missing.pt'}"], tmp_path / "c")
    assert proc.returncode == 1 and "checkpoint not found" in proc.stderr


@pytest.mark.slow  # a training run and two runs of the command
def test_gan_sample_exports_2d_points(tmp_path: Path):
    run_dir = tmp_path / "ring8"
    assert run_cli([*SMALL, "train.steps=2", "train.log_every_steps=1"], run_dir).returncode == 0
    proc = run_sample([f"ckpt={run_dir / 'checkpoints' / 'last.pt'}", "n=50", "format=csv"], tmp_path / "out")
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = list(csv.reader(open(tmp_path / "out" / "samples.csv")))
    assert rows[0] == ["x0", "x1"] and len(rows) == 51
    proc = run_sample([f"ckpt={run_dir / 'checkpoints' / 'last.pt'}", "mode=interp"], tmp_path / "o2")
    assert proc.returncode == 2 and "mode=export or mode=grid" in proc.stderr
    # the Jacobian threshold: only latents where ||dG/dz|| <= 3 x the batch median
    from gan_cli.build import generator_from_checkpoint
    from gan_cli.latents import jacobian_sq_norms

    proc = run_sample([f"ckpt={run_dir / 'checkpoints' / 'last.pt'}", "n=300", "format=npz",
                       "jacobian_threshold=1.5", "batch_size=100"], tmp_path / "o3")
    assert proc.returncode == 0, proc.stderr[-3000:]
    npz = np.load(tmp_path / "o3" / "samples.npz")
    assert npz["points"].shape == (300, 2) and npz["z"].shape[0] == 300
    G = generator_from_checkpoint(run_dir / "checkpoints" / "last.pt", device=torch.device("cpu")).G
    z = torch.as_tensor(npz["z"])
    with torch.no_grad():
        assert np.allclose(G(z).numpy(), npz["points"], atol=1e-6)  # the points are G of the kept z
    # each batch of 100 kept came from candidates whose median is at least the kept ones' lower half:
    # no kept latent is steeper than 1.5^2 x the largest norm a plain draw's median reaches
    plain = jacobian_sq_norms(G, torch.randn(5000, z.shape[1], generator=torch.Generator().manual_seed(0)))
    kept = jacobian_sq_norms(G, z)
    assert kept.max() <= 1.5**2 * plain.quantile(0.75)
    assert kept.mean() < plain.mean()  # the steepest latents are gone
