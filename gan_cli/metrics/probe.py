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

Classifiers (:func:`fit_pairs`): multinomial logistic regression (mean cross-entropy) and the
L2-SVM of Radford et al. (one against the rest, squared hinge), each + (lambda / 2) ||W||^2,
fitted by L-BFGS with the gradient written by hand (convex problems; deterministic), in the
coordinates U = L^T W where L L^T = c G + lambda I (G: the features' Gram matrix), where the
problem is near round: 20 + 10 iterations probe as well as 100 + 100 did without it. lambda is
picked from :data:`L2_GRID` by accuracy on the last 10% of the training features (both classifiers and the
whole grid side by side in one L-BFGS run), then each classifier is refitted on all of them from
the chosen fit (both side by side) and scored once on the test images: the test
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
    """Block features and labels of every (images, labels) batch, D in eval mode. D and the images
    run channels_last (1.7 times faster for DCGAN's D on this CPU, measured); D's weights are
    given back in the contiguous layout."""
    was_training = D.training
    D.eval()
    D.to(memory_format=torch.channels_last)
    parts: list[list[Tensor]] = []
    labels = []
    try:
        for x, y in batches:
            x = x.to(device, memory_format=torch.channels_last) if x.dim() == 4 else x.to(device)
            parts.append(block_features(D, x, blocks, class_zero(D, len(x), device)))
            labels.append(y.cpu().to(torch.int64))
    finally:
        D.train(was_training)
        D.to(memory_format=torch.contiguous_format)
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

    def predict(self, x: Tensor, standardised: bool = False) -> Tensor:
        """Classes of features ``x`` (N, F), raw or (``standardised``) already ((x - mean) / std)."""
        return ((x if standardised else (x - self.mean) / self.std) @ self.W + self.b).argmax(1)

    def accuracy(self, x: Tensor, y: Tensor, standardised: bool = False) -> float:
        return float((self.predict(x, standardised) == y).double().mean())


CURVATURE = 0.25  # c of the preconditioner c G + lambda I (fit_pairs); 0.05..1 measured alike, 4 slower
FIT_ITER = 20  # L-BFGS iterations of the grid's fits (measured on one-step DCGAN Ds: 20 + 10 probe as
#                well as 100 + 50; 15 + 10 lost a point on one block)
REFIT_ITER = 10  # L-BFGS iterations of the refit at the chosen penalties, from the grid's fits
GRAM_ROWS = 4096  # samples whose Gram matrix G builds the preconditioner


@dataclass
class Standardised:
    """Features standardised by their own mean and std (constant dimensions get std 1e-6), with
    the preconditioners of the penalties they will be fitted at (:func:`fit_pairs`)."""

    x: Tensor  # (N, F) float32, (raw - mean) / std
    mean: Tensor  # (F,)
    std: Tensor  # (F,)
    gram: Tensor  # (F, F) x^T x / N of its first GRAM_ROWS rows
    chol: dict[float, Tensor]  # lambda -> lower Cholesky factor (F, F) of c G + lambda I

    @classmethod
    def of(cls, x: Tensor, l2s: Iterable[float]) -> Standardised:
        mean = x.mean(0)
        std = x.std(0).clamp_min(1e-6)
        xs = ((x - mean) / std).float().contiguous()
        some = xs[:GRAM_ROWS]  # a preconditioner needs no more rows than this
        gram = some.T @ some / len(some)
        return cls(xs, mean, std, gram, preconditioners(gram, l2s))

    def apply(self, x: Tensor) -> Tensor:
        """Other features (M, F), standardised like these: float32 (x - mean) / std."""
        return ((x - self.mean) / self.std).float()

    def columns(self, start: int, stop: int) -> Standardised:
        """The features start..stop-1 alone (a block of concatenated features): their Gram matrix
        is a sub-block of the whole one; only the preconditioners are factorised again."""
        gram = self.gram[start:stop, start:stop]
        return Standardised(self.x[:, start:stop].contiguous(), self.mean[start:stop], self.std[start:stop],
                            gram, preconditioners(gram, self.chol))


def preconditioners(gram: Tensor, l2s: Iterable[float], curvature: float = CURVATURE) -> dict[float, Tensor]:
    """Lower Cholesky factors L (F, F) of c G + lambda I for each lambda, G = X^T X / N (F, F) of
    standardised features: the Hessian of mean loss + (lambda / 2) ||W||^2 where every sample's
    loss has curvature c in its scores. In U = L^T W the fits are near round problems."""
    chol = {}
    for l2 in sorted(set(l2s)):
        hessian = curvature * gram
        hessian.diagonal().add_(l2)
        factor, info = torch.linalg.cholesky_ex(hessian)
        if info:  # float32 rounding made it indefinite: float64
            factor = torch.linalg.cholesky(hessian.double()).float()
        chol[l2] = factor
    return chol


def fit_pairs(f: Standardised, y: Tensor, num_classes: int, pairs: Sequence[tuple[str, float]],
              max_iter: int, init: Sequence[Linear] | None = None, rows: slice = slice(None)) -> list[Linear]:
    """One linear classifier per (loss, lambda) in ``pairs``, all fitted at once: minimise, for
    each, mean loss + (lambda / 2) ||W||^2 over the features ``f.x[rows]`` by L-BFGS in the
    preconditioned coordinates U = L^T W (L from ``f.chol``; the bias scaled by sqrt(c)). The
    problems are independent; side by side each L-BFGS step takes one (N, F) x (F, P K) product.

    Args:
        f: standardised features with a preconditioner for every lambda of ``pairs``.
        y: labels (N,) of those rows, in 0..num_classes-1.
        num_classes: K.
        pairs: (a key of :data:`CLASSIFIERS`, lambda) per classifier.
        max_iter: L-BFGS iterations.
        init: start from these fits' weights (one per pair); None = W = 0.
        rows: the rows of ``f.x`` fitted.
    """
    xs = f.x[rows]
    n, K, P = len(xs), num_classes, len(pairs)
    order = sorted(range(P), key=lambda i: pairs[i][1])  # columns grouped by lambda
    l2_col = [float(pairs[i][1]) for i in order]
    lam = torch.tensor(l2_col).repeat_interleave(K)
    groups = [(l2, K * l2_col.index(l2), K * (len(l2_col) - l2_col[::-1].index(l2)))
              for l2 in sorted(set(l2_col))]  # (lambda, its first column, its last + 1)
    by_loss = {name: torch.tensor([j for j, i in enumerate(order) if pairs[i][0] == name])
               for name in dict.fromkeys(p[0] for p in pairs)}
    scale = CURVATURE ** 0.5  # the bias's preconditioner: curvature c (centred features)

    def weights(U: Tensor) -> Tensor:  # W = L^-T U, per lambda
        return torch.cat([torch.linalg.solve_triangular(f.chol[l2].T, U[:, a:b], upper=True)
                          for l2, a, b in groups], 1)

    if init is None:
        U, b = torch.zeros(xs.shape[1], P * K), torch.zeros(P * K)
    else:
        W0 = torch.cat([init[i].W for i in order], 1)
        U = torch.cat([f.chol[l2].T @ W0[:, a:c] for l2, a, c in groups], 1)
        b = torch.cat([init[i].b for i in order]) * scale
    U.requires_grad_(True)
    b.requires_grad_(True)
    opt = torch.optim.LBFGS([U, b], lr=1.0, max_iter=max_iter, history_size=20,
                            line_search_fn="strong_wolfe", tolerance_grad=1e-6, tolerance_change=1e-9)

    def closure() -> Tensor:
        # the gradient by hand: (G^T X)^T, the layout MKL runs fast for a few columns (X^T G was
        # ten times slower for 10 classes on this machine), and no autograd graph of X
        with torch.no_grad():
            W = weights(U)
            s = (xs @ W + b / scale).view(n, P, K)
            g = torch.empty_like(s)
            value = 0.5 * (lam * W.square().sum(0)).sum()
            for name, idx in by_loss.items():
                v, g[:, idx] = CLASSIFIERS[name](s[:, idx], y)
                value = value + v.sum()
            g = g.view(n, P * K)
            grad_w = (g.T @ xs).T + lam * W
            U.grad = torch.cat([torch.linalg.solve_triangular(f.chol[l2], grad_w[:, a:c], upper=False)
                                for l2, a, c in groups], 1)
            b.grad = g.sum(0) / scale
            return value

    opt.step(closure)
    with torch.no_grad():
        W, bias = weights(U), b / scale
    fits: list[Linear] = [None] * P  # type: ignore[list-item]
    for j, i in enumerate(order):
        fits[i] = Linear(f.mean, f.std, W[:, j * K:(j + 1) * K].clone(), bias[j * K:(j + 1) * K].clone(),
                         float(pairs[i][1]), pairs[i][0])
    return fits


def fit_linear(x: Tensor, y: Tensor, num_classes: int, l2s: Sequence[float], loss: str = "logistic",
               max_iter: int = FIT_ITER, init: Sequence[Linear] | None = None) -> list[Linear]:
    """One linear classifier per penalty in ``l2s`` (:func:`fit_pairs`), on features ``x`` (N, F)
    standardised here, labels ``y`` (N,) in 0..num_classes-1, ``loss`` a key of
    :data:`CLASSIFIERS`; ``init``: start from these fits (one per lambda), None = W = 0."""
    return fit_pairs(Standardised.of(x, l2s), y, num_classes, [(loss, l2) for l2 in l2s], max_iter, init)


def fit_softmax(x: Tensor, y: Tensor, num_classes: int, l2: float, max_iter: int = FIT_ITER,
                init: Linear | None = None) -> Linear:
    """Multinomial logistic regression at one penalty (:func:`fit_linear`)."""
    return fit_linear(x, y, num_classes, [l2], "logistic", max_iter, None if init is None else [init])[0]


def probe_accuracies(f: Standardised, train_y: Tensor, test_x: Tensor, test_y: Tensor, num_classes: int,
                     grid: Iterable[float] = L2_GRID, losses: Sequence[str] = tuple(CLASSIFIERS),
                     ) -> dict[str, tuple[float, float]]:
    """Per loss, the test accuracy of the probe whose lambda wins on the last 10% of the training
    features ``f`` (standardised with all of them), refitted on all of them from that fit:
    {loss: (test accuracy, lambda)}. The grid's fits run side by side, then the refits.
    ``test_x``: the test features standardised as ``f`` (``f.apply``)."""
    n = len(train_y)
    n_val = max(1, int(n * VALIDATION_FRACTION))
    fit_rows, val_x, val_y = slice(0, n - n_val), f.x[n - n_val:], train_y[n - n_val:]
    pairs = [(loss, l2) for loss in losses for l2 in sorted(grid)]
    fits = fit_pairs(f, train_y[fit_rows], num_classes, pairs, FIT_ITER, rows=fit_rows)

    def on_validation(m: Linear) -> tuple[float, float]:  # ties: the strongest penalty
        return m.accuracy(val_x, val_y, standardised=True), m.l2

    best = [max((m for m in fits if m.loss == loss), key=on_validation) for loss in losses]
    final = fit_pairs(f, train_y, num_classes, [(m.loss, m.l2) for m in best], REFIT_ITER, init=best)
    return {m.loss: (m.accuracy(test_x, test_y, standardised=True), m.l2) for m in final}


def probe_accuracy(train_x: Tensor, train_y: Tensor, test_x: Tensor, test_y: Tensor, num_classes: int,
                   grid: Iterable[float] = L2_GRID, loss: str = "logistic") -> tuple[float, float]:
    """Test accuracy of the probe whose lambda wins on the last 10% of the training features,
    refitted on all of them from that fit; returns (test accuracy, lambda)."""
    grid = list(grid)
    f = Standardised.of(train_x, grid)
    return probe_accuracies(f, train_y, f.apply(test_x), test_y, num_classes, grid, [loss])[loss]


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
    whole = Standardised.of(torch.cat(train_f, 1), L2_GRID)  # one Gram matrix serves every block
    ends = torch.tensor([f.shape[1] for f in train_f]).cumsum(0).tolist()
    test_x = whole.apply(torch.cat(test_f, 1))
    sets = [(None, whole, test_x),
            *[(name, whole.columns(end - f.shape[1], end), test_x[:, end - f.shape[1]:end])
              for name, f, end in zip(blocks, train_f, ends, strict=True)]]
    scores = [probe_accuracies(tr, train_y, te, test_y, num_classes) for _, tr, te in sets]
    (acc, l2), (svm_acc, svm_l2) = scores[0]["logistic"], scores[0]["l2svm"]
    result = ProbeResult(acc, l2, len(train_y), len(test_y), l2svm={"accuracy": svm_acc, "l2": svm_l2})
    for (name, tr, _), score in zip(sets[1:], scores[1:], strict=True):
        (a, lam), (sa, slam) = score["logistic"], score["l2svm"]
        result.blocks.append({"block": name, "dim": int(tr.x.shape[1]), "accuracy": a, "l2": lam,
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
