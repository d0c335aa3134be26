"""Training speed: gan-cli's training loop against the plain loop a user would write, side by side.

One run times, case by case, gan-cli's real training function (``gan_cli.training.loop.train``
with a composed config, exactly what ``gan-train`` runs) against a plain PyTorch loop doing the
same work: the same networks (gan_cli.models, built from the same composed config), the same
batch, the same data already on the device, the same loss and the same optimizer.

    case     data                                   model                          loss, k   batch
    dcgan28  Fashion-MNIST 28 px (8,192 images)     DCGAN, width 64, z 100         ns, 1     64
    dcgan64  Fashion-MNIST resized to 64 px         DCGAN, width 64, z 100         ns, 1     64
    toy      ring8: 8 Gaussians, radius 2, sd 0.02  MLP 3 x 256, z 64              wgan_gp, 5  256
    sngan32  Fashion-MNIST at 32 px, 3 channels     SNGAN ResNet, spectral norm    hinge, 5  64
             (the shape of CIFAR-10, which no      in D, unconditional; widths
             package ships)                         G 32 / D 32 (the paper: 256 / 128)

(k = discriminator steps per generator step, ``loss.n_critic``.) The toy case turns off the EMA of
G that ring8's tuned defaults (conf/recipe/toy_mixture.yaml) switch on: the plain loop keeps none,
and both sides must do the same work; it also keeps the MLP of the issue's measurement (z of 64,
ReLU), not ring8's tuned MLP (conf/tuned/ring8_mlp.yaml). sngan32 is narrowed so that a
repeat takes seconds on a CPU; scripts/bench_gpu.py trains the paper's widths.

The reference loops (``reference_step``) are what a user copies from the well-known examples:

* ``dcgan``: pytorch/examples dcgan/main.py: D on a real batch (one backward), D on the detached
  fake batch (a second backward), one D step; D on the same fake batch for G, one G step; the
  example's five printed values (loss_d, loss_g, D(x), D(G(z)) twice) read back with ``.item()``
  every step, and ``cudnn.benchmark = True`` on a GPU, as that example sets.
* ``wgan_gp``: Gulrajani et al. 2017, algorithm 1, as the PyTorch port caogang/wgan-gp
  gan_toy.py writes it: k critic steps, each on a fresh real batch and a fake batch made without
  a graph, the gradient penalty on random interpolates (lambda from the config); D frozen
  (``requires_grad=False``) for the G step on fresh noise; the critic and generator costs read
  back once per generator step (that code logs them every iteration). The three critic terms are
  summed into one backward (the port calls backward three times: more work, not less). The real
  points are drawn on the device with two vectorised torch calls (the port draws them point by
  point in numpy).
* ``hinge``: SNGAN's updater (Miyato et al. 2018; pfnet-research/sngan_projection): k D steps on
  fresh real and fake batches (the fake one made without a graph), then a G step on fresh noise;
  both losses read back once per generator step.

Real images are normalised to [-1, 1] once, as one float tensor on the device, and visited in a
new random order every epoch (what ``DataLoader(shuffle=True, drop_last=True)`` gives, without
its per-batch copies); gan-cli pays for its own data path (a uint8 tensor on the device,
converted one batch at a time).

Timing. Both sides run 2 x STEPS generator steps and are timed over the second half, so
building, warm-up and (for gan-cli) the final figure and checkpoint are excluded. The speed is
real samples shown to D per second (batch x k per generator step), the ``imgs_per_s`` that
gan-cli writes to metrics.jsonl; for gan-cli it is read from there (the record of the last
step, which covers the second half), for the reference it is timed here (with a device
synchronisation at both ends on a GPU). Repeats alternate the two sides (reference first in
odd repeats, gan-cli first in even ones). Per case the script prints ``ratio <case> X.XX``: the
median over repeats of gan-cli / reference, each repeat's two runs taken back to back; then
both sides' medians with their spread (min..max).

    python scripts/bench_train.py                          # every case, 5 repeats, CPU
    python scripts/bench_train.py --cases toy,dcgan28 --repeats 9 --threads 1
    python scripts/bench_train.py --cases dcgan64 hardware.channels_last=false  # NCHW (CPU default: NHWC)
    python scripts/bench_train.py --dry                    # 2 steps, 1 repeat, tiny networks
    python scripts/bench_train.py --device cuda --json out.json

Extra arguments are gan-train overrides composed into the config both sides read (so
``model.generator.width=128`` changes both); ``hardware.*`` changes gan-cli only (the reference
is the plain fp32 loop).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig
from torch import nn

from gan_cli.build import build_data, build_discriminator, build_generator, build_loss
from gan_cli.cli import CONF_DIR
from gan_cli.config import register_configs, validate
from gan_cli.data.base import DataInfo
from gan_cli.training.loop import train as gan_cli_train

DRY_STEPS = 2  # --dry: timed steps per run (a run is twice as long) and one repeat

# -----------------------------------------------------------------------------------------------
# The cases.


@dataclass(frozen=True)
class Case:
    """One benchmark case.

    Attributes:
        name: what the ratio line calls it.
        overrides: gan-train overrides that define it (both sides read the composed config).
        reference: the plain loop's family: ``dcgan``, ``wgan_gp`` or ``hinge``.
        steps: timed generator steps per run on a CPU (a run is twice as long), so that a run
            takes seconds to tens of seconds on a 2-core machine.
        dry: overrides added by --dry: tiny networks and data, so the test suite runs it in seconds.
    """

    name: str
    overrides: tuple[str, ...]
    reference: str
    steps: int
    dry: tuple[str, ...] = ()


_DCGAN_DRY = ("dataset.limit=256", "model.generator.width=8", "model.discriminator.width=8")

CASES: dict[str, Case] = {c.name: c for c in (
    Case("dcgan28", ("dataset=fashion_mnist", "dataset.limit=8192", "model=dcgan", "loss=ns",
                     "optimizer=adam", "train.batch_size=64"), "dcgan", 40, _DCGAN_DRY),
    Case("dcgan64", ("dataset=fashion_mnist", "dataset.limit=8192", "dataset.resolution=64",
                     "model=dcgan", "loss=ns", "optimizer=adam", "train.batch_size=64"),
         "dcgan", 15, _DCGAN_DRY),
    Case("toy", ("dataset=ring8", "model=mlp", "model.generator.hidden=[256,256,256]",
                 "model.discriminator.hidden=[256,256,256]", "model.z_dim=64",
                 "model.generator.activation=relu", "loss=wgan_gp", "loss.n_critic=5",
                 "optimizer=adam", "train.batch_size=256",
                 "ema.half_life_kimg=null"), "wgan_gp", 200,
         ("model.generator.hidden=[16,16,16]", "model.discriminator.hidden=[16,16,16]")),
    Case("sngan32", ("dataset=fashion_mnist", "dataset.limit=8192", "dataset.resolution=32",
                     "dataset.channels=3", "model=sngan", "model.generator.conditional=false",
                     "model.discriminator.conditioning=none", "model.generator.width=32",
                     "model.discriminator.width=32", "loss=hinge", "loss.n_critic=5",
                     "optimizer=adam", "optimizer.betas=[0.0,0.9]", "train.batch_size=64"),
         "hinge", 10, ("dataset.limit=256", "model.generator.width=8", "model.discriminator.width=8")),
)}


def bench_overrides(steps: int, hardware: Sequence[str]) -> list[str]:
    """What both sides' config gets for a timed run of 2 x ``steps`` generator steps: one log
    record at ``steps`` and one at the end (the timed half), no figure or checkpoint before the
    end, no metrics, no W&B."""
    return ["logger=none", "metrics.every_steps=0", f"train.steps={2 * steps}",
            f"train.log_every_steps={steps}", f"train.sample_every_steps={2 * steps}",
            f"train.ckpt_every_steps={2 * steps}", "train.keep_ckpts=0", *hardware]


def hardware_overrides(device: str, threads: int) -> list[str]:
    """gan-cli's hardware group for ``device``: plain fp32, ``threads`` torch threads (0 = default)."""
    return [f"hardware={'gpu' if device == 'cuda' else 'cpu'}", f"hardware.num_threads={threads}"]


