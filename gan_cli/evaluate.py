"""gan-eval: a checkpoint's generator, rebuilt from the config saved inside it, judged by
:func:`compute_metrics` (the data's ``default_metrics`` unless ``metrics=`` names others);
``probe=linear`` adds a linear probe of its discriminator beside a random one (metrics/probe.py).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from gan_cli.errors import ConfigError
from gan_cli.latents import sample_latents
from gan_cli.models import takes_condition
from gan_cli.seeding import derive_seed

log = logging.getLogger("gan_cli")


def evaluate(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    """``gan-eval``: the metrics of a checkpoint's generator, printed and written to metrics.json."""
    from gan_cli.build import build, generator_from_checkpoint, select_device
    from gan_cli.metrics.inception import OPTION_KEYS
    from gan_cli.metrics.registry import check_real_counts, compute_metrics
    from gan_cli.metrics.tracker import make_sampler, metric_options, real_data
    from gan_cli.models import truncates_in_w
    from gan_cli.style_figures import save_style_figures

    device = select_device(OmegaConf.create({"device": cfg.device}))
    # Rebuild the data (shape facts and real samples) and the generator the checkpoint describes.
    rebuilt = generator_from_checkpoint(cfg.ckpt, device=device, use_ema=cfg.use_ema,
                                        split=cfg.split, data_root=cfg.data_root,
                                        download=cfg.data_download)
    G, which, train_cfg, data = rebuilt.G, rebuilt.which, rebuilt.config, rebuilt.data
    dataset_cfg = train_cfg.dataset

    # The data's default metrics, and those the generator names for itself (a cascade's figures).
    z_dim = getattr(G, "z_dim", train_cfg.model.get("z_dim"))
    names = (list(cfg.metrics) if cfg.metrics is not None else
             list(dict.fromkeys([*data.default_metrics, *getattr(G, "default_metrics", ())])))
    if not names and cfg.metrics is None:  # metrics=[] asks for none (e.g. the probe alone)
        raise ConfigError("no metric is defined by default for this dataset: pass "
                          "metrics=[...] (fid, is, kid, pr, fd_fashion, cis_fashion, modes, mode_spread, "
                          "energy, nn)")
    split = dataset_cfg.get("split", "train")
    options = metric_options(data, {
        "num_fake": cfg.num_samples, "num_real": cfg.num_real, "keep_features": cfg.num_real,
        "batch_size": cfg.batch_size, "device": str(device),
        **{key: cfg[key] for key in OPTION_KEYS},  # the Inception weights: file, download, resize
        "figure_dir": str(run_dir),  # where figure metrics draw (nearest_neighbours.png)
        "figure_seed": cfg.seed,  # their latents' stream
        **OmegaConf.to_container(cfg.metric_options),  # per-metric options, over the data's
    })
    check_real_counts(names, options, min(cfg.num_real, getattr(data, "num_samples", cfg.num_real)),
                      "num_real")
    provenance: dict = {}
    truncation, method = cfg.get("truncation"), cfg.get("truncation_method", "resample")
    jacobian_threshold = cfg.get("jacobian_threshold")
    sample = make_sampler(G, z_dim, device, cfg.seed, cfg.batch_size,
                          truncation, method, data=data, jacobian_threshold=jacobian_threshold)
    # the data's defaults run without the metrics whose weights cannot be had (one line says
    # which and why); a metric asked for by name that cannot run stops gan-eval (exit 1)
    skipped: dict | None = {} if cfg.metrics is None else None
    values = compute_metrics(names, sample, real_data(data, cfg.num_real, split), options,
                             provenance, generator=G, data=data, skipped=skipped) if names else {}
    if skipped:
        reason = next(iter(skipped.values())).splitlines()[0]
        print(f"skipped {', '.join(skipped)} (not asked for by name): {reason}")
    result = {"checkpoint": str(Path(cfg.ckpt).resolve()), "step": rebuilt.step,
              "generator": which, "truncation": truncation,
              "jacobian_threshold": jacobian_threshold,
              "truncation_method": (("psi" if truncates_in_w(G) else method)
                                    if truncation is not None else None),
              "metrics": values, "provenance": provenance, "skipped": skipped or {}}
    # the sweep varies latents: nothing to show for a G that translates an input image
    image_to_image = takes_condition(G) and not G.num_classes
    if len(data.info.shape) == 3 and cfg.get("sweep_columns", 0) > 0 and not image_to_image:
        if hasattr(G, "synthesize"):  # a style generator: style mixing, noise, psi sweep in W
            result.update(save_style_figures(G, run_dir, seed=cfg.seed, device=device,
                                             columns=min(cfg.sweep_columns, 8)))
        else:
            result["truncation_sweep"] = str(truncation_sweep(
                G, z_dim, device, cfg.seed, list(cfg.truncation_sweep),
                cfg.sweep_columns, method, run_dir / "truncation_sweep.png"))
    if cfg.probe == "linear":
        from gan_cli.metrics.probe import format_probe

        result["probe"] = linear_probe(cfg, device)
    (run_dir / "metrics.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    trunc = ""
    if truncation is not None:
        trunc = f", psi {truncation} in W" if truncates_in_w(G) else f", truncation {truncation} ({method})"
    if jacobian_threshold is not None:
        trunc += f", Jacobian threshold {jacobian_threshold} x median"
    if names:
        print(format_table(values, provenance, rebuilt.step, f"{cfg.ckpt} [{which}{trunc}]"))
    if "probe" in result:
        print(format_probe(result["probe"]))
        values.update({"probe_accuracy": result["probe"]["trained"]["accuracy"],
                       "probe_accuracy_random_d": result["probe"]["random"]["accuracy"]})
    logger = build(cfg.logger, "logger")
    logger.start(run_dir=run_dir, config={"eval": OmegaConf.to_container(cfg, resolve=True),
                                          "train": OmegaConf.to_container(train_cfg)},
                 name=f"eval-{run_dir.name}", group=None)
    logger.log({f"eval/{k}": v for k, v in values.items()}, step=rebuilt.step)
    logger.finish()
    return result


def linear_probe(cfg: DictConfig, device: torch.device) -> dict[str, Any]:
    """``probe=linear``: the checkpoint's D and a random D of the same architecture, both built as
    training builds them (``build_pair``: loss-dependent normalisation, spectral norm, packing),
    probed on the labelled training split and scored on the test split, or on training images
    after the first ``probe_train`` where the data have no test split (gan_cli/metrics/probe.py)."""
    from gan_cli.build import build_data, build_pair, use_local_data
    from gan_cli.checkpoint import load_checkpoint
    from gan_cli.config import validate_saved_config
    from gan_cli.metrics.probe import run_probe

    state = load_checkpoint(cfg.ckpt)
    config = validate_saved_config(state.get("config"), f"checkpoint {cfg.ckpt}")
    use_local_data(config, data_root=cfg.data_root, download=cfg.data_download)
    if "stages" in state:
        raise ConfigError("probe=linear: this checkpoint holds several stages (LAPGAN, SinGAN); "
                          "the probe reads a single discriminator")
    train_data = build_data(config.dataset, batch_size=1, device="cpu", seed=config.seed)
    test_data, skip, test_split = None, 0, "test"
    if "split" in config.dataset:
        test_cfg = config.dataset.copy()
        test_cfg.split = "test"
        try:
            test_data = build_data(test_cfg, batch_size=1, device="cpu", seed=config.seed)
        except ConfigError:  # no test split (MNIST-5k)
            test_data = None
    if test_data is None:
        test_data, skip, test_split = train_data, cfg.probe_train, f"train[{cfg.probe_train}:]"
        if getattr(train_data, "num_samples", 0) <= cfg.probe_train:
            raise ConfigError(f"probe_train={cfg.probe_train}: this dataset has no test split and "
                              f"{train_data.num_samples} images; lower probe_train to hold some out")
    # the random D's weights come from a stream of gan-eval's seed; the global one is restored
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(cfg.seed, "probe_random_d") % 2**63)
        D = checkpoint_discriminator(state, config, train_data.info, device, cfg.ckpt)
        R = build_pair(config, train_data.info, device, 1).D
    record = run_probe(D, R, train_data, test_data, num_train=cfg.probe_train, num_test=cfg.probe_test,
                       test_skip=skip, device=device, batch_size=cfg.batch_size)
    return {"step": int(state["step"]), "test_split": test_split, **record}


