"""A linear probe of the discriminator's features: how much of the data's classes D learned.

Radford et al. 2016 (DCGAN), section 5.1 and table 1: D's convolutional features from every layer,
max-pooled to a 4 x 4 grid, flattened and concatenated, feed a regularised linear classifier
fitted on labelled data; its test accuracy measures the representation. ``gan-eval probe=linear``
does this for a checkpoint's D and, as the floor, for a randomly initialised D of the same
architecture (random convolutional features are themselves a strong baseline on small images,
Jarrett et al. 2009, Saxe et al. 2011: the question is how far training lifts D above it).

Features (:func:`block_features`). Forward hooks on every module of D record each output; a
*block* is the last feature map D computes at each spatial resolution (for DCGAN's D: the output
of each strided convolution's activation; for a residual D: the deepest map at each side). Maps
are max-pooled to at most 4 x 4 (``adaptive_max_pool2d``) and flattened; a D without feature
maps (an MLP) gives its last hidden layer of each width. Outputs with one value per sample (the
score) are not features. D runs in eval mode (BatchNorm with its running statistics, no spectral
norm update); a conditional D is given class 0 for every image, so its features never see the
true label. Feature dimensions are standardised with the training features' mean and std.

Classifiers (:func:`fit_linear`): multinomial logistic regression (mean cross-entropy) and the
L2-SVM of Radford et al. (one against the rest, squared hinge), each + (lambda / 2) ||W||^2,
fitted by L-BFGS with the gradient written by hand (convex problems; deterministic). lambda is
picked from :data:`L2_GRID` by accuracy on the last 10% of the training features (the grid's
fits side by side in one L-BFGS run), then the classifier is refitted on all of them from the
chosen fit and scored once on the test images: the test
split, or for data without one (MNIST-5k) the images after the first ``probe_train``.
Reported: each classifier's test accuracy on all blocks together and on each block alone, for the
trained and the random D, and chance (1 / classes).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan_cli.errors import ConfigError

log = logging.getLogger("gan_cli")

POOL_SIDE = 4  # DCGAN's 4 x 4 max-pooling grid
L2_GRID = (1e-4, 1e-3, 1e-2, 1e-1)
VALIDATION_FRACTION = 0.1


# ---------------------------------------------------------------------------------------------
# Features.


def _key(output: Any) -> tuple | None:
    """The block key of a module output: ("map", H, W) for feature maps, ("flat", F) for vectors,
    None for anything else (scores, tuples)."""
    if not torch.is_tensor(output) or output.dim() < 2 or output[0].numel() <= 1:
        return None
    if output.dim() == 4 and output.shape[1] > 1:
        return ("map", int(output.shape[2]), int(output.shape[3]))
    if output.dim() == 2:
        return ("flat", int(output.shape[1]))
    return None


def find_blocks(D: nn.Module, example: Tensor, y: Tensor | None = None) -> list[str]:
    """Names of D's block modules (module docstring), in the order D computes them.

    Args:
        D: the discriminator.
        example: a small batch of D's input (at least 2 samples).
        y: its condition, when D takes one.
    """
    last: dict[tuple, str] = {}
    order: list[tuple] = []
    handles = []

    def hook(name: str):
        def record(module: nn.Module, args: Any, output: Any) -> None:
            key = _key(output)
            if key is not None:
                if key not in last:
                    order.append(key)
                last[key] = name
        return record

    for name, module in D.named_modules():
        if name:  # D's own output is its score
            handles.append(module.register_forward_hook(hook(name)))
    try:
        with torch.no_grad():
            D(example, y)
    finally:
        for h in handles:
            h.remove()
    has_maps = any(k[0] == "map" for k in order)
    return [last[k] for k in order if (k[0] == "map") == has_maps]


def block_features(D: nn.Module, x: Tensor, blocks: list[str], y: Tensor | None = None) -> list[Tensor]:
    """Each block's output for images ``x``, max-pooled to at most 4 x 4 and flattened: a list of
    (N, F_k) float32 tensors on the CPU."""
    modules = dict(D.named_modules())
    got: dict[str, Tensor] = {}
    handles = [modules[name].register_forward_hook(
        lambda m, a, out, name=name: got.__setitem__(name, out)) for name in blocks]
    try:
        with torch.no_grad():
            D(x, y)
    finally:
        for h in handles:
            h.remove()
    feats = []
    for name in blocks:
        h = got[name].float()
        if h.dim() == 4:
            h = F.adaptive_max_pool2d(h, (min(POOL_SIDE, h.shape[2]), min(POOL_SIDE, h.shape[3])))
        feats.append(h.flatten(1).cpu())
    return feats


def class_zero(D: nn.Module, n: int, device: torch.device) -> Tensor | None:
    """A conditional D's condition for the probe: class 0 for all (None for an unconditional D)."""
    return torch.zeros(n, dtype=torch.int64, device=device) if getattr(D, "num_classes", 0) else None


