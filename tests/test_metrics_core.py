"""Unit tests for gan_cli.metrics: Frechet distance, IS, KID, PR, mode metrics, NN check, cache."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import torch

from gan_cli.errors import ConfigError
from gan_cli.metrics import (
    FeatureStats,
    RealData,
    compute_metrics,
    frechet_distance,
    frechet_distance_stats,
    inception_score,
    kernel_inception_distance,
    load_or_compute_reference,
    mode_metrics,
    nearest_neighbours,
    precision_recall,
    reference_key,
    save_neighbour_figure,
)
from gan_cli.metrics.inception import fid_from_stats
from gan_cli.metrics.toy import ring_modes


def _features(n=400, d=12, seed=0, shift=0.0):
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(d, d, generator=g) / math.sqrt(d)
    return torch.randn(n, d, generator=g) @ a + shift


def _scipy_fd(x: np.ndarray, y: np.ndarray) -> float:
    """Independent reference: numpy moments + scipy.linalg.sqrtm, float64."""
    mu1, mu2 = x.mean(0), y.mean(0)
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


# ---------------------------------------------------------------- Frechet distance
def test_fd_of_set_with_itself_is_zero():
    s = FeatureStats.of(_features())
    assert abs(frechet_distance_stats(s, s)) < 1e-6


def test_fd_matches_scipy_and_torchmetrics():
    x, y = _features(seed=1), _features(seed=2, shift=0.3)
    ours = frechet_distance_stats(FeatureStats.of(x), FeatureStats.of(y))
    ref = _scipy_fd(x.double().numpy(), y.double().numpy())
    assert ours == pytest.approx(ref, rel=1e-4)
    sx, sy = FeatureStats.of(x), FeatureStats.of(y)
    assert fid_from_stats(sx.mean, sx.cov, sy.mean, sy.cov) == pytest.approx(ref, rel=1e-4)


def test_fd_invariant_to_sample_order_and_batching():
    x, y = _features(seed=3), _features(seed=4, shift=1.0)
    base = frechet_distance_stats(FeatureStats.of(x), FeatureStats.of(y))
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    shuffled = frechet_distance_stats(FeatureStats.of(x[perm]), FeatureStats.of(y))
    assert shuffled == pytest.approx(base, rel=1e-9)
    # streamed in uneven batches and merged like two ranks
    a, b = FeatureStats(x.shape[1]), FeatureStats(x.shape[1])
    for chunk in x[:150].split(37):
        a.update(chunk)
    for chunk in x[150:].split(64):
        b.update(chunk)
    merged = a.merge(b)
    assert merged.n == len(x)
    assert torch.allclose(merged.cov, torch.from_numpy(np.cov(x.double().numpy(), rowvar=False)), atol=1e-12)
    assert frechet_distance_stats(merged, FeatureStats.of(y)) == pytest.approx(base, rel=1e-9)


def test_feature_stats_survive_large_offset():
    """Chan's update keeps the covariance accurate when features sit far from the origin."""
    x = _features(n=300, d=4, seed=5).double()
    s = FeatureStats(4)
    for chunk in (x + 1e6).split(50):
        s.update(chunk)
    assert torch.allclose(s.cov, torch.from_numpy(np.cov(x.numpy(), rowvar=False)), rtol=1e-6, atol=1e-8)


def test_frechet_distance_accepts_plain_tensors():
    mu = torch.zeros(3)
    assert frechet_distance(mu, torch.eye(3), mu + 1, torch.eye(3)) == pytest.approx(3.0)


# ---------------------------------------------------------------- Inception score
def test_is_of_uniform_outputs_is_one():
    probs = torch.full((100, 10), 0.1)
    mean, std = inception_score(probs, splits=4)
    assert mean == pytest.approx(1.0)
    assert std == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("splits", [1, 2, 5])
def test_is_of_confident_evenly_spread_outputs_is_num_classes(splits):
    probs = torch.eye(10).repeat(10, 1)  # 100 one-hot rows, each split covers every class once per 10
    mean, _ = inception_score(probs, splits=splits)
    assert mean == pytest.approx(10.0)


def test_is_invariant_to_sample_order():
    g = torch.Generator().manual_seed(0)
    probs = torch.softmax(torch.randn(300, 10, generator=g) * 3, 1)
    perm = torch.randperm(300, generator=g)
    expected = inception_score(probs, splits=1)[0]
    assert inception_score(probs[perm], splits=1)[0] == pytest.approx(expected, rel=1e-12)


def test_is_rejects_logits():
    with pytest.raises(ValueError):
        inception_score(torch.randn(20, 10), splits=1)


# ---------------------------------------------------------------- KID
def test_kid_of_set_with_itself_is_near_zero_and_shift_is_not():
    x = _features(n=300, d=16, seed=6)
    same, _ = kernel_inception_distance(x, x, subsets=20, subset_size=100)
    shifted, _ = kernel_inception_distance(x, x + 1.0, subsets=20, subset_size=100)
    assert abs(same) < 0.05 * shifted
    assert shifted > 0.1