def checkpoint_discriminator(state: dict[str, Any], config: DictConfig, info: Any,
                             device: torch.device, path: Any) -> nn.Module:
    """The D of a single-pair checkpoint ``state`` (read from ``path``), built from its validated
    ``config`` as training builds it (``build_pair``) and its weights loaded; CheckpointError when
    they do not fit."""
    from gan_cli.build import build_pair
    from gan_cli.checkpoint import CheckpointError, pair_states_of

    D = build_pair(config, info, device, 1).D
    try:
        D.load_state_dict(pair_states_of(state)[0]["D"])
    except (RuntimeError, KeyError) as e:
        raise CheckpointError(f"{path}: the discriminator's weights do not fit the model config "
                              f"saved with them ({str(e).splitlines()[0]})") from None
    return D


@torch.no_grad()
def truncation_sweep(G: nn.Module, z_dim: int, device: torch.device, seed: int,
                     thresholds: list[float], columns: int, method: str, path: Path) -> Path:
    """A figure with one row per truncation threshold after a row without; every row from the same
    seed, so a column keeps its latent direction (``resample``); classes 0, 1, ... along columns."""
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


def format_table(values: dict[str, float], provenance: dict, step: int, ckpt: str) -> str:
    """The console table: each number with what it was computed against."""
    from gan_cli.metrics.registry import metric_of

    lines = [f"gan-eval: {ckpt} (step {step})",
             f"  {'metric':<22}{'value':>12}   computed against"]
    described = set()  # a metric's provenance once, on its first key's row
    for key, value in values.items():
        metric = metric_of(key)
        info = provenance.get(metric.name, {}) if metric is not None and metric.name not in described else {}
        described.add(metric.name if metric is not None else key)
        lines.append(f"  {key:<22}{value:>12.4f}   {describe(info)}")
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
    if "image" in info:
        parts.append(f"against {info['image']}")
    if "floor" in info:
        parts.append(f"real-vs-real floor {info['floor']:.4f} (mean of {len(info['floor_pairs'])} "
                     f"pairs of {info['num_real']} real)")
    if "per_mode" in info:
        parts.append(f"1.0 = the data's spread; per mode: {info['per_mode']}")
    if "against" in info:
        parts.append(f"nearest of {info['against']}")
    if "pairs" in info:
        parts.append(info["pairs"])
    if "network" in info:
        parts.append(f"on {info['network']}")
    return ", ".join(parts)