def compose_config(overrides: Sequence[str]) -> DictConfig:
    """gan-train's config for ``overrides``, composed and checked as the command line does."""
    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="train", overrides=list(overrides))
    validate(cfg)
    return cfg


# -----------------------------------------------------------------------------------------------
# gan-cli's side.


def gan_cli_imgs_per_s(cfg: DictConfig) -> float:
    """Real samples/s that gan-cli's own loop logs over the second half of the run ``cfg`` holds.

    Args:
        cfg: a composed config with ``bench_overrides``.

    Returns:
        ``imgs_per_s`` of the last metrics.jsonl record (generator steps ``steps + 1`` to
        ``2 x steps``).
    """
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        gan_cli_train(cfg, Path(tmp))
        lines = (Path(tmp) / "metrics.jsonl").read_text().splitlines()
    last = json.loads(lines[-1])
    if last["step"] != cfg.train.steps:
        raise RuntimeError(f"gan-cli's last record is for step {last['step']}, not {cfg.train.steps}")
    return float(last["imgs_per_s"])


# -----------------------------------------------------------------------------------------------
# The reference side: plain loops.


class EpochBatches:
    """Batches of a tensor on the device in a new random order every epoch (the last partial
    batch dropped), as ``DataLoader(dataset, shuffle=True, drop_last=True)`` visits a dataset."""

    def __init__(self, x: torch.Tensor, batch_size: int) -> None:
        self.x, self.batch_size = x, batch_size
        self.order = torch.randperm(len(x), device=x.device)
        self.position = 0

    def next(self) -> torch.Tensor:
        if self.position + self.batch_size > len(self.x):
            self.order = torch.randperm(len(self.x), device=self.x.device)
            self.position = 0
        idx = self.order[self.position : self.position + self.batch_size]
        self.position += self.batch_size
        return self.x[idx]


