"""Image GANs through the real CLI: every loss with DCGAN on a few hundred real Fashion-MNIST
images, the conditional DCGAN's class-per-row figures, and the default experiment's config."""

from __future__ import annotations

import contextlib
import json
import math
from pathlib import Path

import pytest
import torch
from PIL import Image

from gan_cli.checkpoint import load_checkpoint
from tests.conftest import SMALL_IMAGES, injected_env, read_metrics, run_cli
from tests.test_train_cli import LOSSES, assert_run_dir_contract

pytestmark = pytest.mark.skipif(not Path("/usr/share/datasets/fashion-mnist").is_dir(),
                                reason="needs Debian's dataset-fashion-mnist (make data)")


@pytest.mark.slow
@pytest.mark.parametrize("loss", LOSSES)
def test_every_loss_trains_dcgan_on_fashion_mnist(tmp_path: Path, loss: str):
    run_dir = tmp_path / "run"
    proc = run_cli([*SMALL_IMAGES, f"loss={loss}", "train.steps=4", "train.log_every_steps=2",
                    "train.sample_every_steps=4", "train.ckpt_every_steps=4"], run_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert_run_dir_contract(run_dir, 4)
    ckpt = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert ckpt["config"]["dataset"]["_target_"].endswith("fashion_mnist")
    assert any(k.endswith("weight") and v.dim() == 4 for k, v in ckpt["G"].items())  # convs


@pytest.mark.slow
def test_default_experiment_is_dcgan_on_fashion_mnist(fashion_dcgan_run: Path):
    run_dir = fashion_dcgan_run  # tiny=images, 2 steps (tests/conftest.py)
    cfg = load_checkpoint(run_dir / "checkpoints" / "last.pt")["config"]
    assert cfg["model"]["generator"]["_target_"] == "gan_cli.models.dcgan.Generator"
    assert cfg["loss"]["_target_"] == "gan_cli.losses.NonSaturating"
    assert cfg["optimizer"]["_target_"] == "torch.optim.Adam"
    # the figure: an 8x8 grid of 28x28 images with 2 px padding
    png = Image.open(sorted((run_dir / "samples").glob("*.png"))[-1])
    assert png.size == (8 * 30 + 2, 8 * 30 + 2)


@pytest.mark.slow
def test_conditional_dcgan_figure_has_one_row_per_class(fashion_cdcgan_run: Path):
    run_dir = fashion_cdcgan_run  # model=cdcgan, train.figure_samples=30 (tests/conftest.py)
    png = Image.open(sorted((run_dir / "samples").glob("*.png"))[-1])
    assert png.size == (3 * 30 + 2, 10 * 30 + 2)  # 10 rows (classes) of 3 samples
    ckpt = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert "embed.weight" in ckpt["G"] and "embed.weight" in ckpt["D"]  # labels reach G and D
    assert ckpt["D"]["embed.weight"].shape[0] == 10


def test_conditional_model_on_unlabelled_data_is_a_config_error(tmp_path: Path):
    proc = run_cli([*SMALL_IMAGES, "model=cdcgan", "dataset=ring8", "model.z_dim=8"],
                   tmp_path / "run")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr


# A probe in DCGAN's discriminator for a run in this process (run_cli runs gan-train here): every
# call records its input's memory format, the autocast state it runs under and the dtype it returns.
@contextlib.contextmanager
def d_probe():
    from gan_cli.models import dcgan

    seen, forward = [], dcgan.Discriminator.forward

    def probe(self, x, y=None):
        out = forward(self, x, y)
        seen.append({
            "nhwc": x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last)
                    and not x.is_contiguous(),
            "autocast": torch.is_autocast_enabled("cpu"),
            "autocast_dtype": str(torch.get_autocast_dtype("cpu")),
            "out_dtype": str(out.dtype),
        })
        return out

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(dcgan.Discriminator, "forward", probe)
        yield seen


# 3 RGB steps (Fashion-MNIST replicated to 3 channels: with one channel NCHW and NHWC are the
# same layout, and a channels_last input could not be told from a plain one)
FEATURE_RUN = [*SMALL_IMAGES, "dataset.channels=3", "train.steps=3", "train.log_every_steps=1",
               "train.ckpt_every_steps=3", "train.sample_every_steps=3"]


