"""Latent codes for sampling: plain N(0, I), or truncated (the truncation trick, Brock et al. 2019).

Training always draws plain N(0, I) codes (:class:`Noise`). Figures and ``gan-eval`` can trade
variety for quality by keeping every component within ``[-t, t]``:

* ``resample``: BigGAN's "resample the values with magnitude above the threshold", i.e. a
  standard normal truncated to [-t, t]. Drawn in one pass by inverse-CDF sampling,
  ``z = Phi^-1(Phi(-t) + u (Phi(t) - Phi(-t)))`` with u uniform, which has exactly the
  distribution of resampling until every value is inside. Written here rather than with
  ``torch.nn.init.trunc_normal_``, which is a rejection loop (a host synchronisation per round)
  whose draws change with t: with the inverse CDF, one seed gives the same u at every threshold
  and a smaller t maps each u to a value closer to 0, so a column of the truncation sweep figure
  is one latent "direction" pulled towards the mean.
* ``clamp``: draw N(0, I) and clamp to [-t, t] (mass piles up at +-t; simpler, worse).

What a generator's first layer sees of z is ``model.generator.latent`` (:func:`shape_latent`, the one
place it is applied): z itself, or 2 Phi(z) - 1, uniform on (-1, 1) per component (DCGAN's U(-1, 1)
latent). Every sampler above stays N(0, I), so truncation, the Jacobian threshold and latent walks
work unchanged, and a truncated z maps to a uniform latent within [2 Phi(-t) - 1, 2 Phi(t) - 1].

And, for data made of separate modes, the Jacobian threshold (Tanielian et al. 2020, "Learning
disconnected manifolds: a no GAN's land"): a continuous G fed a connected latent must map some of
it onto paths between the modes, and those latents are where G is steepest. :func:`smooth_latents`
keeps a latent only where the Frobenius norm of G's Jacobian dG/dz is at most ``threshold`` times
the median norm of its batch. Their JBTopK keeps a fixed fraction instead; a ratio to the median
drops whatever share of G's samples lies on its steep paths, and, with ``threshold >= 1``, keeps at
least half of every batch. (Where more than half of a batch sits on plateaus that are flat to
float precision, e.g. every tanh unit saturated, the median is 0 and only those are kept.)
"""

from __future__ import annotations

from collections.abc import Callable

import torch

METHODS = ("resample", "clamp")


def uniform_latent(z: torch.Tensor) -> torch.Tensor:
    # 2 Phi(z) - 1: z ~ N(0, 1) componentwise -> U(-1, 1) (the normal CDF, probability integral transform)
    return 2 * torch.special.ndtr(z) - 1


#: model.generator.latent -> the map applied to z before G's first layer (None: z itself)
LATENT_MAPS: dict[str, Callable[[torch.Tensor], torch.Tensor] | None] = {"normal": None,
                                                                           "uniform": uniform_latent}


def shape_latent(G: torch.nn.Module, latent: str) -> torch.nn.Module:
    """``G`` with ``LATENT_MAPS[latent]`` applied to its z by a forward pre-hook (state dict
    unchanged) on ``G.latent_module`` where G has one (StyleGAN's mapping network, which
    also receives the style-mixing latent and the figures' z), else on G; returns G."""
    fn = LATENT_MAPS[latent]
    if fn is None:
        return G

    def hook(module, args, kwargs):
        if "z" in kwargs:
            return args, {**kwargs, "z": fn(kwargs["z"])}
        return (fn(args[0]), *args[1:]), kwargs

    getattr(G, "latent_module", G).register_forward_pre_hook(hook, with_kwargs=True)
    return G


def sample_latents(n: int, z_dim: int, *, generator: torch.Generator | None = None,
                   device: torch.device | str = "cpu", truncation: float | None = None,
                   method: str = "resample") -> torch.Tensor:
    """``n`` latent codes of size ``z_dim``, optionally truncated.

    Args:
        n: number of codes.
        z_dim: size of each.
        generator: the random stream (on ``device``); None = torch's global one.
        device: where the codes are made.
        truncation: threshold t > 0, or None for plain N(0, I).
        method: ``resample`` or ``clamp`` (see the module docstring).

    Returns:
        A float32 tensor (n, z_dim); with truncation, every entry lies in [-t, t].
    """
    if truncation is None:
        return torch.randn(n, z_dim, generator=generator, device=device)
    if not truncation > 0:
        raise ValueError(f"truncation must be > 0 or None, got {truncation}")
    if method == "clamp":
        return torch.randn(n, z_dim, generator=generator, device=device).clamp_(-truncation, truncation)
    if method != "resample":
        raise ValueError(f"truncation method must be one of {METHODS}, got {method!r}")
    u = torch.rand(n, z_dim, generator=generator, device=device, dtype=torch.float64)
    lo = torch.special.ndtr(torch.tensor(-float(truncation), dtype=torch.float64, device=device))
    z = torch.special.ndtri(lo + u * (1.0 - 2.0 * lo))  # Phi(t) - Phi(-t) = 1 - 2 Phi(-t)
    # float64 keeps the tails exact; the cast and clamp keep float32 rounding inside [-t, t]
    return z.to(torch.float32).clamp_(-truncation, truncation)


