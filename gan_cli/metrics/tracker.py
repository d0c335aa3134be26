"""Metrics during training: every ``metrics.every_steps`` generator steps, with the best value
of each number so far and the step it was reached at (kept in checkpoints).

Also the pieces gan-eval shares with it: the fixed-seed sampler of a generator, the real data of a
DataSource as the registry sees it, and the data's own per-metric options.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from torch import nn

from gan_cli.latents import draw_smooth, sample_latents
from gan_cli.models import takes_condition, truncates_in_w
from gan_cli.seeding import derive_seed

log = logging.getLogger("gan_cli")
# the metrics of samples kept by the Jacobian threshold (metrics.jacobian_threshold), beside the plain ones
JACOBIAN_PREFIX = "jacobian/"

def make_sampler(G: nn.Module | Callable[[], nn.Module], z_dim: int, device: torch.device,
                 seed: int, batch_size: int = 250, truncation: float | None = None,
                 truncation_method: str = "resample", data: Any = None,
                 jacobian_threshold: float | None = None) -> Callable[[int], torch.Tensor]:
    """``sample(n)``: n samples of G in eval mode from a fixed latent stream (labels uniform),
    with any noise G draws itself seeded per call (torch's global generator is left as it was).

    With ``truncation``, every latent component lies within [-truncation, truncation]
    (``gan_cli.latents``), or, for a generator that truncates in W (``truncates_in_w``: StyleGAN,
    StyleGAN2), ``truncation`` is psi and z is drawn untruncated. ``G`` may be a callable that
    returns the generator to draw from at each call (training: G_ema, or the cascade of the stages
    trained so far).

    With ``data`` (the DataSource): an image-conditioned G gets its inputs from
    ``data.conditions(n, generator)``, and samples smaller than the data's images (a growing
    generator in an early phase) are upsampled (nearest) to the data's size, so that they are
    compared with the real images at one resolution.

    With ``jacobian_threshold`` (>= 1): only latents where G's Jacobian norm is at most that many
    times its batch's median (``gan_cli.latents.smooth_latents``), drawn until each batch is full.
    """
    g = torch.Generator(device=device).manual_seed(derive_seed(seed, "eval_z"))
    current = (lambda: G) if isinstance(G, nn.Module) else G
    noise_seed, calls = derive_seed(seed, "eval_noise"), [0]
    rng_devices = [device] if torch.device(device).type == "cuda" else []

    @torch.no_grad()
    def sample(n: int) -> torch.Tensor:
        # a G with noise of its own (StyleGAN's noise inputs) draws it from torch's global
        # generator: seeded per call here and restored after, so sampling is reproducible and
        # leaves a training run's random stream (and its exact resume) untouched
        with torch.random.fork_rng(devices=rng_devices):
            torch.manual_seed(noise_seed + calls[0])
            calls[0] += 1
            return draw(n)

    def draw(n: int) -> torch.Tensor:
        G = current()
        was_training = G.training
        G.eval()
        out = []
        psi = truncation if truncates_in_w(G) else None

        def call(z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
            return G(z, y) if psi is None else G(z, y, psi=psi)

        def latents(m: int) -> tuple[torch.Tensor, torch.Tensor | None]:
            z = sample_latents(m, getattr(G, "z_dim", z_dim), generator=g, device=device,
                               truncation=None if psi is not None else truncation,
                               method=truncation_method)
            y = None
            if G.num_classes:
                y = torch.randint(G.num_classes, (m,), generator=g, device=device)
            elif takes_condition(G) and data is not None:
                y = data.conditions(m, g).to(device)
            return z, y

        for start in range(0, n, batch_size):
            m = min(batch_size, n - start)
            z, y = (latents(m) if jacobian_threshold is None else
                    draw_smooth(call, latents, m, jacobian_threshold))
            x = call(z, y).float()
            if data is not None and x.dim() == 4 and x.shape[-2:] != tuple(data.info.shape[-2:]):
                x = F.interpolate(x, size=tuple(data.info.shape[-2:]), mode="nearest")
            out.append(x)
        G.train(was_training)
        return torch.cat(out)

    return sample


def real_data(data: Any, num_real: int, split: str):
    """The registry's RealData for a DataSource (name keyed by dataset, shape and split)."""
    from gan_cli.metrics.registry import RealData

    name = f"{getattr(data, 'name', 'data')}-{'x'.join(map(str, data.info.shape))}"
    num_real = min(num_real, getattr(data, "num_samples", num_real))  # the cache key's count
    return RealData(name=name, split=split, batches=lambda: data.real_batches(num_real),
                    modes=getattr(data, "modes", None), mode_std=getattr(data, "mode_std", None),
                    fingerprint=data.fingerprint(num_real))