def test_kid_is_reproducible_with_seed():
    x, y = _features(n=120, seed=7), _features(n=120, seed=8)
    assert kernel_inception_distance(x, y, 5, 50, seed=1) == kernel_inception_distance(x, y, 5, 50, seed=1)


# ---------------------------------------------------------------- precision / recall
def test_pr_identical_sets_are_one():
    x = _features(n=200, d=8, seed=9)
    assert precision_recall(x, x.clone(), k=3, block=64) == (1.0, 1.0)


def test_pr_disjoint_far_sets_are_zero():
    x = _features(n=200, d=8, seed=10)
    assert precision_recall(x, x + 100.0, k=3, block=64) == (0.0, 0.0)


# A 1-D case worked out by hand. Real R = 0, 1, 3, 6, 10; the distance from each to its k-th
# nearest other real sample (the ball radii):
#   k = 1: 1, 1, 2, 3, 4     k = 2: 3, 2, 3, 4, 7     k = 3: 6, 5, 3, 5, 9
# A fake point is inside the real manifold when it is within the radius of some real point:
#   -5   (distances 5, 6, 8, 11, 15):       in for k = 3 only (5 <= 6)
#   -2.5 (2.5, 3.5, 5.5, 8.5, 12.5):        in for k >= 2     (2.5 <= 3)
#   8    (8, 7, 5, 2, 2):                   in for k >= 1     (2 <= 3, around 6)
#   13   (13, 12, 10, 7, 3):                in for k >= 1     (3 <= 4, around 10)
#   16.5 (16.5, 15.5, 13.5, 10.5, 6.5):     in for k >= 2     (6.5 <= 7)
#   20   (20, 19, 17, 14, 10):              never (10 > 9)
PR_REAL = [0.0, 1.0, 3.0, 6.0, 10.0]
PR_FAKE = [-5.0, -2.5, 8.0, 13.0, 16.5, 20.0]
PR_INSIDE = {1: 2 / 6, 2: 4 / 6, 3: 5 / 6}


@pytest.mark.parametrize("k", [1, 2, 3])
def test_pr_hand_worked_case_for_each_k(k):
    """Precision is the fraction of FAKE samples in the real manifold, recall the fraction of
    REAL samples in the fake manifold: the same count with the roles swapped. The three k give
    three answers, so an off-by-one in k or swapped outputs fail."""
    real, fake = torch.tensor(PR_REAL).reshape(-1, 1), torch.tensor(PR_FAKE).reshape(-1, 1)
    precision, _ = precision_recall(real, fake, k=k)
    assert precision == pytest.approx(PR_INSIDE[k])
    _, recall = precision_recall(fake, real, k=k)  # fake plays the real set: the same count
    assert recall == pytest.approx(PR_INSIDE[k])


def test_pr_generator_covering_half_the_modes():
    """Two real modes, 60 samples each; the generated set is a copy of the first mode's samples:
    every generated sample is a real one (precision 1), and only the first mode's real samples
    are covered (recall exactly 0.5). Swapped outputs would read (0.5, 1)."""
    g = torch.Generator().manual_seed(13)
    mode_a = torch.randn(60, 4, generator=g)
    mode_b = torch.randn(60, 4, generator=g) + 50.0
    real = torch.cat([mode_a, mode_b])
    assert precision_recall(real, mode_a.clone(), k=3) == (1.0, 0.5)
    # an independent draw from the first mode: precision high, recall at most one half
    fresh = torch.randn(120, 4, generator=g)
    precision, recall = precision_recall(real, fresh, k=3)
    assert precision > 0.8 and 0.3 < recall <= 0.5


def test_pr_matches_torch_fidelity():
    """Against torch-fidelity's implementation (a dependency) on the same features: real and
    generated sets of different spread, so that neither number is 0 or 1."""
    from torch_fidelity.metric_prc import calculate_precision_recall_full

    g = torch.Generator().manual_seed(21)
    real = torch.randn(300, 8, generator=g, dtype=torch.float64)
    fake = 0.7 * torch.randn(240, 8, generator=g, dtype=torch.float64) + 0.8
    for k in (1, 3, 5):
        theirs = calculate_precision_recall_full(fake, real, neighborhood=k)  # (generated, real)
        ours = precision_recall(real, fake, k=k)
        assert 0.05 < ours[0] < 0.95 and 0.05 < ours[1] < 0.95, ours
        assert ours == pytest.approx(theirs, abs=1.5 / 300), k  # a boundary sample at most


def test_pr_blocking_does_not_change_result():
    x, y = _features(n=150, d=6, seed=11), _features(n=150, d=6, seed=12, shift=0.5)
    assert precision_recall(x, y, block=32) == precision_recall(x, y, block=1000)