def probed_run(tmp_path: Path, name: str, extra: list[str]) -> tuple[Path, list[dict]]:
    run_dir = tmp_path / name
    with d_probe() as seen:
        proc = run_cli([*FEATURE_RUN, *extra], run_dir, in_process=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return run_dir, seen


@pytest.fixture(scope="module")
def fp32_run(tmp_path_factory) -> tuple[Path, list[dict]]:
    """The same 3 steps in fp32, NCHW (hardware=cpu's channels_last turned off): what each feature
    is compared with."""
    return probed_run(tmp_path_factory.mktemp("fp32"), "fp32", ["hardware.channels_last=false"])


@pytest.mark.slow
def test_fp32_probe_sees_plain_nchw_and_no_autocast(fp32_run):
    _, seen = fp32_run
    assert len(seen) >= 9  # real, fake, generator pass per step at least
    assert not any(s["nhwc"] or s["autocast"] for s in seen)
    assert {s["out_dtype"] for s in seen} == {"torch.float32"}


@pytest.mark.slow
def test_channels_last_reaches_the_step_and_trains_the_same(tmp_path: Path, fp32_run):
    """hardware.channels_last (on in hardware=cpu, the default: no override here): D is fed NHWC
    batches, the saved conv weights are NHWC, and the weights are those of the NCHW run (to float
    tolerance)."""
    run_dir, seen = probed_run(tmp_path, "nhwc", [])
    assert seen and all(s["nhwc"] for s in seen), seen[:3]
    ckpt = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    convs = {k: v for k, v in ckpt["G"].items() if v.dim() == 4 and min(v.shape[:2]) > 1}
    assert convs and all(v.is_contiguous(memory_format=torch.channels_last)
                         and not v.is_contiguous() for v in convs.values())
    plain = load_checkpoint(fp32_run[0] / "checkpoints" / "last.pt")
    assert not any(v.is_contiguous(memory_format=torch.channels_last) and not v.is_contiguous()
                   for v in plain["G"].values() if v.dim() == 4)
    # NHWC convolutions round their gradients differently; Adam's normalised step m / sqrt(v) turns
    # that into up to a fraction of one step (lr 2e-4) where a gradient is near zero (measured:
    # 1.4e-5 on 1 weight of 78,400 with torch's fused Adam, the default)
    for net in ("G", "D"):
        for k in plain[net]:
            torch.testing.assert_close(ckpt[net][k], plain[net][k], rtol=1e-4, atol=5e-5)


@pytest.mark.slow
def test_bf16_autocast_runs_inside_the_step_with_sane_losses(tmp_path: Path, fp32_run):
    """hardware.precision=bf16: D runs under CPU autocast in bfloat16 and returns bfloat16
    scores; the losses of the first step are those of the fp32 run to bf16's precision (8
    significant bits: a few parts in a thousand) and every logged value is finite."""
    run_dir, seen = probed_run(tmp_path, "bf16", ["hardware.precision=bf16"])
    assert seen and all(s["autocast"] and s["autocast_dtype"] == "torch.bfloat16"
                        for s in seen), seen[:3]
    assert {s["out_dtype"] for s in seen} == {"torch.bfloat16"}
    records, plain = read_metrics(run_dir), read_metrics(fp32_run[0])
    assert [r["step"] for r in records] == [1, 2, 3]
    assert all(math.isfinite(v) for r in records for v in r.values())
    for key in ("loss_d", "loss_g"):
        assert records[0][key] == pytest.approx(plain[0][key], rel=3e-2), key
        assert records[0][key] != plain[0][key]  # computed in another precision indeed


@pytest.mark.slow
def test_compile_runs_compiled_graphs_with_the_eager_numbers(tmp_path: Path, fp32_run):
    """hardware.compile=true: dynamo compiles frames of G and D (its counters, read at exit),
    and the weights after 3 steps are the eager run's to float tolerance (cold compile takes
    tens of seconds)."""
    run_dir = tmp_path / "compiled"
    hook = tmp_path / "hook"
    hook.mkdir()
    env = injected_env(hook, """
import atexit, json, os
import torch._dynamo.utils as _utils

def _dump():
    counters = {k: dict(v) for k, v in _utils.counters.items()}
    open(os.environ["T19_PROBE"], "w").write(json.dumps(counters, default=str))

atexit.register(_dump)
""")
    env["T19_PROBE"] = str(tmp_path / "dynamo.json")
    proc = run_cli([*FEATURE_RUN, "hardware.compile=true"], run_dir, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    counters = json.loads((tmp_path / "dynamo.json").read_text())
    assert counters["stats"]["unique_graphs"] >= 2, counters  # G's and D's graphs at least
    assert counters["frames"]["ok"] >= 2, counters
    ckpt = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    plain = load_checkpoint(fp32_run[0] / "checkpoints" / "last.pt")
    for net in ("G", "D"):
        for k in plain[net]:
            torch.testing.assert_close(ckpt[net][k], plain[net][k], rtol=1e-3, atol=1e-4)


@pytest.mark.gpu
@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_gpu_mixed_precision_channels_last_compile(tmp_path: Path, precision: str):
    """The GPU options together: autocast (fp16 with grad scalers), channels_last, compile."""
    run_dir = tmp_path / "run"
    proc = run_cli([*SMALL_IMAGES, "hardware=gpu", f"hardware.precision={precision}",
                    "hardware.channels_last=true", "hardware.compile=true", "train.steps=4",
                    "train.log_every_steps=2"], run_dir, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert_run_dir_contract(run_dir, 4)