def metric_options(data: Any, base: dict) -> dict:
    """``base`` plus the data's own per-metric options (e.g. PR on the Fashion-MNIST features)."""
    options = dict(base)
    for name, opts in data.metric_options.items():
        options[name] = {**opts, **options.get(name, {})}
    return options


class TrainingMetrics:
    """Metrics every ``every_steps`` generator steps, with the best value so far and its step.

    Metrics that need Inception weights are dropped, with one warning, when the file is missing;
    the run goes on with the rest. Figure metrics (nearest neighbours) are left to gan-eval.
    Every evaluation draws the same latents (a sampler restarted from the run's seed), so the
    numbers follow G alone, and a resumed run computes what the run that never stopped did.
    """

    def __init__(self, cfg: DictConfig, data: Any, G: nn.Module | Callable[[], nn.Module],
                 z_dim: int, device: torch.device, seed: int, run_dir: Path,
                 reference: Any = None):
        """``reference``: the DataSource of ``cfg.split`` (``metrics.split``: another split of
        the data, e.g. its test split) whose real samples the metrics compare with; None = the
        training data ``data``."""
        self.every_steps = cfg.every_steps
        from gan_cli.metrics.inception import OPTION_KEYS
        from gan_cli.metrics.registry import METRICS, check_names, check_real_counts

        names = list(cfg.names if cfg.names is not None else data.default_metrics)
        check_names(names)
        self.names = [n for n in names if not METRICS[n].figure]
        self._sampler_args = (G, z_dim, device, seed)
        self.jacobian_threshold = cfg.get("jacobian_threshold")
        self._current = (lambda: G) if isinstance(G, nn.Module) else G
        self.data = data
        split = cfg.get("split") if reference is not None else None
        self.real = real_data(reference if reference is not None else data, cfg.num_real,
                              split or "train")
        self.options = metric_options(data, {
            "num_fake": cfg.num_samples, "num_real": cfg.num_real, "keep_features": cfg.num_real,
            "device": str(device), **{key: cfg.get(key) for key in OPTION_KEYS},
        })
        available = min(cfg.num_real, getattr(reference if reference is not None else data,
                                               "num_samples", cfg.num_real))
        check_real_counts(self.names, self.options, available, "metrics.num_real")  # not at step 1,000
        self.best: dict[str, list] = {}  # key -> [value, step]

    def __call__(self, step: int) -> dict[str, float]:
        from gan_cli.metrics.registry import compute_metrics, lower_is_better

        skipped: dict = {}
        values = compute_metrics(self.names, self.sampler(), self.real, self.options,
                                 generator=self._current(), data=self.data, skipped=skipped)
        if skipped:  # weights missing: dropped for the rest of the run, with one warning
            log.warning("skipping %s during training: %s", ", ".join(skipped),
                        next(iter(skipped.values())).splitlines()[0])
            self.names = [n for n in self.names if n not in skipped]
            if not self.names:
                return {}
        if self.jacobian_threshold is not None:
            smooth = compute_metrics(self.names, self.sampler(self.jacobian_threshold), self.real,
                                     self.options, generator=self._current(), data=self.data)
            values.update({f"{JACOBIAN_PREFIX}{k}": v for k, v in smooth.items()})
        record = dict(values)
        for key, value in values.items():
            lower = lower_is_better(key.removeprefix(JACOBIAN_PREFIX))
            if lower is None or not math.isfinite(value):
                continue
            best = self.best.get(key)
            better = best is None or (value < best[0] if lower else value > best[0])
            if better:
                self.best[key] = [value, step]
            record[f"best/{key}"], record[f"best/{key}_step"] = self.best[key]
        return record

    def sampler(self, jacobian_threshold: float | None = None) -> Callable[[int], torch.Tensor]:
        """A fresh sampler: the same latent stream, from its start, at every evaluation."""
        return make_sampler(*self._sampler_args, data=self.data,
                            jacobian_threshold=jacobian_threshold)

    def state_dict(self) -> dict:
        return {"best": {k: list(v) for k, v in self.best.items()}, "names": list(self.names)}

    def load_state_dict(self, state: dict) -> None:
        self.best = {k: list(v) for k, v in state.get("best", {}).items()}