# ---------------------------------------------------------------- 2D mode metrics
def _around(centres, per_mode, std, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.cat([c + std * torch.randn(per_mode, 2, generator=g, dtype=torch.float64) for c in centres])


def test_modes_all_eight_covered():
    modes, std = ring_modes(8, 2.0), 0.02
    m = mode_metrics(_around(modes, 300, std), modes, std)  # 2,400 points
    assert m["modes_captured"] == 8
    assert m["high_quality_fraction"] > 0.98
    assert m["reverse_kl"] == pytest.approx(0.0, abs=1e-3)


def test_modes_all_points_on_one_mode():
    modes, std = ring_modes(8, 2.0), 0.02
    m = mode_metrics(_around(modes[:1], 2500, std), modes, std)
    assert m["modes_captured"] == 1
    assert m["reverse_kl"] == pytest.approx(math.log(8))


def test_modes_points_far_from_every_mode():
    modes = ring_modes(8, 2.0)
    m = mode_metrics(torch.full((2500, 2), 50.0), modes, 0.02)
    assert m["high_quality_fraction"] == 0.0 and m["modes_captured"] == 0
    assert math.isnan(m["reverse_kl"])


def test_modes_via_registry():
    modes, std = ring_modes(8, 2.0), 0.02
    g = torch.Generator().manual_seed(1)

    def sample(n):
        picks = torch.randint(0, 8, (n,), generator=g)
        return (modes[picks] + std * torch.randn(n, 2, generator=g, dtype=torch.float64)).float()

    real = RealData("ring8", "train", lambda: iter(()), modes=modes, mode_std=std)
    prov: dict = {}
    out = compute_metrics(["modes"], sample, real, {"batch_size": 1000}, provenance=prov)
    assert out["modes_captured"] == 8 and out["reverse_kl"] < 0.01
    assert prov["modes"]["num_fake"] == 2500


def test_unknown_metric_or_missing_real_data_is_a_config_error():
    with pytest.raises(ConfigError):
        compute_metrics(["fid", "bogus"], lambda n: torch.zeros(n, 2), None)
    with pytest.raises(ConfigError):
        compute_metrics(["fd_fashion"], lambda n: torch.zeros(n, 1, 28, 28), None)


# ---------------------------------------------------------------- nearest neighbours
def test_nearest_neighbour_finds_exact_copy_and_writes_figure(tmp_path):
    g = torch.Generator().manual_seed(0)
    train = torch.rand(300, 1, 28, 28, generator=g) * 2 - 1
    queries = torch.cat([train[123:124], torch.rand(3, 1, 28, 28, generator=g) * 2 - 1])
    d, imgs = nearest_neighbours(queries, iter(train.split(64)), k=4)
    assert d.shape == (4, 4) and imgs.shape == (4, 4, 1, 28, 28)
    assert d[0, 0].item() == 0.0
    assert torch.equal(imgs[0, 0], train[123])
    brute = torch.cdist(queries.flatten(1).double(), train.flatten(1).double()).topk(4, largest=False).values
    assert torch.allclose(d.double(), brute, atol=1e-4)
    path = save_neighbour_figure(queries, imgs, tmp_path / "figs" / "nn.png")
    assert path.is_file() and path.stat().st_size > 0


# ---------------------------------------------------------------- reference-statistics cache
def test_reference_cache_computed_once_and_keyed(tmp_path):
    calls = []

    def compute():
        calls.append(1)
        x = _features(n=50, d=4, seed=len(calls))
        return FeatureStats.of(x), x

    key = reference_key("fashion_mnist", "test", "bilinear", "net-abc", 50, 20)
    first = load_or_compute_reference(key, compute, tmp_path)
    second = load_or_compute_reference(key, compute, tmp_path)
    assert len(calls) == 1
    assert torch.equal(first.stats.cov, second.stats.cov) and second.features.shape == (20, 4)
    assert second.describe()["split"] == "test" and second.describe()["num_samples_used"] == 50
    other = reference_key("fashion_mnist", "train", "bilinear", "net-abc", 50, 20)
    load_or_compute_reference(other, compute, tmp_path)
    assert len(calls) == 2
    assert len(list(tmp_path.glob("*.pt"))) == 2


def test_reference_cache_file_with_other_key_is_recomputed(tmp_path):
    calls = []

    def compute():
        calls.append(1)
        x = _features(n=30, d=3, seed=0)
        return FeatureStats.of(x), x

    key = reference_key("d", "test", "none", "net", 30, 30)
    load_or_compute_reference(key, compute, tmp_path)
    (path,) = tmp_path.glob("*.pt")
    blob = torch.load(path, weights_only=True)
    blob["key"] = {**key, "split": "train"}  # a file whose stored key does not match its name
    torch.save(blob, path)
    load_or_compute_reference(key, compute, tmp_path)
    assert len(calls) == 2
    assert torch.load(path, weights_only=True)["key"] == key


def test_nn_via_registry(tmp_path):
    train = torch.rand(100, 1, 28, 28, generator=torch.Generator().manual_seed(2)) * 2 - 1
    real = RealData.from_tensor("toyimages", "train", train, batch_size=32)
    prov: dict = {}
    out = compute_metrics(["nn"], lambda n: train[:n].clone(), real,
                          {"nn": {"num_queries": 3, "k": 2, "path": str(tmp_path / "nn.png")}},
                          provenance=prov)
    assert out == {"nn_distance_min": 0.0, "nn_distance_mean": 0.0}  # copies of training images
    assert (tmp_path / "nn.png").is_file() and prov["nn"]["against"] == "toyimages/train"
