"""Judging a generator: the metrics behind ``gan-eval`` and the in-training evaluations.

Both paths rebuild nothing from code: ``gan-eval`` reads a checkpoint with weights_only loading,
rebuilds G from the config saved inside it, and calls :func:`compute_metrics` from
``gan_cli.metrics``; the training loop calls :class:`TrainingMetrics` at its own interval.
Which metrics run by default is a fact of the data (``DataSource.default_metrics``): mode
coverage for 2D mixtures, the offline Fashion-MNIST feature network for MNIST-like images,
Inception (FID / IS / KID) for other images.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from gan_cli.checkpoint import CheckpointError, load_checkpoint
from gan_cli.errors import ConfigError
from gan_cli.latents import sample_latents
from gan_cli.seeding import derive_seed

log = logging.getLogger("gan_cli")

# Direction of every number the metrics report: True when lower is better.
LOWER_IS_BETTER = {
    "fid": True, "kid_mean": True, "fd_fashion": True, "reverse_kl": True,
    "nn_distance_min": False, "nn_distance_mean": False,
    "is_mean": False, "cis_fashion_mean": False, "precision": False, "recall": False,
    "precision_fashion": False, "recall_fashion": False, "modes_captured": False,
    "high_quality_fraction": False,
}


def make_sampler(G: nn.Module, z_dim: int, device: torch.device, seed: int,
                 batch_size: int = 250, truncation: float | None = None,
                 truncation_method: str = "resample") -> Callable[[int], torch.Tensor]:
    """``sample(n)``: n samples of G in eval mode from a fixed latent stream (labels uniform).

    With ``truncation``, every latent component lies within [-truncation, truncation]
    (``gan_cli.latents``).
    """
    g = torch.Generator(device=device).manual_seed(derive_seed(seed, "eval_z"))

    @torch.no_grad()
    def sample(n: int) -> torch.Tensor:
        was_training = G.training
        G.eval()
        out = []
        for start in range(0, n, batch_size):
            m = min(batch_size, n - start)
            z = sample_latents(m, z_dim, generator=g, device=device, truncation=truncation,
                               method=truncation_method)
            y = (torch.randint(G.num_classes, (m,), generator=g, device=device)
                 if G.num_classes else None)
            out.append(G(z, y).float())
        G.train(was_training)
        return torch.cat(out)

    return sample


def real_data(data: Any, num_real: int, split: str):
    """The registry's RealData for a DataSource (name keyed by dataset, shape and split)."""
    from gan_cli.metrics.registry import RealData

    name = f"{getattr(data, 'name', 'data')}-{'x'.join(map(str, data.info.shape))}"
    num_real = min(num_real, getattr(data, "num_samples", num_real))  # the cache key's count
    return RealData(name=name, split=split, batches=lambda: data.real_batches(num_real),
                    modes=getattr(data, "modes", None), mode_std=getattr(data, "mode_std", None))


def metric_options(data: Any, base: dict) -> dict:
    """``base`` plus the data's own per-metric options (e.g. PR on the Fashion-MNIST features)."""
    options = dict(base)
    for name, opts in getattr(data, "metric_options", {}).items():
        options[name] = {**opts, **options.get(name, {})}
    options.setdefault("modes", {}).setdefault("num_fake", 2500)  # the PacGAN protocol's count
    return options