def jacobian_sq_norms(G: Callable[..., torch.Tensor], z: torch.Tensor,
                      y: torch.Tensor | None = None) -> torch.Tensor:
    """||dG(z)/dz||_F^2 of every sample, shape (N,), float64: exact, by reverse-mode autograd
    only (torch's forward mode loads torch.jit.script decompositions, a FutureWarning that broke
    the progress bar). Where G's output has at most z_dim values, one backward pass per output
    value gives a row of J (``sum_i ||J^T e_i||^2``); otherwise one double-backward JVP per
    latent dimension gives a column (``sum_k ||J e_k||^2``). G must treat the samples of a batch
    independently (eval mode)."""
    latent = z.detach().requires_grad_(True)
    with torch.enable_grad():
        out = G(latent) if y is None else G(latent, y)
        out = out.float().flatten(1)
        # summed in float64: on a saturated plateau a float32 square can underflow to 0, which
        # would make the batch's median 0 and the threshold keep only the underflowed latents
        total = torch.zeros(len(z), device=z.device, dtype=torch.float64)
        if out.shape[1] <= z.shape[1]:  # rows: the gradient of each output value
            for i in range(out.shape[1]):
                (row,) = torch.autograd.grad(out[:, i].sum(), latent, retain_graph=True)
                total += row.double().pow(2).sum(1)
            return total
        # columns: J e_k = d/du <u, J e_k> of the vector-Jacobian product u -> J^T u
        u = torch.zeros_like(out, requires_grad=True)
        (vjp,) = torch.autograd.grad(out, latent, u, create_graph=True)
        for k in range(z.shape[1]):
            direction = torch.zeros_like(latent)
            direction[:, k] = 1.0
            (column,) = torch.autograd.grad(vjp, u, direction, retain_graph=True)
            total += column.double().pow(2).sum(1)
    return total


def smooth_latents(G: Callable[..., torch.Tensor], z: torch.Tensor, y: torch.Tensor | None,
                   threshold: float) -> torch.Tensor:
    """The indices of the latents of ``z`` (with labels ``y``, or None) kept by the Jacobian
    threshold: ||dG/dz||_F <= threshold x the batch's median norm (module docstring)."""
    if not threshold >= 1:
        raise ValueError(f"the Jacobian threshold must be >= 1 (a multiple of the median), got {threshold}")
    sq = jacobian_sq_norms(G, z, y)
    return (sq <= threshold**2 * sq.median()).nonzero().squeeze(1)


def draw_smooth(G: Callable[..., torch.Tensor],
                draw: Callable[[int], tuple[torch.Tensor, torch.Tensor | None]], n: int,
                threshold: float) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``n`` latents (and their labels, or None) kept by the Jacobian threshold: rounds of ``n``
    candidates from ``draw(n)`` until ``n`` are kept; each round keeps at least half of its own."""
    zs, ys, kept = [], [], 0
    while kept < n:
        z, y = draw(n)
        keep = smooth_latents(G, z, y, threshold)
        zs.append(z[keep])
        ys.append(y[keep] if y is not None else None)
        kept += len(keep)
    return torch.cat(zs)[:n], (torch.cat(ys)[:n] if ys[0] is not None else None)


class Noise:
    """The training latent codes: a stream of their own, shared out over ranks.

    Every rank draws the same global batch and keeps its strided share, so N ranks together use
    exactly the codes one process would.

    Args:
        generator: the stream (on ``device``), seeded from the run's seed.
        z_dim: size of one code.
        device: where codes are made.
        rank, world_size: this process's share of each global batch.
    """

    def __init__(self, generator: torch.Generator, z_dim: int, device: torch.device,
                 rank: int = 0, world_size: int = 1) -> None:
        self.generator = generator
        self.z_dim = z_dim
        self.device = device
        self.rank = rank
        self.world_size = world_size

    def __call__(self, batch_per_device: int) -> torch.Tensor:
        z = torch.randn(batch_per_device * self.world_size, self.z_dim, generator=self.generator,
                        device=self.device)
        return z[self.rank :: self.world_size]

    def state_dict(self) -> torch.Tensor:
        return self.generator.get_state()

    def load_state_dict(self, state: torch.Tensor) -> None:
        self.generator.set_state(state)


def fixed_latents(z_dim: int, num_classes: int, count: int, seed: int, device: torch.device,
                  truncation: float | None = None,
                  method: str = "resample") -> tuple[torch.Tensor, torch.Tensor | None]:
    """The fixed batch behind every sample figure: one row per class for a conditional G.

    Drawn from a stream derived from the run's seed alone, so every figure of a run (and of its
    resumed continuation) shows the same codes.
    """
    from gan_cli.seeding import derive_seed

    g = torch.Generator().manual_seed(derive_seed(seed, "fixed_z"))
    y = None
    if num_classes:
        per_class = max(1, count // num_classes)
        y = torch.arange(num_classes).repeat_interleave(per_class)
        count = len(y)
    z = sample_latents(count, z_dim, generator=g, truncation=truncation, method=method)
    return z.to(device), (y.to(device) if y is not None else None)
