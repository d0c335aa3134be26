"""The linear probe of D's features (gan_cli/metrics/probe.py, gan-eval probe=linear)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from gan_cli.data.sources import TensorImageSource
from gan_cli.metrics.probe import (
    block_features,
    find_blocks,
    fit_linear,
    fit_softmax,
    probe_accuracy,
    run_probe,
)
from gan_cli.models import dcgan, mlp
from tests.test_eval_cli import HAS_FASHION, run_eval


def small_d(**kw) -> torch.nn.Module:
    torch.manual_seed(0)
    return dcgan.Discriminator(data_shape=(1, 28, 28), width=4, **kw).eval()


def test_blocks_are_the_last_feature_map_at_each_resolution():
    D = small_d()
    x = torch.randn(3, 1, 28, 28)
    blocks = find_blocks(D, x)
    assert blocks == ["trunk.1", "trunk"]  # conv + LeakyReLU at 14 x 14; conv, BN, LeakyReLU at 7 x 7
    f14, f7 = block_features(D, x, blocks)
    with torch.no_grad():
        h14 = D.trunk[:2](x)
        h7 = D.trunk(x)
    # DCGAN's recipe: each map max-pooled to 4 x 4, flattened
    assert torch.equal(f14, F.adaptive_max_pool2d(h14, 4).flatten(1))
    assert torch.equal(f7, F.adaptive_max_pool2d(h7, 4).flatten(1))
    assert f14.shape == (3, 4 * 16) and f7.shape == (3, 8 * 16)


def test_an_mlp_discriminator_gives_its_last_hidden_layer():
    torch.manual_seed(0)
    D = mlp.Discriminator(data_shape=(1, 4, 4), hidden=[8, 8]).eval()
    x = torch.randn(2, 1, 4, 4)
    (name,) = find_blocks(D, x)
    (f,) = block_features(D, x, [name])
    with torch.no_grad():
        assert torch.equal(f, D.net[:4](x.flatten(1)))  # Linear, LeakyReLU, Linear, LeakyReLU


def test_the_classifier_separates_separable_features():
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 3, (300,), generator=g)
    x = F.one_hot(y, 3).float() * 4 + torch.randn(300, 3, generator=g)  # class k: a bump on axis k
    model = fit_softmax(x, y, 3, l2=1e-3)
    assert model.accuracy(x, y) == pytest.approx(1.0, abs=0.02)
    acc, _ = probe_accuracy(x[:200], y[:200], x[200:], y[200:], 3)
    assert acc >= 0.95


def test_the_probe_scores_held_out_data_not_its_training_data():
    # labels independent of the features: training accuracy of 400 points in 200 dimensions is high,
    # the test accuracy stays at chance (1/10); reporting the former would be the bug
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(800, 200, generator=g), torch.randint(0, 10, (800,), generator=g)
    assert fit_softmax(x[:400], y[:400], 10, l2=1e-4).accuracy(x[:400], y[:400]) > 0.9
    acc, l2 = probe_accuracy(x[:400], y[:400], x[400:], y[400:], 10)
    assert 0.04 <= acc <= 0.17
    assert l2 in (1e-4, 1e-3, 1e-2, 1e-1)


def blob_data(n: int, seed: int) -> TensorImageSource:
    """Images whose class (0..3) is the quadrant holding a bright 6 x 6 square, on noise."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 4, (n,), generator=g)
    x = torch.randint(0, 60, (n, 1, 28, 28), generator=g, dtype=torch.uint8)
    for i, k in enumerate(y.tolist()):
        r, c = 4 + 14 * (k // 2), 4 + 14 * (k % 2)
        x[i, 0, r:r + 6, c:c + 6] = 250
    return TensorImageSource(x, y, 4, batch_size=1)


def test_run_probe_reports_both_discriminators_and_every_block():
    train, test = blob_data(300, 0), blob_data(100, 1)
    D, R = small_d(), dcgan.Discriminator(data_shape=(1, 28, 28), width=4)
    record = run_probe(D, R, train, test, num_train=300, num_test=100, device=torch.device("cpu"))
    assert record["chance"] == 0.25 and record["blocks"] == ["trunk.1", "trunk"]
    assert record["num_train"] == 300 and record["num_test"] == 100
    for name in ("trained", "random"):
        assert record[name]["accuracy"] > 0.9  # where the square is: easy for any conv features
        assert [b["dim"] for b in record[name]["blocks"]] == [64, 128]
    assert R.training and not D.training  # features in eval mode, each D's own mode restored
    # a conditional D is given class 0: its features never see the true label
    Dc = small_d(num_classes=4, conditioning="concat")
    assert run_probe(Dc, Dc, train, test, num_train=300, num_test=100,
                     device=torch.device("cpu"))["trained"]["accuracy"] > 0.9


@pytest.mark.slow  # a training run and two runs of gan-eval
@pytest.mark.skipif(not HAS_FASHION, reason="needs Debian's dataset-fashion-mnist")
def test_gan_eval_probe_through_the_command_line(tmp_path: Path, fashion_dcgan_run: Path):
    run_dir = fashion_dcgan_run  # tiny=images, 2 steps (tests/conftest.py)
    proc = run_eval([f"ckpt={run_dir / 'checkpoints' / 'last.pt'}", "probe=linear", "metrics=[]",
                     "probe_train=200", "probe_test=100"], tmp_path / "eval", tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    probe = json.loads((tmp_path / "eval" / "metrics.json").read_text())["probe"]
    assert probe["test_split"] == "test" and probe["num_train"] == 200 and probe["num_test"] == 100
    assert probe["chance"] == 0.1 and probe["blocks"] == ["trunk.1", "trunk"]
    for name in ("trained", "random"):
        assert 0.0 <= probe[name]["accuracy"] <= 1.0
    assert "linear probe on D's features" in proc.stdout and "random D" in proc.stdout
    proc = run_eval([f"ckpt={run_dir / 'checkpoints' / 'last.pt'}", "probe=svm"], tmp_path / "e2", tmp_path)
    assert proc.returncode == 2 and "probe" in proc.stderr


def test_the_classifiers_gradients_are_their_losses_derivatives():
    # the hand-written gradients of fit_linear's objectives against autograd, two fits side by side
    from gan_cli.metrics.probe import CLASSIFIERS

    g = torch.Generator().manual_seed(0)
    s = torch.randn(7, 2, 4, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.randint(0, 4, (7,), generator=g)
    for name, objective in CLASSIFIERS.items():
        loss, grad = objective(s.detach(), y)
        s.grad = None
        objective(s, y)[0].sum().backward()
        assert torch.allclose(grad, s.grad), name
    # by hand: scores (2, -1) for label 0 of 2 classes: softmax CE = log(1 + e^-3);
    # squared hinge: max(0, 1 - 2)^2 + max(0, 1 - 1)^2 = 0, and (0.5, 0.2): 0.25 + 1.44
    from gan_cli.metrics.probe import logistic_loss, squared_hinge_loss

    two = torch.tensor([[[2.0, -1.0]], [[0.5, 0.2]]], dtype=torch.float64)
    label = torch.tensor([0, 0])
    assert logistic_loss(two[:1], label[:1])[0].item() == pytest.approx(math.log1p(math.exp(-3)))
    assert squared_hinge_loss(two[:1], label[:1])[0].item() == pytest.approx(0.0)
    assert squared_hinge_loss(two[1:], label[1:])[0].item() == pytest.approx(0.25 + 1.44)


def test_the_grids_fits_side_by_side_are_the_fits_alone():
    g = torch.Generator().manual_seed(1)
    y = torch.randint(0, 3, (200,), generator=g)
    x = F.one_hot(y, 3).float() + torch.randn(200, 5, generator=g)[:, :3]
    for loss in ("logistic", "l2svm"):
        both = fit_linear(x, y, 3, [1e-2, 1e-1], loss, max_iter=200)
        alone = fit_linear(x, y, 3, [1e-1], loss, max_iter=200)[0]
        assert torch.allclose(both[1].W, alone.W, atol=1e-3), loss
        assert both[0].W.norm() > both[1].W.norm()  # the weaker penalty, the larger weights


def test_the_preconditioner_is_the_cholesky_factor_of_c_gram_plus_lambda():
    # by hand: c G + lambda I = 0.25 [[1, 0.5], [0.5, 1]] + 0.1 I = [[0.35, 0.125], [0.125, 0.35]];
    # L11 = sqrt(0.35), L21 = 0.125 / L11, L22 = sqrt(0.35 - L21^2)
    from gan_cli.metrics.probe import preconditioners

    (L,) = preconditioners(torch.tensor([[1.0, 0.5], [0.5, 1.0]]), [0.1], curvature=0.25).values()
    l11 = math.sqrt(0.35)
    l21 = 0.125 / l11
    expected = torch.tensor([[l11, 0.0], [l21, math.sqrt(0.35 - l21**2)]])
    assert torch.allclose(L, expected, atol=1e-6)
    assert expected[1, 1].item() == pytest.approx(0.5525913, abs=1e-6)


def test_a_blocks_standardised_features_are_the_blocks_own():
    from gan_cli.metrics.probe import Standardised

    g = torch.Generator().manual_seed(0)
    x = torch.randn(50, 7, generator=g) * torch.arange(1.0, 8.0) + 3
    whole = Standardised.of(x, [1e-2, 1e-1])
    part, alone = whole.columns(2, 5), Standardised.of(x[:, 2:5], [1e-2, 1e-1])
    for name in ("x", "mean", "std", "gram"):
        assert torch.allclose(getattr(part, name), getattr(alone, name), atol=1e-5), name
    for l2 in (1e-2, 1e-1):
        assert torch.allclose(part.chol[l2], alone.chol[l2], atol=1e-5)
    assert torch.allclose(whole.x.mean(0), torch.zeros(7), atol=1e-5)
    assert torch.allclose(whole.x.std(0), torch.ones(7), atol=1e-5)


def test_the_preconditioned_fits_are_the_penalised_optima():
    # stationarity, by autograd on torch's own cross-entropy and a squared hinge written apart:
    # d/dW [mean loss + (lambda / 2) ||W||^2] = 0 at every fit, pairs in any order
    from gan_cli.metrics.probe import Standardised, fit_pairs

    g = torch.Generator().manual_seed(2)
    y = torch.randint(0, 3, (300,), generator=g)
    x = F.one_hot(y, 3).float() + torch.randn(300, 6, generator=g)[:, :3] @ torch.tensor(
        [[1.0, 0.9, 0.0], [0.0, 0.4, 0.0], [0.0, 0.0, 2.0]])  # correlated features
    pairs = [("l2svm", 1e-1), ("logistic", 1e-2), ("logistic", 1e-1), ("l2svm", 1e-2)]
    f = Standardised.of(x, [1e-2, 1e-1])
    fits = fit_pairs(f, y, 3, pairs, max_iter=300)
    for (loss, l2), m in zip(pairs, fits, strict=True):
        assert (m.loss, m.l2) == (loss, l2)
        W, b = m.W.clone().requires_grad_(True), m.b.clone().requires_grad_(True)
        s = f.x @ W + b
        if loss == "logistic":
            value = F.cross_entropy(s, y)
        else:
            t = 2 * F.one_hot(y, 3) - 1
            value = (1 - t * s).clamp_min(0).square().sum(1).mean()
        (value + 0.5 * l2 * W.square().sum()).backward()
        # float32 fits: the objective's resolution (1e-7) allows gradients ~1e-4; at W = 0 they are ~0.2
        assert W.grad.abs().max() < 1e-3 and b.grad.abs().max() < 1e-3, (loss, l2)


def test_a_refit_from_the_optimum_stays_there():
    from gan_cli.metrics.probe import Standardised, fit_pairs

    g = torch.Generator().manual_seed(3)
    y = torch.randint(0, 4, (200,), generator=g)
    x = F.one_hot(y, 4).float() + torch.randn(200, 4, generator=g)
    f = Standardised.of(x, [1e-1])
    (first,) = fit_pairs(f, y, 4, [("logistic", 1e-1)], max_iter=300)
    (again,) = fit_pairs(f, y, 4, [("logistic", 1e-1)], max_iter=5, init=[first])
    assert torch.allclose(again.W, first.W, atol=1e-4) and torch.allclose(again.b, first.b, atol=1e-4)


def test_extraction_gives_each_blocks_features_and_leaves_d_as_it_was():
    from gan_cli.metrics.probe import extract

    D = small_d().train()
    x = torch.randn(6, 1, 28, 28, generator=torch.Generator().manual_seed(4))
    blocks = find_blocks(D.eval(), x)
    D.train()
    batches = [(x[:4], torch.arange(4)), (x[4:], torch.arange(2))]
    feats, labels = extract(D, batches, blocks, torch.device("cpu"))
    assert D.training
    D.eval()
    for got, want in zip(feats, block_features(D, x, blocks), strict=True):
        assert torch.allclose(got, want, atol=1e-5)  # channels_last convolutions: rounding apart
    assert labels.tolist() == [0, 1, 2, 3, 0, 1]
    assert all(p.is_contiguous() for p in D.parameters())