class TrainingMetrics:
    """Metrics every ``every_steps`` generator steps, with the best value so far and its step.

    Metrics that need Inception weights are dropped, with one warning, when the file is missing;
    the run goes on with the rest.
    """

    def __init__(self, cfg: DictConfig, data: Any, G: nn.Module, z_dim: int,
                 device: torch.device, seed: int, run_dir: Path):
        self.every_steps = cfg.every_steps
        names = cfg.names if cfg.names is not None else getattr(data, "default_metrics", ())
        self.names = [n for n in names if n != "nn"]  # nn is a figure: gan-eval draws it
        self.sample = make_sampler(G, z_dim, device, seed)
        self.real = real_data(data, cfg.num_real, "train")
        self.options = metric_options(data, {
            "num_fake": cfg.num_samples, "num_real": cfg.num_real, "keep_features": cfg.num_real,
            "device": str(device), "inception_weights": cfg.inception_weights,
        })
        self.best: dict[str, list] = {}  # key -> [value, step]

    def due(self, step: int) -> bool:
        return bool(self.names) and self.every_steps > 0 and step % self.every_steps == 0

    def __call__(self, step: int) -> dict[str, float]:
        from gan_cli.metrics.inception import MissingWeightsError
        from gan_cli.metrics.registry import compute_metrics

        try:
            values = compute_metrics(self.names, self.sample, self.real, self.options)
        except MissingWeightsError as e:
            dropped = [n for n in self.names if n in ("fid", "is", "kid", "pr")]
            log.warning("skipping %s during training: %s", ", ".join(dropped),
                        str(e).splitlines()[0])
            self.names = [n for n in self.names if n not in dropped]
            if not self.names:
                return {}
            values = compute_metrics(self.names, self.sample, self.real, self.options)
        record = dict(values)
        for key, value in values.items():
            if key not in LOWER_IS_BETTER or not math.isfinite(value):
                continue
            best = self.best.get(key)
            better = best is None or (value < best[0] if LOWER_IS_BETTER[key] else value > best[0])
            if better:
                self.best[key] = [value, step]
            record[f"best/{key}"], record[f"best/{key}_step"] = self.best[key]
        return record

    def state_dict(self) -> dict:
        return {"best": {k: list(v) for k, v in self.best.items()}, "names": list(self.names)}

    def load_state_dict(self, state: dict) -> None:
        self.best = {k: list(v) for k, v in state.get("best", {}).items()}