def ring_sampler(num_modes: int, radius: float, std: float, batch_size: int,
                 device: torch.device) -> Callable[[], torch.Tensor]:
    """Fresh points of the ring of Gaussians (``dataset=ring8``) on the device, one batch a call:
    centre k is ``radius (cos 2 pi k / K, sin 2 pi k / K)``, plus N(0, std^2) noise."""
    angle = torch.arange(num_modes, device=device) * (2 * torch.pi / num_modes)
    centres = radius * torch.stack([angle.cos(), angle.sin()], dim=1)

    def sample() -> torch.Tensor:
        k = torch.randint(num_modes, (batch_size,), device=device)
        return centres[k] + std * torch.randn(batch_size, 2, device=device)

    return sample


def adam(params: Iterator[nn.Parameter], node: DictConfig, lr: float) -> torch.optim.Adam:
    """``torch.optim.Adam`` with the config's settings, as a user writes it."""
    if node._target_ != "torch.optim.Adam":
        raise ValueError(f"the reference loops use Adam; the config asks for {node._target_}")
    return torch.optim.Adam(params, lr=lr, betas=tuple(node.betas), eps=node.eps,
                            weight_decay=node.weight_decay)


def dcgan_step(G: nn.Module, D: nn.Module, opt_g, opt_d, real: EpochBatches, z_dim: int,
               batch_size: int, device: torch.device) -> Callable[[], tuple[float, ...]]:
    """One iteration of pytorch/examples dcgan/main.py (D outputs logits here, hence
    BCEWithLogitsLoss where the example has a sigmoid and BCELoss)."""
    criterion = nn.BCEWithLogitsLoss()
    label = torch.empty(batch_size, device=device)

    def step() -> tuple[float, ...]:
        # (1) Update D: maximize log(D(x)) + log(1 - D(G(z)))
        D.zero_grad()
        label.fill_(1.0)
        output = D(real.next())
        err_d_real = criterion(output, label)
        err_d_real.backward()
        d_x = output.mean().item()
        fake = G(torch.randn(batch_size, z_dim, device=device))
        label.fill_(0.0)
        output = D(fake.detach())
        err_d_fake = criterion(output, label)
        err_d_fake.backward()
        d_g_z1 = output.mean().item()
        err_d = err_d_real + err_d_fake
        opt_d.step()
        # (2) Update G: maximize log(D(G(z)))
        G.zero_grad()
        label.fill_(1.0)
        output = D(fake)
        err_g = criterion(output, label)
        err_g.backward()
        d_g_z2 = output.mean().item()
        opt_g.step()
        return err_d.item(), err_g.item(), d_x, d_g_z1, d_g_z2  # the example prints these

    return step