@torch.no_grad()
def extract(D: nn.Module, batches: Iterable[tuple[Tensor, Tensor]], blocks: list[str],
            device: torch.device) -> tuple[list[Tensor], Tensor]:
    """Block features and labels of every (images, labels) batch, D in eval mode."""
    was_training = D.training
    D.eval()
    parts: list[list[Tensor]] = []
    labels = []
    try:
        for x, y in batches:
            x = x.to(device)
            parts.append(block_features(D, x, blocks, class_zero(D, len(x), device)))
            labels.append(y.cpu().to(torch.int64))
    finally:
        D.train(was_training)
    feats = [torch.cat([p[k] for p in parts]) for k in range(len(blocks))]
    return feats, torch.cat(labels)


# ---------------------------------------------------------------------------------------------
# The classifiers.


def logistic_loss(s: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """Multinomial logistic regression: mean cross-entropy of scores ``s`` (N, L, K) (L fits side by
    side) for labels ``y`` (N,). Returns (loss per fit (L,), d loss / d s (N, L, K))."""
    logp = s.log_softmax(-1)
    idx = y.view(-1, 1, 1).expand(-1, s.shape[1], 1)
    loss = -logp.gather(-1, idx).sum((0, 2)) / len(s)
    grad = logp.exp().scatter_add_(-1, idx, torch.full_like(idx, -1, dtype=s.dtype))
    return loss, grad / len(s)


def squared_hinge_loss(s: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """The L2-SVM (Radford et al. 2016's probe; Lee & Mangasarian 2001), one against the rest:
    mean over samples of sum_k max(0, 1 - t_k s_k)^2 with t_k = +1 for the label, -1 otherwise.
    Shapes as :func:`logistic_loss`."""
    t = torch.full_like(s, -1.0).scatter_(-1, y.view(-1, 1, 1).expand(-1, s.shape[1], 1), 1.0)
    margin = (1 - t * s).clamp_min(0)
    return margin.square().sum((0, 2)) / len(s), -2 * t * margin / len(s)


CLASSIFIERS = {"logistic": logistic_loss, "l2svm": squared_hinge_loss}


@dataclass
class Linear:
    """A fitted linear classifier on standardised features: scores = ((x - mean) / std) W + b."""

    mean: Tensor
    std: Tensor
    W: Tensor
    b: Tensor
    l2: float
    loss: str = "logistic"

    def predict(self, x: Tensor) -> Tensor:
        return (((x - self.mean) / self.std) @ self.W + self.b).argmax(1)

    def accuracy(self, x: Tensor, y: Tensor) -> float:
        return float((self.predict(x) == y).double().mean())


def fit_linear(x: Tensor, y: Tensor, num_classes: int, l2s: Sequence[float], loss: str = "logistic",
               max_iter: int = 100, init: Sequence[Linear] | None = None) -> list[Linear]:
    """One linear classifier per penalty in ``l2s``, all fitted at once: minimise, for each lambda,
    mean loss + (lambda / 2) ||W||^2 by L-BFGS (convex problems: the start changes the iterations
    needed, not the optimum). The problems are independent; fitted side by side, each L-BFGS step
    takes one (N, F) x (F, L K) product instead of L thin ones.

    Args:
        x: features (N, F); standardised here with their own mean and std (constant dimensions
            get std 1).
        y: labels (N,) in 0..num_classes-1.
        num_classes: K.
        l2s: the penalties lambda.
        loss: a key of :data:`CLASSIFIERS`.
        max_iter: L-BFGS iterations.
        init: start from these fits' weights (one per lambda); None = W = 0.
    """
    objective = CLASSIFIERS[loss]
    n, L, K = len(x), len(l2s), num_classes
    mean = x.mean(0)
    std = x.std(0).clamp_min(1e-6)
    xs = ((x - mean) / std).float().contiguous()
    lam = torch.tensor([float(v) for v in l2s]).repeat_interleave(K)  # (L K,)
    W = torch.zeros(x.shape[1], L * K) if init is None else torch.cat([m.W for m in init], 1).clone()
    b = torch.zeros(L * K) if init is None else torch.cat([m.b for m in init]).clone()
    W.requires_grad_(True)
    b.requires_grad_(True)
    opt = torch.optim.LBFGS([W, b], lr=1.0, max_iter=max_iter, history_size=20,
                            line_search_fn="strong_wolfe", tolerance_grad=1e-6, tolerance_change=1e-9)

    def closure() -> Tensor:
        # the gradient by hand: (G^T X)^T, the layout MKL runs fast for a few columns (X^T G was
        # ten times slower for 10 classes on this machine), and no autograd graph of X
        with torch.no_grad():
            value, g = objective((xs @ W + b).view(n, L, K), y)
            g = g.reshape(n, L * K)
            W.grad = (g.T @ xs).T.contiguous() + lam * W
            b.grad = g.sum(0)
            return value.sum() + 0.5 * (lam * W.square().sum(0)).sum()

    opt.step(closure)
    W, b = W.detach(), b.detach()
    return [Linear(mean, std, W[:, i * K:(i + 1) * K].clone(), b[i * K:(i + 1) * K].clone(), float(l2), loss)
            for i, l2 in enumerate(l2s)]


def fit_softmax(x: Tensor, y: Tensor, num_classes: int, l2: float, max_iter: int = 100,
                init: Linear | None = None) -> Linear:
    """Multinomial logistic regression at one penalty (:func:`fit_linear`)."""
    return fit_linear(x, y, num_classes, [l2], "logistic", max_iter, None if init is None else [init])[0]


def probe_accuracy(train_x: Tensor, train_y: Tensor, test_x: Tensor, test_y: Tensor, num_classes: int,
                   grid: Iterable[float] = L2_GRID, loss: str = "logistic") -> tuple[float, float]:
    """Test accuracy of the probe whose lambda wins on the last 10% of the training features,
    refitted on all of them from that fit; returns (test accuracy, lambda)."""
    n_val = max(1, int(len(train_x) * VALIDATION_FRACTION))
    fit_x, fit_y, val_x, val_y = train_x[:-n_val], train_y[:-n_val], train_x[-n_val:], train_y[-n_val:]
    fits = {m.l2: m for m in fit_linear(fit_x, fit_y, num_classes, sorted(grid), loss)}
    best_l2 = max(fits, key=lambda l2: (fits[l2].accuracy(val_x, val_y), l2))  # ties: the strongest
    final = fit_linear(train_x, train_y, num_classes, [best_l2], loss, init=[fits[best_l2]])[0]
    return final.accuracy(test_x, test_y), best_l2


# ---------------------------------------------------------------------------------------------
# gan-eval probe=linear.


@dataclass
class ProbeResult:
    """Accuracies of one discriminator: all blocks together, then each block alone; the logistic
    probe's at the top level, the L2-SVM's under ``l2svm``."""

    accuracy: float
    l2: float
    num_train: int
    num_test: int
    blocks: list[dict] = field(default_factory=list)  # name, dim, accuracy, l2, l2svm: {accuracy, l2}
    l2svm: dict = field(default_factory=dict)  # accuracy, l2


def probe_discriminator(D: nn.Module, train: Iterable, test: Iterable, blocks: list[str],
                        num_classes: int, device: torch.device) -> ProbeResult:
    """Fit and score both probes on D's features of the ``train`` and ``test`` (images, labels) batches."""
    train_f, train_y = extract(D, train, blocks, device)
    test_f, test_y = extract(D, test, blocks, device)
    log.info("probe: %d training and %d test images, features %s; fitting", len(train_y),
             len(test_y), " + ".join(str(f.shape[1]) for f in train_f))
    sets = [(None, torch.cat(train_f, 1), torch.cat(test_f, 1)), *zip(blocks, train_f, test_f, strict=True)]
    scores = [{loss: probe_accuracy(tr, train_y, te, test_y, num_classes, loss=loss) for loss in CLASSIFIERS}
              for _, tr, te in sets]
    (acc, l2), (svm_acc, svm_l2) = scores[0]["logistic"], scores[0]["l2svm"]
    result = ProbeResult(acc, l2, len(train_y), len(test_y), l2svm={"accuracy": svm_acc, "l2": svm_l2})
    for (name, tr, _), score in zip(sets[1:], scores[1:], strict=True):
        (a, lam), (sa, slam) = score["logistic"], score["l2svm"]
        result.blocks.append({"block": name, "dim": int(tr.shape[1]), "accuracy": a, "l2": lam,
                              "l2svm": {"accuracy": sa, "l2": slam}})
    return result


def labelled(data: Any, num: int, skip: int = 0, batch_size: int = 500) -> Iterator[tuple[Tensor, Tensor]]:
    """(images, labels) batches of a labelled DataSource: images skip .. skip + num."""
    if not hasattr(data, "labelled_batches") or not data.info.num_classes:
        raise ConfigError("probe=linear needs labelled images (a dataset with classes, e.g. "
                          "fashion_mnist, mnist, mnist_5k, cifar10)")
    return data.labelled_batches(num, batch_size=batch_size, skip=skip)


def run_probe(D: nn.Module, R: nn.Module, train_data: Any, test_data: Any, *, num_train: int,
              num_test: int, test_skip: int = 0, device: torch.device,
              batch_size: int = 500) -> dict[str, Any]:
    """The probe on a trained D and on a random D of the same architecture (module docstring).

    Args:
        D, R: the trained and the randomly initialised discriminator.
        train_data, test_data: labelled DataSources (``labelled_batches``); the test images are
            ``test_skip`` .. ``test_skip + num_test`` of ``test_data``.
        num_train, num_test: images of each.
        device: where D runs.
        batch_size: images per forward pass.

    Returns:
        A record: chance, the blocks, the counts, and per D its accuracy on all blocks, the lambda
        picked and the per-block results.
    """
    from dataclasses import asdict

    if getattr(D, "pack", 1) != 1:
        raise ConfigError(f"probe=linear needs a D that judges single images; this one packs "
                          f"{D.pack} samples (PacGAN)")
    classes = int(train_data.info.num_classes)
    example = next(iter(labelled(train_data, 2)))[0].to(device)
    cond = class_zero(D, len(example), device)
    was_training = D.training
    D.eval()
    try:
        blocks = find_blocks(D, example, cond)
    finally:
        D.train(was_training)
    if not blocks:
        raise ConfigError("probe=linear found no feature maps or hidden layers in this D")
    record: dict[str, Any] = {"chance": 1.0 / classes, "classes": classes, "blocks": blocks,
                              "l2_grid": list(L2_GRID), "pool_side": POOL_SIDE}
    for name, net in (("trained", D), ("random", R)):
        train = labelled(train_data, num_train, batch_size=batch_size)
        test = labelled(test_data, num_test, skip=test_skip, batch_size=batch_size)
        log.info("probe: the %s D", name)
        result = probe_discriminator(net, train, test, blocks, classes, device)
        record[name] = asdict(result)
        record["num_train"], record["num_test"] = result.num_train, result.num_test
    return record


def format_probe(result: dict[str, Any]) -> str:
    """The console table of :func:`run_probe`'s record: logistic and L2-SVM accuracies."""
    lines = [f"linear probe on D's features ({result['num_train']} labelled training images, "
             f"{result['num_test']} test images from {result.get('test_split', 'test')}; chance "
             f"{result['chance']:.3f})",
             f"  {'features':<28}{'dim':>7}{'trained D':>12}{'random D':>12}"
             f"{'trained, SVM':>14}{'random, SVM':>13}"]
    trained, random = result["trained"], result["random"]
    rows = [("all blocks", sum(b["dim"] for b in trained["blocks"]), trained, random),
            *[(t["block"], t["dim"], t, r) for t, r in zip(trained["blocks"], random["blocks"], strict=True)]]
    for name, dim, t, r in rows:
        lines.append(f"  {name:<28}{dim:>7}{t['accuracy']:>12.4f}{r['accuracy']:>12.4f}"
                     f"{t['l2svm']['accuracy']:>14.4f}{r['l2svm']['accuracy']:>13.4f}")
    return "\n".join(lines)
