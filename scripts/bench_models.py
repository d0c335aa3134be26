"""Training speed and peak memory of every model family at the widths ``model=<name>`` gives.

Each family trains in a fresh process (this script with ``--child``), so that its peak resident
memory is its own: ``gan_cli.training.loop.train``, the loop gan-train runs, for ``--warmup`` +
``--steps`` generator steps with a record every step. The timed window is the last ``--steps``
steps: images shown to D (``kimg`` in metrics.jsonl) over the process's CPU time (all threads,
``time.process_time``) and over the wall time between the records, so building, warm-up and the
final figure and checkpoint are left out. Peak memory is what gan-train logs at the end of a run
(``peak_rss_mib``: maximum resident set size; ``cuda_max_allocated_mib`` on a GPU). A growing
model (ProGAN, StyleGAN) has its schedule shortened to one step per stage, so it trains at the
data's full side from its third step; LAPGAN and SinGAN train their levels (scales) in turn, as a
run does, so the window covers the first levels. Images are Fashion-MNIST at 28 px, batch 64
(gan-train's defaults; pix2pix on its Fashion-MNIST edges -> image pairs, SinGAN on its single
image at batch 1, its BatchNorm D with the per-sample penalty allows no other).

    python scripts/bench_models.py                          # the eleven families, one thread
    python scripts/bench_models.py --only stylegan stylegan2 --steps 3
    python scripts/bench_models.py "stylegan2-fused stylegan2 model.generator.modconv=fused"
    python scripts/bench_models.py --modconv               # fused against unfused modulated conv
    python scripts/bench_models.py --parts --batch 16      # StyleGAN2: CPU s of each part of a step,
                                                           # upsample=transposed and bilinear in turn
    python scripts/bench_models.py --device cuda           # hardware=gpu; adds peak CUDA memory
    python scripts/bench_models.py --dry                   # two narrowed families, 1 + 1 steps

A setting is "label family override override ...": the family's own overrides, then these.
CPU time is the fairer figure on a machine shared with other jobs (the wall time then measures
the other jobs too); both are printed, with the load average before and after.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COMMON = ["logger=none", "metrics.every_steps=0", "train.log_every_steps=1",
          "train.sample_every_steps=1000000", "train.ckpt_every_steps=1000000"]
GROW_FAST = ["model.schedule.training_kimg=0.001", "model.schedule.transition_kimg=0"]
FASHION = ["dataset.limit=4096"]  # the first 4,096 images: loaded in a second
# family -> its overrides: model=<name> at its preset widths, the data it needs
FAMILIES: dict[str, list[str]] = {
    "dcgan": ["model=dcgan", *FASHION],
    "resnet": ["model=resnet", *FASHION],
    "sngan": ["model=sngan", *FASHION],
    "sagan": ["model=sagan", *FASHION],
    "biggan": ["model=biggan", *FASHION],
    "progan": ["model=progan", *FASHION, *GROW_FAST],
    "stylegan": ["model=stylegan", *FASHION, *GROW_FAST],
    "stylegan2": ["model=stylegan2", *FASHION],
    "pix2pix": ["model=pix2pix", "dataset=fashion_edges", "dataset.limit=4096"],
    "lapgan": ["model=lapgan", *FASHION],
    "singan": ["model=singan", "dataset=single_image", "loss=singan_wgan_gp", "train.batch_size=1"],
}
# --dry (the test suite): two families, narrowed, 1 + 1 steps of batch 8; its figures say nothing
DRY = {"dcgan": ["model.generator.width=8", "model.discriminator.width=8"],
       "stylegan2": [f"model.{net}.{key}" for net in ("generator", "discriminator")
                     for key in ("channel_base=112", "channel_max=16")]
       + ["model.z_dim=16", "model.generator.w_dim=16", "model.generator.mapping_layers=2"]}
REPO = Path(__file__).resolve().parents[1]


def compose_train(overrides: list[str]):
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from gan_cli.cli import CONF_DIR
    from gan_cli.config import register_configs, validate

    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides)
    validate(cfg)
    return cfg


def child(overrides: list[str], warmup: int, steps: int) -> dict:
    """Train in this process; the timed window's images/s (CPU and wall) and the peak memory."""
    from gan_cli.stats import RunLog
    from gan_cli.training.loop import train

    logging.getLogger("gan_cli").setLevel(logging.WARNING)
    marks: dict[int, tuple[float, float]] = {}  # step -> (CPU s, wall s) when its record was written
    write = RunLog.write

    def timed_write(self, record):
        marks[record["step"]] = (time.process_time(), time.perf_counter())
        write(self, record)

    RunLog.write = timed_write
    cfg = compose_train([*overrides, f"train.steps={warmup + steps}"])
    with tempfile.TemporaryDirectory() as tmp:
        last = train(cfg, Path(tmp))
        records = [json.loads(line) for line in (Path(tmp) / "metrics.jsonl").read_text().splitlines()]
    kimg = {r["step"]: r["kimg"] for r in records}
    (c0, w0), (c1, w1) = marks[warmup], marks[warmup + steps]
    images = 1000 * (kimg[warmup + steps] - kimg[warmup])
    return {"imgs_per_cpu_s": images / (c1 - c0), "imgs_per_s": images / (w1 - w0),
            "cpu_s_per_step": (c1 - c0) / steps, "peak_rss_mib": last["peak_rss_mib"],
            "cuda_max_allocated_mib": last.get("cuda_max_allocated_mib")}


