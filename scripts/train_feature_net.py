#!/usr/bin/env python
"""Train the offline Fashion-MNIST feature network (gan_cli/metrics/feature_net.py).

Reproducible: fixed seed, deterministic algorithms, a fixed thread count. Trains on the real
Fashion-MNIST training split (60k), reports accuracy on the test split (10k), and writes

    gan_cli/metrics/weights/fashion_cnn.pt    state dict (float32, ~0.5 MB)
    gan_cli/metrics/weights/fashion_cnn.json  accuracy, seed, epochs, train time, exact command, sha256

Usage:
    PYTHONPATH=. python scripts/train_feature_net.py [--epochs 5] [--seed 0] [--root DIR] [--out DIR]
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

from gan_cli.data.idx import DEBIAN_FASHION_MNIST, load_mnist_like
from gan_cli.metrics.feature_net import WEIGHTS_DIR, FashionCNN


@torch.no_grad()
def accuracy(net: FashionCNN, x: torch.Tensor, y: torch.Tensor, batch: int = 1000) -> float:
    net.eval()
    correct = 0
    for i in range(0, len(x), batch):
        correct += (net(x[i : i + batch]).argmax(1) == y[i : i + batch]).sum().item()
    return correct / len(x)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--root", default=str(DEBIAN_FASHION_MNIST), help="folder with the IDX .gz files")
    p.add_argument("--out", default=str(WEIGHTS_DIR))
    args = p.parse_args(argv)

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)

    x_train, y_train = load_mnist_like("train", args.root)
    x_test, y_test = load_mnist_like("test", args.root)

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
            # light augmentation: random horizontal flip (clothes are left/right symmetric)
            flip = torch.rand(len(idx), generator=gen) < 0.5
            xb = torch.where(flip[:, None, None, None], xb.flip(-1), xb)
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
    weights = out / "fashion_cnn.pt"
    torch.save({k: v.detach().clone() for k, v in net.state_dict().items()}, weights)
    info = {
        "test_accuracy": round(test_acc, 4),
        "test_split": "Fashion-MNIST test (t10k), 10000 images",
        "train_split": "Fashion-MNIST train, 60000 images",
        "seed": args.seed,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "threads": args.threads,
        "train_seconds": round(train_seconds, 1),
        "parameters": sum(p.numel() for p in net.parameters()),
        "weights_bytes": weights.stat().st_size,
        "sha256": hashlib.sha256(weights.read_bytes()).hexdigest(),
        "torch_version": torch.__version__,
        "command": "PYTHONPATH=. python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *(argv or sys.argv[1:])]),
    }
    (out / "fashion_cnn.json").write_text(json.dumps(info, indent=2) + "\n")
    print(json.dumps(info, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