def wgan_gp_step(G: nn.Module, D: nn.Module, opt_g, opt_d, real: Callable[[], torch.Tensor],
                 z_dim: int, batch_size: int, n_critic: int, gp_lambda: float,
                 device: torch.device) -> Callable[[], tuple[float, ...]]:
    """One generator iteration of WGAN-GP (Gulrajani et al. 2017, algorithm 1):

        L_D = D(x~) - D(x) + lambda (||grad D(x^)||_2 - 1)^2,  x^ = eps x + (1 - eps) x~
    """

    def step() -> tuple[float, ...]:
        D.requires_grad_(True)
        for _ in range(n_critic):
            x = real()
            with torch.no_grad():
                fake = G(torch.randn(batch_size, z_dim, device=device))
            eps = torch.rand(batch_size, *([1] * (x.dim() - 1)), device=device)
            x_hat = (eps * x + (1 - eps) * fake).requires_grad_(True)
            (grad,) = torch.autograd.grad(D(x_hat).sum(), x_hat, create_graph=True)
            penalty = (grad.flatten(1).norm(2, dim=1) - 1).pow(2).mean()
            d_cost = D(fake).mean() - D(x).mean() + gp_lambda * penalty
            opt_d.zero_grad()
            d_cost.backward()
            opt_d.step()
        D.requires_grad_(False)  # to avoid computation
        g_cost = -D(G(torch.randn(batch_size, z_dim, device=device))).mean()
        opt_g.zero_grad()
        g_cost.backward()
        opt_g.step()
        return d_cost.item(), g_cost.item()  # logged every generator iteration

    return step


def hinge_step(G: nn.Module, D: nn.Module, opt_g, opt_d, real: EpochBatches, z_dim: int,
               batch_size: int, n_critic: int, device: torch.device) -> Callable[[], tuple[float, ...]]:
    """One generator iteration of SNGAN's updater with the hinge loss (Miyato et al. 2018):

        L_D = mean relu(1 - D(x)) + mean relu(1 + D(G(z))),   L_G = -mean D(G(z))
    """

    def step() -> tuple[float, ...]:
        for _ in range(n_critic):
            x = real.next()
            with torch.no_grad():
                fake = G(torch.randn(batch_size, z_dim, device=device))
            loss_d = F.relu(1 - D(x)).mean() + F.relu(1 + D(fake)).mean()
            opt_d.zero_grad()
            loss_d.backward()
            opt_d.step()
        loss_g = -D(G(torch.randn(batch_size, z_dim, device=device))).mean()
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()
        return loss_d.item(), loss_g.item()

    return step


def device_images(cfg: DictConfig, device: torch.device) -> tuple[torch.Tensor, DataInfo]:
    """The run's images (the same ones gan-cli trains on) as one float tensor in [-1, 1] on the
    device, normalised once, with their shape facts."""
    data = build_data(cfg.dataset, batch_size=cfg.train.batch_size, device=device, seed=cfg.seed)
    if not hasattr(data, "images"):
        raise ValueError("the reference loops need the images in memory (dataset.in_memory=true)")
    return data.images.float().div(127.5).sub(1.0), data.info


