"""Image-to-image metrics on held-out pairs: L1, PSNR and SSIM of G(y) against the target x.

For each pair (input y, target x) of a paired source (``gan_cli.data.paired``), with images in
[-1, 1] and ``u = (v + 1) / 2`` the same image in [0, 1]:

    l1      = mean over all pixels of | G(z, y) - x |                 ([-1, 1] units, as the
              training term gan_cli.losses.L1Reconstruction reports it)
    psnr_db = mean over images of 10 log10(1 / MSE(u_G, u_x))          (data range 1; dB)
    ssim    = mean over images of SSIM(u_G, u_x)                      (Wang et al. 2004: 11x11
              Gaussian window, sigma 1.5, k1 = 0.01, k2 = 0.03, data range 1)

PSNR and SSIM are torchmetrics' ``PeakSignalNoiseRatio`` (per image: ``dim=(1, 2, 3)``) and
``StructuralSimilarityIndexMeasure``. An output identical to its target has MSE 0 and PSNR
+inf, which makes the mean +inf; SSIM is then 1. Outputs are clamped to [-1, 1] first, as the
figures draw them.

Isola et al. 2017 report FCN scores and AMT studies rather than these; L1, PSNR and SSIM are
the usual pixel-level checks of a paired translation (the L1 term is what the generator
minimises besides the adversarial loss). The registered metrics built on these functions
(gan_cli/metrics/defs/paired.py) add the Frechet distance between the features of the outputs
and of their targets.

Two steps, so that several metrics share one pass of G: :func:`translate` (G's outputs on the
first pairs of a source, reproducible, RNG untouched) and :func:`pixel_scores` (the three numbers
of outputs against targets); :func:`paired_metrics` is both.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

__all__ = ["paired_metrics", "pixel_scores", "translate"]


def translate(
    G: Callable[..., Tensor],
    source,
    num: int,
    batch_size: int = 250,
    seed: int = 0,
) -> tuple[Tensor, Tensor]:
    """G's outputs on the inputs of the first ``num`` pairs, with the pairs' targets.

    G runs in eval mode (restored afterwards; pix2pix's U-Net keeps its dropout on anyway) with
    gradients off; the latents and dropout masks come from a torch RNG seeded with ``seed`` inside
    ``torch.random.fork_rng``, so the outputs are reproducible and the training RNG streams are
    untouched (exact resume).

    Args:
        G: the generator, ``G(z, y) -> (N, C, H, W)`` in [-1, 1]; ``z`` has ``G.z_dim``
            columns (1 when G has no such attribute, e.g. the identity ``lambda z, y: y``).
        source: a paired source with ``real_pairs(num, batch_size)`` yielding
            ``Batch(x=targets, y=inputs)`` (e.g. built on the held-out split).
        num: pairs to translate (fewer when the source holds fewer).
        batch_size: pairs per forward pass.
        seed: of the latents and of the dropout masks.

    Returns:
        ``(outputs, targets)`` on the CPU in the targets' dtype, outputs clamped to [-1, 1] (as
        the figures draw them).

    Raises:
        ValueError: the source holds no pairs, or G's output does not match the targets.
    """
    z_dim = int(getattr(G, "z_dim", 1))
    was_training = getattr(G, "training", None)
    if was_training is not None:
        G.eval()
    outputs, targets = [], []
    devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
    try:
        with torch.random.fork_rng(devices=devices), torch.no_grad():
            torch.manual_seed(seed)
            for batch in source.real_pairs(num, batch_size):
                x, y = batch.x, batch.y
                z = torch.randn(x.shape[0], z_dim, device=x.device)
                out = G(z, y)
                if out.shape != x.shape:
                    raise ValueError(f"paired metrics: G's output {tuple(out.shape)} does not match "
                                     f"the targets {tuple(x.shape)}")
                outputs.append(out.to(x.dtype).clamp(-1.0, 1.0).cpu())
                targets.append(x.cpu())
    finally:
        if was_training is not None:
            G.train(was_training)
    if not outputs:
        raise ValueError("paired metrics: the source yielded no pairs")
    return torch.cat(outputs), torch.cat(targets)


def pixel_scores(outputs: Tensor, targets: Tensor, batch_size: int = 250) -> dict[str, float]:
    """L1, PSNR and SSIM of ``outputs`` against ``targets`` (the module docstring's formulas).

    Args:
        outputs, targets: (N, C, H, W) in [-1, 1], on one device.
        batch_size: images per torchmetrics update (SSIM's Gaussian filtering memory).

    Returns:
        ``{"l1": ..., "psnr_db": ..., "ssim": ...}`` as Python floats.
    """
    from torchmetrics.image import PeakSignalNoiseRatio, StructuralSimilarityIndexMeasure

    if outputs.shape != targets.shape or outputs.shape[0] == 0:
        raise ValueError(f"pixel_scores: outputs {tuple(outputs.shape)} and targets "
                         f"{tuple(targets.shape)} must be the same non-empty shape")
    psnr = PeakSignalNoiseRatio(data_range=1.0, dim=(1, 2, 3)).to(targets.device)
    ssim = StructuralSimilarityIndexMeasure(data_range=1.0).to(targets.device)
    abs_sum = torch.zeros((), dtype=torch.float64)
    for out, x in zip(outputs.split(batch_size), targets.split(batch_size), strict=True):
        abs_sum += (out - x).abs().sum().double().cpu()
        out_u, x_u = out.add(1.0).mul(0.5), x.add(1.0).mul(0.5)
        psnr.update(out_u, x_u)
        ssim.update(out_u, x_u)
    return {"l1": float(abs_sum / targets.numel()), "psnr_db": float(psnr.compute()),
            "ssim": float(ssim.compute())}


def paired_metrics(
    G: Callable[..., Tensor],
    source,
    num: int,
    batch_size: int = 250,
    seed: int = 0,
) -> dict[str, float]:
    """L1, PSNR and SSIM of ``G(z, y)`` against the targets of the first ``num`` pairs:
    :func:`pixel_scores` of :func:`translate` (same arguments).

    Returns:
        ``{"l1": ..., "psnr_db": ..., "ssim": ...}`` as Python floats.
    """
    outputs, targets = translate(G, source, num, batch_size, seed)
    return pixel_scores(outputs, targets, batch_size)
