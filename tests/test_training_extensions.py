"""The training function called in process, and each extension point of the step exercised with a
small fake: a phase schedule (progressive growing), lazy regularisers, two stages trained one
after another (a cascade), and batches that carry a condition with a G term that sees the target.

The fakes are importable ``_target_``s of this module, so they are built from config exactly as
the real models are.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from torch import nn

from gan_cli.build import Pair
from gan_cli.checkpoint import load_checkpoint
from gan_cli.cli import CONF_DIR
from gan_cli.config import register_configs, validate
from gan_cli.data.base import Batch, DataInfo
from gan_cli.losses import NonSaturating, RegContext
from gan_cli.models import mlp
from gan_cli.stats import Collector
from gan_cli.training.curriculum import StepPlan
from gan_cli.training.loop import train
from gan_cli.training.nonfinite import NonFinitePolicy
from gan_cli.training.step import Autocast, GANStep
from tests.conftest import read_metrics, run_cli

HERE = "tests.test_training_extensions"
LOG: dict[str, list] = {}  # what the fakes saw, per test


def compose_train(*overrides: str):
    """conf/train.yaml with the command line's ``overrides``, validated like gan-train does."""
    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="train", overrides=list(overrides))
    validate(cfg)
    return cfg


def assert_same_checkpoint(a: dict, b: dict, path: str = "") -> None:
    """Every tensor and value of two checkpoints equal (the saved config aside)."""
    assert type(a) is type(b), path
    if isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for k in a:
            if path == "" and k == "config":
                continue
            assert_same_checkpoint(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same_checkpoint(x, y, f"{path}[{i}]")
    elif torch.is_tensor(a):
        assert torch.equal(a, b), path
    else:
        assert a == b, path


# ---------------------------------------------------------------------------------------------
# The training function in process.


@pytest.mark.slow
def test_train_in_process_matches_the_command_line(tmp_path: Path):
    """``train(cfg, run_dir)`` with the composed config is what gan-train runs: same weights."""
    cfg = compose_train("tiny=toy", "seed=3")
    last = train(cfg, tmp_path / "inproc")
    assert last["step"] == 12 and {"loss_d", "loss_g", "kimg"} <= last.keys()
    assert run_cli(["tiny=toy", "seed=3"], tmp_path / "cli").returncode == 0
    a = load_checkpoint(tmp_path / "inproc" / "checkpoints" / "last.pt")
    b = load_checkpoint(tmp_path / "cli" / "checkpoints" / "last.pt")
    assert_same_checkpoint(a, b)
    assert [r["loss_g"] for r in read_metrics(tmp_path / "inproc")] == \
        [r["loss_g"] for r in read_metrics(tmp_path / "cli")]


# ---------------------------------------------------------------------------------------------
# (a) A phase schedule: networks that grow, optimizers reset, the batch and the real data change.


@dataclass(frozen=True)
class FakePhase:
    index: int
    resolution: int
    alpha: float
    batch_size: int
    reset_optimizers: bool
    kimg: float


class FakeSchedule:
    """Three phases of 4 steps; the global batch halves at each; alpha ramps within a phase."""

    batches = (32, 16, 8)

    def __init__(self, steps_per_phase: int = 4) -> None:
        self.n = steps_per_phase

    def phase(self, step: int) -> FakePhase:
        index = min(step // self.n, 2)
        shown = sum(min(max(step - i * self.n, 0), self.n) * b for i, b in enumerate(self.batches))
        return FakePhase(index, 2 ** (index + 1), (step % self.n) / self.n, self.batches[index],
                         True, shown / 1000)

    def transform_real(self, x: torch.Tensor, phase: FakePhase) -> torch.Tensor:
        LOG.setdefault("real", []).append((x.shape[0], phase.index))
        return x * phase.resolution


class PhasedGenerator(mlp.Generator):
    def set_phase(self, resolution: int, alpha: float) -> None:
        LOG.setdefault("G", []).append((resolution, alpha))


def _phased(tmp_path: Path, name: str, *extra: str):
    return compose_train("tiny=toy", "train.steps=12", "train.batch_size=32",
                         "ema.half_life_kimg=null",  # one G: the LOG holds its phases only
                         f"+model.schedule._target_={HERE}.FakeSchedule",
                         f"model.generator._target_={HERE}.PhasedGenerator", *extra)


@pytest.mark.slow
def test_a_phase_schedule_grows_the_networks_resets_optimizers_and_changes_the_batch(tmp_path):
    LOG.clear()
    cfg = _phased(tmp_path, "a")
    train(cfg, tmp_path / "run")
    schedule = FakeSchedule()
    phases = [schedule.phase(s) for s in range(12)]
    # G (and no other network here) was put into each step's phase before the step
    assert LOG["G"] == [(p.resolution, p.alpha) for p in phases]
    # each D update's real batch had the phase's size and went through transform_real
    assert LOG["real"] == [(p.batch_size, p.index) for p in phases]
    ckpt = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    # Adam's moments were reset when the last phase began at step 8: 4 updates since
    assert all(s["step"] == 4 for s in ckpt["opt_g"]["state"].values())
    assert all(s["step"] == 4 for s in ckpt["opt_d"]["state"].values())
    # kimg counts the real images shown with the changing batch: 4*32 + 4*16 + 4*8
    assert read_metrics(tmp_path / "run")[-1]["kimg"] == pytest.approx(0.224)
    assert ckpt["nimg"] == 224


@pytest.mark.slow
def test_a_resume_in_the_middle_of_a_phase_is_exact(tmp_path):
    straight = tmp_path / "straight"
    train(_phased(tmp_path, "s"), straight)
    split = tmp_path / "split"
    train(_phased(tmp_path, "1", "train.steps=6", "train.ckpt_every_steps=100"), split)
    train(_phased(tmp_path, "2", "resume=auto"), split)
    assert_same_checkpoint(load_checkpoint(split / "checkpoints" / "last.pt"),
                           load_checkpoint(straight / "checkpoints" / "last.pt"))


# ---------------------------------------------------------------------------------------------
# (b) Regularisers with their own interval: lazy, multiplied by the interval, corrected optimizers.


class LazyPenalty:
    """A D regulariser every 3 D updates whose gradient is known: d(term)/d(bias) = 1."""

    net = "D"
    interval = 3

    def __call__(self, ctx: RegContext):
        LOG.setdefault("lazy", []).append(ctx.fake.shape[0])
        bias = self.bias_of(ctx.D)
        return bias.sum(), {"lazy_term": bias.sum().detach()}

    @staticmethod
    def bias_of(D) -> torch.Tensor:
        return D.out.bias


class LinearD(nn.Module):
    """D(x) = w . x + b, with the parameters a test can watch."""

    def __init__(self, *, data_shape, num_classes=0, output="score"):
        super().__init__()
        self.num_classes = 0
        self.out = nn.Linear(int(torch.tensor(data_shape).prod()), 1)

    def forward(self, x, y=None):
        return self.out(x.flatten(1)).squeeze(1)


class ZeroLoss(NonSaturating):
    """The adversarial loss times 0: only the regularisers move the parameters."""

    def d_loss(self, D, real, fake, y=None):
        loss, stats = super().d_loss(D, real, fake, y)
        return loss * 0, stats

    def g_loss(self, D, fake, y=None):
        loss, stats = super().g_loss(D, fake, y)
        return loss * 0, stats


def _pair(D: nn.Module, G: nn.Module, regs, lr: float = 0.1, opt=torch.optim.SGD) -> Pair:
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    return Pair(G=G, D=D, loss=ZeroLoss(), opt_g=opt(G.parameters(), lr=lr),
                opt_d=opt(D.parameters(), lr=lr), scaler_g=scaler, scaler_d=scaler,
                regularizers=regs)


class ToyData:
    """2D points; ``y`` is a condition image of the points (2 x the points) when asked."""

    def __init__(self, batch_size: int = 8, condition: bool = False) -> None:
        self.info = DataInfo((2,))
        self.batch_size = batch_size
        self.condition = condition
        self.g = torch.Generator().manual_seed(0)
        self.batches: list[Batch] = []

    def next(self):
        x = torch.randn(self.batch_size, 2, generator=self.g)
        batch = Batch(x, 2 * x if self.condition else None)
        self.batches.append(batch)
        return batch if self.condition else (batch.x, batch.y)


def _step(data, pair_noise_dim: int = 4) -> GANStep:
    g = torch.Generator().manual_seed(1)
    return GANStep(data=data, noise=lambda n: torch.randn(n, pair_noise_dim, generator=g),
                   nonfinite=NonFinitePolicy("stop", torch.device("cpu"), Path(".")),
                   collector=Collector(), autocast=Autocast("fp32", torch.device("cpu")))


def _plan(data, step: int) -> StepPlan:
    """One stage, one batch, no transform: the plan of a classic GAN's step."""
    return StepPlan(stage=0, batch_size=data.batch_size, batch_per_device=data.batch_size,
                    prepare=None, ema_nimg=(step + 1) * data.batch_size)


def test_b_a_lazy_regulariser_runs_every_interval_multiplied_by_it():
    LOG.clear()
    D = LinearD(data_shape=(2,))
    G = mlp.Generator(z_dim=4, data_shape=(2,), hidden=[8])
    pair = _pair(D, G, [LazyPenalty()], lr=0.1)
    data = ToyData()
    step = _step(data)
    bias_before = D.out.bias.detach().clone()
    for s in range(7):  # D updates 0..6: the penalty is due at 0, 3 and 6
        step(pair, s, _plan(data, s))
    assert LOG["lazy"] == [8, 8, 8]
    # only the penalty moves D's bias (the adversarial loss is multiplied by 0); each lazy
    # update takes the term times its interval 3: bias -= lr * 3 * d(term)/d(bias) = 0.3, three times
    torch.testing.assert_close(D.out.bias.detach(), bias_before - 3 * 0.3)
    assert "lazy_term" in step.collector.flush()


@pytest.mark.slow
def test_b_lazy_intervals_correct_the_optimizer_settings(tmp_path):
    cfg = compose_train("tiny=toy", "loss=ns", "loss.r1_gamma=1", "loss.r_interval=4",
                        "optimizer.lr_g=2e-4", "optimizer.lr_d=0.001", "optimizer.betas=[0.5,0.99]")
    train(cfg, tmp_path / "run")
    ckpt = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    (group,) = ckpt["opt_d"]["param_groups"]
    assert group["lr"] == pytest.approx(0.001 * 4 / 5)  # StyleGAN2: lr * k / (k + 1)
    assert group["betas"][0] == pytest.approx(0.5 ** 0.8)
    assert group["betas"][1] == pytest.approx(0.99 ** 0.8)
    (g_group,) = ckpt["opt_g"]["param_groups"]  # G has no lazy regulariser: untouched
    assert g_group["lr"] == pytest.approx(2e-4) and list(g_group["betas"]) == [0.5, 0.99]
    # R1 ran (every 4th D update) and was logged
    assert all("r1" in r for r in read_metrics(tmp_path / "run"))


@pytest.mark.slow
def test_b_a_late_linear_decay_scales_the_lazily_corrected_rates(tmp_path):
    # lr_decay_start=6 of 12 steps: the update after s steps uses factor min(1, (12 - s) / 6)
    cfg = compose_train("tiny=toy", "loss=ns", "loss.r1_gamma=1", "loss.r_interval=4",
                        "optimizer.lr_g=2e-4", "optimizer.lr_d=0.001", "optimizer.lr_decay=linear",
                        "optimizer.lr_decay_start=6")
    train(cfg, tmp_path / "run")
    records = read_metrics(tmp_path / "run")  # logged after steps 4, 8, 12: updates 3, 7, 11
    factors = [1.0, 5 / 6, 1 / 6]
    assert [r["lr_g"] for r in records] == pytest.approx([2e-4 * f for f in factors])
    # D keeps the lazy correction k / (k + 1) = 4/5 under the schedule (it was lost before)
    assert [r["lr_d"] for r in records] == pytest.approx([0.001 * 0.8 * f for f in factors])
    (group,) = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")["opt_d"]["param_groups"]
    assert group["lr"] == pytest.approx(0.001 * 0.8 / 6)


# ---------------------------------------------------------------------------------------------
# (c) Two (G, D) pairs trained one after another, sampled as a cascade.


class Residual(nn.Module):
    """The cascade: stage 0's sample plus stage 1's correction of it."""

    def __init__(self, generators):
        super().__init__()
        self.generators = nn.ModuleList(generators)
        self.num_classes = 0
        self.z_dim = generators[0].z_dim

    def forward(self, z, y=None):
        return sum(G(z, y) for G in self.generators)


class TwoStages:
    """Stage 0 learns the data; stage 1 learns what stage 0 leaves (the real points minus stage
    0's output at z = 0), as LAPGAN's levels learn residual images."""

    num_stages = 2

    def info(self, k, data_info):
        return data_info

    def network_kwargs(self, k, data_info):
        return {}

    def steps(self, total_steps):
        return [6, 6]  # fixed: a run stopped early (train.steps=8) ends inside stage 1

    def begin(self, k, state, fresh):
        LOG.setdefault("begin", []).append((k, fresh, state.step))

    def prepare(self, k, batch, generators):
        LOG.setdefault("prepare", []).append(k)
        if k == 0:
            return batch
        with torch.no_grad():
            base = generators[0](torch.zeros(1, generators[0].z_dim))
        return Batch(batch.x - base, batch.y)

    def cascade(self, generators):
        return Residual(generators) if len(generators) > 1 else generators[0]


def _staged(*extra: str):
    return compose_train("tiny=toy", f"+model.stages._target_={HERE}.TwoStages", *extra)


@pytest.mark.slow
def test_c_two_stages_train_in_sequence_and_sample_as_a_cascade(tmp_path):
    LOG.clear()
    run = tmp_path / "run"
    train(_staged("train.ckpt_every_steps=6"), run)
    assert LOG["begin"] == [(0, True, 0), (1, True, 6)]
    assert LOG["prepare"] == [0] * 6 + [1] * 6  # each D update's batch, as its stage sees it
    mid = load_checkpoint(run / "checkpoints" / "step_00000006.pt")
    end = load_checkpoint(run / "checkpoints" / "last.pt")
    assert end["stage"] == 1 and len(end["stages"]) == 2 and "G" not in end
    # stage 0 is frozen once stage 1 starts; stage 1 trained only then
    assert_same_checkpoint(mid["stages"][0], end["stages"][0])
    assert all(torch.equal(mid["stages"][1]["G"][k], v) is False
               for k, v in end["stages"][1]["G"].items() if k.endswith("weight"))
    assert not mid["stages"][1]["opt_g"]["state"]  # stage 1's optimizer untouched in stage 0
    assert (run / "samples" / "step_00000012.png").is_file()  # drawn from the cascade


@pytest.mark.slow
def test_c_resume_in_the_middle_of_the_second_stage_is_exact(tmp_path):
    LOG.clear()
    straight = tmp_path / "straight"
    train(_staged(), straight)
    split = tmp_path / "split"
    train(_staged("train.steps=8"), split)
    LOG.clear()
    train(_staged("resume=auto"), split)
    assert LOG["begin"] == [(1, False, 8)]  # re-entered midway, not fresh
    assert_same_checkpoint(load_checkpoint(split / "checkpoints" / "last.pt"),
                           load_checkpoint(straight / "checkpoints" / "last.pt"))


# ---------------------------------------------------------------------------------------------
# (d) Batches that carry a condition image, and a G term that sees the real target.


class ImageConditionedG(nn.Module):
    """G(z, y) = w * y: an image-to-image generator in miniature (z is ignored)."""

    takes_condition = True

    def __init__(self):
        super().__init__()
        self.num_classes = 0
        self.w = nn.Parameter(torch.tensor(1.0))

    def forward(self, z, y=None):
        LOG.setdefault("G_y", []).append(y)
        return self.w * y


class SeesTheTarget:
    """A G term like pix2pix's L1: records what it was given."""

    net = "G"
    interval = 1

    def __call__(self, ctx: RegContext):
        LOG["term"] = (ctx.real, ctx.y, ctx.fake)
        return (ctx.fake - ctx.real).abs().mean(), {}


class ConditionedD(LinearD):
    def forward(self, x, y=None):
        LOG.setdefault("D_y", []).append(y)
        return super().forward(x)


def test_d_the_condition_reaches_G_and_D_and_a_G_term_sees_the_target():
    LOG.clear()
    data = ToyData(condition=True)
    G, D = ImageConditionedG(), ConditionedD(data_shape=(2,))
    pair = _pair(D, G, [SeesTheTarget()], lr=0.5)
    _step(data)(pair, 0, _plan(data, 0))
    (batch,) = data.batches  # one D update, its batch serves the G update too
    assert LOG["G_y"][0] is batch.y and all(y is batch.y for y in LOG["D_y"])
    real, y, fake = LOG["term"]
    assert real is batch.x and y is batch.y
    torch.testing.assert_close(fake.detach(), 1.0 * batch.y)  # G's output before its update
    # only the term moves w (the adversarial loss is multiplied by 0): the gradient of
    # mean |w y - x| at w = 1 with y = 2x is mean(sign(x) * 2x) = 2 mean|x|
    grad = (2 * batch.x.abs()).mean()
    torch.testing.assert_close(G.w.detach(), torch.tensor(1.0) - 0.5 * grad)