def reference_step(case: Case, cfg: DictConfig, device: torch.device
                   ) -> tuple[Callable[[], tuple[float, ...]], int]:
    """The plain loop of ``case`` on ``cfg``'s networks, data, loss and optimizer.

    Returns:
        ``(step, samples_per_step)``: one generator iteration, and the real samples it shows D
        (batch x n_critic).
    """
    batch, n_critic = int(cfg.train.batch_size), int(cfg.loss.n_critic)
    if case.reference == "wgan_gp":
        ds = cfg.dataset
        if not ds._target_.endswith("ring_of_gaussians"):
            raise ValueError("the wgan_gp reference draws the ring of Gaussians (dataset=ring8)")
        real = ring_sampler(ds.num_modes, ds.radius, ds.std, batch, device)
        info = DataInfo(shape=(2,))
    else:
        images, info = device_images(cfg, device)
        real = EpochBatches(images, batch)
    # The networks gan-cli builds from this config (same classes, widths, norms, spectral norm);
    # only the loop around them differs.
    G = build_generator(cfg.model, info).to(device)
    D = build_discriminator(cfg.model, info, "score",
                            per_sample=build_loss(cfg.loss).double_backward).to(device)
    opt_g = adam(G.parameters(), cfg.optimizer, cfg.optimizer.lr_g)
    opt_d = adam(D.parameters(), cfg.optimizer, cfg.optimizer.lr_d)
    z_dim = int(cfg.model.z_dim)
    if case.reference == "dcgan":
        step = dcgan_step(G, D, opt_g, opt_d, real, z_dim, batch, device)
    elif case.reference == "wgan_gp":
        step = wgan_gp_step(G, D, opt_g, opt_d, real, z_dim, batch, n_critic, cfg.loss.gp_lambda,
                            device)
    elif case.reference == "hinge":
        step = hinge_step(G, D, opt_g, opt_d, real, z_dim, batch, n_critic, device)
    else:
        raise ValueError(f"no reference loop {case.reference!r}")
    return step, batch * n_critic


@contextlib.contextmanager
def cudnn_benchmark(enabled: bool) -> Iterator[None]:
    """``torch.backends.cudnn.benchmark = enabled`` inside the block only (the DCGAN example
    sets it; gan-cli's side keeps torch's default)."""
    before = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = enabled
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = before


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reference_imgs_per_s(case: Case, cfg: DictConfig, device: torch.device) -> float:
    """Real samples/s of the plain loop over the second half of 2 x ``steps`` generator steps
    (``steps`` = cfg.train.log_every_steps, as on gan-cli's side)."""
    steps = int(cfg.train.log_every_steps)
    with cudnn_benchmark(case.reference == "dcgan" and device.type == "cuda"):
        step, samples_per_step = reference_step(case, cfg, device)
        for _ in range(steps):  # the first half: warm-up
            step()
        sync(device)
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        sync(device)
        elapsed_s = time.perf_counter() - t0
    return steps * samples_per_step / elapsed_s


# -----------------------------------------------------------------------------------------------
# Repeats and the summary.


@dataclass
class Summary:
    """Both sides' speeds over the repeats of one case.

    Attributes:
        ratio: median over repeats of gan_cli[i] / reference[i] (the ratio line).
        gan_cli_median, reference_median: each side's median (samples/s).
        gan_cli_range, reference_range: each side's (min, max) (samples/s).
        ratio_range: (min, max) of the per-repeat ratios.
    """

    ratio: float
    gan_cli_median: float
    reference_median: float
    gan_cli_range: tuple[float, float]
    reference_range: tuple[float, float]
    ratio_range: tuple[float, float]


def summarize(reference: Sequence[float], gan_cli: Sequence[float]) -> Summary:
    """Medians and spreads of one case's repeats (``reference[i]`` and ``gan_cli[i]`` were
    measured back to back in repeat i)."""
    if len(reference) != len(gan_cli) or not reference:
        raise ValueError("one reference and one gan-cli figure per repeat, at least one repeat")
    ratios = [o / r for o, r in zip(gan_cli, reference, strict=True)]
    return Summary(ratio=statistics.median(ratios), gan_cli_median=statistics.median(gan_cli),
                   reference_median=statistics.median(reference),
                   gan_cli_range=(min(gan_cli), max(gan_cli)),
                   reference_range=(min(reference), max(reference)),
                   ratio_range=(min(ratios), max(ratios)))