def machine(device: str) -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    text = (f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}, "
            f"{torch.get_num_threads()} thread(s), load average {os.getloadavg()[0]:.2f}")
    if device == "cuda":
        text += f", {torch.cuda.get_device_name()}"
    return text


def bench_modconv(repeats: int) -> None:
    """Fused against unfused modulated 3x3 convolution: ms per call, training (forward + backward)
    and sampling (no graph), at StyleGAN2's widths."""
    import torch

    from gan_cli.models.style_layers import modulated_conv2d

    def ms(fn) -> float:
        fn()
        best = float("inf")
        for _ in range(repeats):
            t = time.process_time()
            fn()
            best = min(best, time.process_time() - t)
        return 1000 * best

    print(f"modulated 3x3 convolution, best of {repeats}, CPU ms per call ({machine('cpu')})")
    print(f"{'case':<34}{'unfused':>10}{'fused':>10}")
    for n, c, side in ((64, 512, 7), (64, 512, 14), (64, 128, 28), (32, 512, 14), (1, 512, 28)):
        x = torch.randn(n, c, side, side)
        w = torch.randn(c, c, 3, 3) / (9 * c) ** 0.5
        s = torch.randn(n, c)
        for train in (True, False):
            if train and n == 1:
                continue
            row = []
            for fused in (False, True):
                if train:
                    xg, wg, sg = (t.clone().requires_grad_() for t in (x, w, s))

                    def step(xg=xg, wg=wg, sg=sg, fused=fused):
                        modulated_conv2d(xg, wg, sg, fused=fused).sum().backward()
                else:
                    def step(x=x, w=w, s=s, fused=fused):
                        with torch.no_grad():
                            modulated_conv2d(x, w, s, fused=fused)
                row.append(ms(step))
            what = "train (fwd+bwd)" if train else "sample (no graph)"
            print(f"{f'{what} N={n} C={c} {side}px':<34}{row[0]:>10.1f}{row[1]:>10.1f}", flush=True)