def evaluate(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    """``gan-eval``: the metrics of a checkpoint's generator, printed and written to metrics.json."""
    from gan_cli.metrics.registry import compute_metrics
    from gan_cli.train import build, build_generator, select_device

    state = load_checkpoint(cfg.ckpt)
    train_cfg = OmegaConf.create(state["config"])
    device = select_device(OmegaConf.create({"device": cfg.device}))
    # Rebuild the data (shape facts and real samples) and the generator the checkpoint describes.
    dataset_cfg = train_cfg.dataset
    if cfg.split is not None and "split" in dataset_cfg:
        dataset_cfg.split = cfg.split
    data = build(dataset_cfg, "dataset", batch_size=1, device="cpu", seed=train_cfg.seed)
    G = build_generator(train_cfg.model, data.info)
    which = "G_ema" if cfg.get("use_ema", True) and "G_ema" in state else "G"
    try:
        G.load_state_dict(state[which])
    except (RuntimeError, KeyError) as e:
        raise CheckpointError(f"{cfg.ckpt}: the generator's weights do not fit the model config "
                              f"saved with them ({str(e).splitlines()[0]})") from None
    G.to(device).eval()

    names = list(cfg.metrics) if cfg.metrics is not None else list(data.default_metrics)
    if not names:
        raise ConfigError("no metric is defined by default for this dataset: pass "
                          "metrics=[...] (fid, is, kid, pr, fd_fashion, cis_fashion, modes, nn)")
    split = dataset_cfg.get("split", "train")
    options = metric_options(data, {
        "num_fake": cfg.num_samples, "num_real": cfg.num_real, "keep_features": cfg.num_real,
        "batch_size": cfg.batch_size, "device": str(device),
        "inception_weights": cfg.inception_weights, "allow_download": cfg.allow_download,
        "nn": {"path": str(run_dir / "nearest_neighbours.png")},
    })
    provenance: dict = {}
    truncation, method = cfg.get("truncation"), cfg.get("truncation_method", "resample")
    sample = make_sampler(G, train_cfg.model.z_dim, device, cfg.seed, cfg.batch_size,
                          truncation, method)
    values = compute_metrics(names, sample, real_data(data, cfg.num_real, split), options,
                             provenance)
    result = {"checkpoint": str(Path(cfg.ckpt).resolve()), "step": state["step"],
              "generator": which, "truncation": truncation,
              "truncation_method": method if truncation is not None else None,
              "metrics": values, "provenance": provenance}
    if len(data.info.shape) == 3 and cfg.get("sweep_columns", 0) > 0:
        result["truncation_sweep"] = str(truncation_sweep(
            G, train_cfg.model.z_dim, device, cfg.seed, list(cfg.truncation_sweep),
            cfg.sweep_columns, method, run_dir / "truncation_sweep.png"))
    (run_dir / "metrics.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    trunc = f", truncation {truncation} ({method})" if truncation is not None else ""
    print(format_table(values, provenance, state["step"], f"{cfg.ckpt} [{which}{trunc}]"))
    logger = build(cfg.logger, "logger")
    logger.start(run_dir=run_dir, config={"eval": OmegaConf.to_container(cfg, resolve=True),
                                          "train": state["config"]},
                 name=f"eval-{run_dir.name}", group=None)
    logger.log({f"eval/{k}": v for k, v in values.items()}, step=state["step"])
    logger.finish()
    return result


@torch.no_grad()
def truncation_sweep(G: nn.Module, z_dim: int, device: torch.device, seed: int,
                     thresholds: list[float], columns: int, method: str, path: Path) -> Path:
    """A figure with one row per truncation threshold, after a first row without truncation.

    Every row draws its codes from the same seed, so with ``resample`` (inverse-CDF sampling)
    column j holds the same latent direction at every threshold, pulled towards 0 as the
    threshold shrinks: the rows show variety traded for typicality. A conditional G gets the
    classes 0, 1, 2, ... along the columns.
    """
    from gan_cli.data.figures import save_image_grid

    y = (torch.arange(columns, device=device) % G.num_classes) if G.num_classes else None
    # The first row is untruncated; for resample it is drawn as a normal truncated at 8 std
    # (P(|z| > 8) ~ 1e-15) so that it shares the other rows' uniform draws.
    untruncated = 8.0 if method == "resample" else None
    rows = []
    for t in [untruncated, *sorted(thresholds, reverse=True)]:
        g = torch.Generator(device=device).manual_seed(derive_seed(seed, "truncation_sweep"))
        z = sample_latents(columns, z_dim, generator=g, device=device, truncation=t, method=method)
        rows.append(G(z, y).float())
    return save_image_grid(torch.cat(rows), path, nrow=columns)


# result keys whose metric is not their prefix
_METRIC_OF = {"high_quality_fraction": "modes", "reverse_kl": "modes", "num_modes": "modes",
              "precision": "pr", "recall": "pr", "precision_fashion": "pr",
              "recall_fashion": "pr", "nn_distance_min": "nn", "nn_distance_mean": "nn"}


def format_table(values: dict[str, float], provenance: dict, step: int, ckpt: str) -> str:
    """The console table: each number with what it was computed against."""
    lines = [f"gan-eval: {ckpt} (step {step})",
             f"  {'metric':<22}{'value':>12}   computed against"]
    for key, value in values.items():
        name = _METRIC_OF.get(key) or max((n for n in provenance if key.startswith(n)),
                                          key=len, default=None)
        lines.append(f"  {key:<22}{value:>12.4f}   {describe(provenance.get(name, {}))}")
    return "\n".join(lines)


def describe(info: dict) -> str:
    ref = info.get("reference")
    parts = []
    if ref:
        parts.append(f"{ref['dataset']} {ref['split']} split, {ref['num_samples_used']} real "
                     f"on {ref['feature_net']}")
    if "num_fake" in info:
        parts.append(f"{info['num_fake']} generated")
    if "threshold" in info:
        parts.append(f"high quality within {info['threshold']} std of a mode")
    if "against" in info:
        parts.append(f"nearest of {info['against']}")
    if "network" in info:
        parts.append(f"on {info['network']}")
    return ", ".join(parts)