def run_case(case: Case, args: argparse.Namespace, device: torch.device) -> dict:
    """Alternate the two sides ``args.repeats`` times; return the figures and their summary."""
    steps = DRY_STEPS if args.dry else (args.steps or case.steps)
    overrides = [*case.overrides, *(case.dry if args.dry else ()),
                 *bench_overrides(steps, hardware_overrides(args.device, args.threads)),
                 *args.overrides]
    cfg = compose_config(overrides)
    reference, ours = [], []
    for i in range(args.repeats):
        sides = [("reference", reference, lambda: reference_imgs_per_s(case, cfg, device)),
                 ("gan-cli", ours, lambda: gan_cli_imgs_per_s(cfg))]
        for _, figures, measure in (sides if i % 2 == 0 else sides[::-1]):
            figures.append(measure())
        print(f"{case.name} repeat {i + 1}/{args.repeats}: reference {reference[-1]:9.1f}/s   "
              f"gan-cli {ours[-1]:9.1f}/s   ratio {ours[-1] / reference[-1]:.3f}", flush=True)
    return {"steps": steps, "repeats": args.repeats, "overrides": overrides,
            "reference": reference, "gan_cli": ours,
            "summary": summarize(reference, ours).__dict__}


def summary_lines(name: str, result: dict) -> list[str]:
    """The ratio line and the medians line of one case."""
    s = Summary(**result["summary"])
    return [
        f"ratio {name} {s.ratio:.2f}",
        f"  {name}: gan-cli {s.gan_cli_median:.1f}/s ({s.gan_cli_range[0]:.1f}..{s.gan_cli_range[1]:.1f}), "
        f"reference {s.reference_median:.1f}/s ({s.reference_range[0]:.1f}..{s.reference_range[1]:.1f}), "
        f"per-repeat ratios {s.ratio_range[0]:.2f}..{s.ratio_range[1]:.2f}; "
        f"{result['repeats']} repeats of {result['steps']} timed steps (real samples shown to D per s)",
    ]


def machine_line(device: torch.device) -> str:
    gpu = f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""
    return (f"# {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch "
            f"threads, torch {torch.__version__}, device {device}{gpu}")


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cases", default=",".join(CASES),
                   help=f"comma-separated cases (default: all: {','.join(CASES)})")
    p.add_argument("--repeats", type=int, default=5, help="runs of each side per case (default 5)")
    p.add_argument("--steps", type=int, default=0,
                   help="timed generator steps per run (a run is twice as long); 0 = each case's "
                        "own: " + ", ".join(f"{c.name} {c.steps}" for c in CASES.values()))
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads; 0 = torch's default")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--dry", action="store_true",
                   help=f"{DRY_STEPS} steps, 1 repeat, tiny networks: checks that it runs (test suite)")
    p.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    p.add_argument("overrides", nargs="*", help="gan-train overrides for both sides' config")
    args = p.parse_args(argv)
    if args.dry:
        args.repeats = 1
    names = [n.strip() for n in args.cases.split(",") if n.strip()]
    unknown = [n for n in names if n not in CASES]
    if unknown:
        p.error(f"unknown case(s) {unknown}; choose from {list(CASES)}")

    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(machine_line(device), flush=True)
    if args.dry:
        print("# --dry: tiny networks, 2 steps: the figures say nothing about speed", flush=True)
    results = {name: run_case(CASES[name], args, device) for name in names}
    print()
    for name, result in results.items():
        print("\n".join(summary_lines(name, result)))
    if args.json is not None:
        args.json.write_text(json.dumps({"machine": machine_line(device), "device": str(device),
                                         "threads": torch.get_num_threads(), "cases": results},
                                        indent=2) + "\n")


if __name__ == "__main__":
    main()