def bench_parts(batch: int, settings: dict[str, list[str]], repeats: int) -> None:
    """CPU seconds of each part of a StyleGAN2 step on 28 px images, in the order GANStep runs them,
    for each setting ("label override ...") in turn, ``repeats`` rounds (after one untimed): the
    median per part, so that a shared machine's load falls on every setting alike."""
    import statistics

    import torch

    from gan_cli.build import build_discriminator, build_generator, build_loss, build_regularizers
    from gan_cli.data.base import DataInfo
    from gan_cli.losses.regularizers import RegContext

    info, real = DataInfo((1, 28, 28), 0, True), torch.randn(batch, 1, 28, 28)
    built = {}
    for label, overrides in settings.items():
        cfg = compose_train(["model=stylegan2", *overrides])
        built[label] = (build_generator(cfg.model, info),
                        build_discriminator(cfg.model, info, "score", per_sample=True),
                        build_loss(cfg.loss), build_regularizers(cfg.loss, cfg.model))
    times: dict[str, dict[str, list[float]]] = {label: {} for label in settings}

    def timed(label, name, fn):
        t = time.process_time()
        out = fn()
        times[label].setdefault(name, []).append(time.process_time() - t)
        return out

    for _ in range(repeats + 1):
        for label, (G, D, loss, regs) in built.items():
            fake = timed(label, "G forward (graph)", lambda G=G: G(torch.randn(batch, G.z_dim)))
            loss_d = timed(label, "D forward, real + fake",
                           lambda D=D, loss=loss, fake=fake: loss.d_loss(D, real, fake.detach(), None)[0])
            timed(label, "D backward", loss_d.backward)
            D.requires_grad_(False)
            loss_g = timed(label, "G update: D forward",
                           lambda D=D, loss=loss, fake=fake: loss.g_loss(D, fake, None)[0])
            timed(label, "G update: backward (D inputs, G)", loss_g.backward)
            G.requires_grad_(False)
            for reg in regs:  # lazy: their own gradients, on the bare networks
                net = D if reg.net == "D" else G
                net.requires_grad_(True)
                ctx = RegContext(G=G, D=D, real=real, y=None, fake=None, z=torch.randn(batch, G.z_dim))
                term = timed(label, f"lazy {type(reg).__name__}: term", lambda reg=reg, ctx=ctx: reg(ctx)[0])
                timed(label, f"lazy {type(reg).__name__}: gradients", lambda net=net, term=term:
                      torch.autograd.grad(term, list(net.parameters()), allow_unused=True))
                net.requires_grad_(False)
            G.requires_grad_(True), D.requires_grad_(True)
            del fake, loss_d, loss_g
    print(f"StyleGAN2 step parts, batch {batch}, median CPU s of {repeats} ({machine('cpu')})")
    print(f"{'part':<40}" + "".join(f"{label:>14}" for label in settings))
    names = list(next(iter(times.values())))
    plain = names[:5]
    for name in [*names, "plain step (the first five)"]:
        row = [sum(statistics.median(t[n][1:]) for n in plain) if name.startswith("plain")
               else statistics.median(t[name][1:]) for t in times.values()]
        print(f"{name:<40}" + "".join(f"{v:>14.2f}" for v in row))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("settings", nargs="*", help='"label family override ..." (default: every family)')
    parser.add_argument("--only", nargs="+", choices=list(FAMILIES), help="these families only")
    parser.add_argument("--steps", type=int, default=4, help="timed generator steps")
    parser.add_argument("--warmup", type=int, default=3, help="generator steps before the timed ones")
    parser.add_argument("--threads", type=int, default=1, help="hardware.num_threads")
    parser.add_argument("--batch", type=int, default=64, help="train.batch_size (gan-train's default: 64)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--modconv", action="store_true", help="fused against unfused modulated conv")
    parser.add_argument("--repeats", type=int, default=3, help="--modconv: calls timed per case")
    parser.add_argument("--parts", action="store_true",
                        help='StyleGAN2: CPU s of each part of a step; settings "label override ..."')
    parser.add_argument("--dry", action="store_true", help="two narrowed families, 1 + 1 steps (tests)")
    parser.add_argument("--child", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.dry:
        args.warmup, args.steps, args.batch = 1, 1, 8
    if args.child is not None:
        print(json.dumps(child(args.child, args.warmup, args.steps)))
        return
    if args.parts:
        import torch

        torch.set_num_threads(args.threads)
        dry = DRY["stylegan2"] if args.dry else []
        settings = {s.split()[0]: [*dry, *s.split()[1:]] for s in args.settings or
                    ["transposed", "bilinear model.generator.upsample=bilinear"]}
        bench_parts(args.batch, settings, 1 if args.dry else args.repeats)
        return
    if args.modconv:
        import torch

        torch.set_num_threads(args.threads)
        bench_modconv(args.repeats)
        return
    hardware = ["hardware=gpu"] if args.device == "cuda" else ["hardware=cpu"]
    hardware += [f"hardware.num_threads={args.threads}", f"train.batch_size={args.batch}"]
    if args.settings:
        settings = {s.split()[0]: [*FAMILIES[s.split()[1]], *s.split()[2:]] for s in args.settings}
    elif args.dry:
        settings = {name: [*FAMILIES[name], *small] for name, small in DRY.items()}
    else:
        settings = {name: FAMILIES[name] for name in args.only or FAMILIES}
    env = {**os.environ, "PYTHONPATH": str(REPO), "WANDB_MODE": "disabled", "WANDB_SILENT": "true"}
    print(f"machine: {machine(args.device)}")
    print(f"{args.warmup} + {args.steps} timed steps each, Fashion-MNIST 28 px, batch {args.batch}, "
          f"{args.threads} thread(s), one process per family")
    cuda = args.device == "cuda"
    print(f"{'family':<14}{'img/s (CPU)':>12}{'img/s (wall)':>14}{'CPU s/step':>12}{'peak RSS MiB':>14}"
          + (f"{'CUDA MiB':>10}" if cuda else ""), flush=True)
    failed = 0
    for name, overrides in settings.items():
        cmd = [sys.executable, str(Path(__file__).resolve()), "--warmup", str(args.warmup), "--steps",
               str(args.steps), "--child", *COMMON, *hardware, *overrides]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tempfile.gettempdir())
        if proc.returncode != 0:
            print(f"{name:<14}failed (exit {proc.returncode}): {proc.stderr.strip().splitlines()[-1:]}",
                  flush=True)
            failed += 1
            continue
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        print(f"{name:<14}{r['imgs_per_cpu_s']:>12.1f}{r['imgs_per_s']:>14.1f}{r['cpu_s_per_step']:>12.2f}"
              f"{r['peak_rss_mib']:>14,.0f}" + (f"{r['cuda_max_allocated_mib']:>10,.0f}" if cuda else ""),
              flush=True)
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
