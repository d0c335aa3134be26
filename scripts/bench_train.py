"""Training speed: gan-cli's loop against a plain DCGAN loop, same process, same everything.

The reference is the well-known pytorch/examples DCGAN loop structure, written out below: D on a
real batch, D on a detached fake batch, one D step, then G through D, one G step, with the loss
values read back every step as that example prints them. Both loops train the same networks
(gan_cli.models.dcgan, same widths), on the same Fashion-MNIST images at the same batch size and
resolution, on the same device. The reference gets its data for free (a pre-normalised float
tensor on the device, indexed at random); gan-cli pays for its own data path.

gan-cli's figure is the images/s it logs itself (metrics.jsonl) over the second half of a run of
2 x STEPS steps, so building, warm-up, the final figure and checkpoint are excluded. The reference
is timed over STEPS steps after STEPS // 4 warm-up steps. Repeats alternate the two; the medians
are compared.

    python scripts/bench_train.py                    # CPU, the default experiment's settings
    python scripts/bench_train.py --device cuda      # GPU: gan-cli with bf16, channels_last, compile
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir

from gan_cli.cli import CONF_DIR
from gan_cli.config import register_configs, validate
from gan_cli.data.images import fashion_mnist
from gan_cli.models.dcgan import Discriminator, Generator
from gan_cli.training.loop import train as run


def reference_loop(args: argparse.Namespace, device: torch.device) -> float:
    """Images/s of a plain DCGAN loop in the pytorch/examples structure."""
    torch.manual_seed(0)
    data = fashion_mnist(batch_size=args.batch, device=device, limit=args.limit,
                         resolution=args.resolution)
    images = (data.images.float() / 127.5 - 1).to(device)  # normalised once, for free
    shape = tuple(images.shape[1:])
    netG = Generator(z_dim=args.z_dim, data_shape=shape, width=args.width).to(device)
    netD = Discriminator(data_shape=shape, width=args.width).to(device)
    optD = torch.optim.Adam(netD.parameters(), lr=2e-4, betas=(0.5, 0.999))
    optG = torch.optim.Adam(netG.parameters(), lr=2e-4, betas=(0.5, 0.999))
    criterion = torch.nn.BCEWithLogitsLoss()
    real_label, fake_label = 1.0, 0.0

    def iteration() -> None:
        idx = torch.randint(len(images), (args.batch,), device=device)
        real = images[idx]
        # (1) Update D: maximize log(D(x)) + log(1 - D(G(z)))
        netD.zero_grad()
        label = torch.full((args.batch,), real_label, device=device)
        errD_real = criterion(netD(real), label)
        errD_real.backward()
        noise = torch.randn(args.batch, args.z_dim, device=device)
        fake = netG(noise)
        label.fill_(fake_label)
        errD_fake = criterion(netD(fake.detach()), label)
        errD_fake.backward()
        optD.step()
        # (2) Update G: maximize log(D(G(z)))
        netG.zero_grad()
        label.fill_(real_label)
        errG = criterion(netD(fake), label)
        errG.backward()
        optG.step()
        _ = (errD_real + errD_fake).item(), errG.item()  # the example prints these every step

    for _ in range(max(1, args.steps // 4)):
        iteration()
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(args.steps):
        iteration()
    _sync(device)
    return args.steps * args.batch / (time.perf_counter() - t0)


def project_loop(args: argparse.Namespace, overrides: list[str]) -> float:
    """Images/s that gan-cli's own loop logs over the second half of a 2 x steps run."""
    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="train", overrides=[
            "dataset=fashion_mnist", f"dataset.limit={args.limit}",
            f"dataset.resolution={args.resolution}", "model=dcgan", "loss=ns", "optimizer=adam",
            "logger=none", f"model.z_dim={args.z_dim}", f"model.generator.width={args.width}",
            f"model.discriminator.width={args.width}", f"train.batch_size={args.batch}",
            f"train.steps={2 * args.steps}", f"train.log_every_steps={args.steps}",
            f"train.sample_every_steps={10 * args.steps}",
            f"train.ckpt_every_steps={10 * args.steps}", "train.keep_ckpts=0",
            "metrics.every_steps=0", *overrides])
    validate(cfg)
    with tempfile.TemporaryDirectory() as tmp:
        run(cfg, Path(tmp))
        records = [json.loads(x) for x in (Path(tmp) / "metrics.jsonl").read_text().splitlines()]
    return records[-1]["imgs_per_s"]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--batch", type=int, default=64, help="images per step (default 64)")
    p.add_argument("--resolution", type=int, default=28)
    p.add_argument("--width", type=int, default=64, help="DCGAN width (channels)")
    p.add_argument("--z-dim", type=int, default=100)
    p.add_argument("--steps", type=int, default=40, help="timed steps per repeat")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--limit", type=int, default=8192, help="Fashion-MNIST images used")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads; 0 = default")
    p.add_argument("overrides", nargs="*", help="extra gan-train overrides for gan-cli's loop")
    args = p.parse_args()

    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    hw = ["hardware=cpu"] if args.device == "cpu" else [
        "hardware=gpu", "hardware.precision=bf16", "hardware.channels_last=true",
        "hardware.compile=true"]
    overrides = [*hw, *args.overrides]
    print(f"# {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, device {device}"
          + (f" ({torch.cuda.get_device_name()})" if device.type == "cuda" else ""))
    print(f"# DCGAN width {args.width}, {args.resolution}x{args.resolution}, batch {args.batch}, "
          f"{args.steps} timed steps x {args.repeats} repeats; gan-cli overrides: {overrides}")
    ref, ours = [], []
    for i in range(args.repeats):
        ref.append(reference_loop(args, device))
        ours.append(project_loop(args, overrides))
        print(f"repeat {i + 1}: reference {ref[-1]:8.1f} img/s   gan-cli {ours[-1]:8.1f} img/s   "
              f"ratio {ours[-1] / ref[-1]:.3f}")
    r, o = statistics.median(ref), statistics.median(ours)
    print(f"median: reference {r:.1f} img/s, gan-cli {o:.1f} img/s, ratio {o / r:.3f}")


if __name__ == "__main__":
    main()
