"""gan-eval's and gan-sample's configs (conf/eval.yaml, conf/sample.yaml)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Optional

from omegaconf import MISSING

from gan_cli.config.checks import (
    _inception_keys,
    _jacobian_threshold,
    _non_negative,
    _one_of,
    _positive,
    _require,
)


@dataclass
class EvalConfig:
    """gan-eval: conf/eval.yaml."""

    ckpt: str = MISSING  # a gan-cli checkpoint, e.g. outputs/<date>/<time>/checkpoints/last.pt
    metrics: Optional[list[str]] = None  # null = the dataset's defaults; see README (Evaluation)
    num_samples: int = 10000  # generated samples (the modes metric uses 2,500, by its protocol)
    num_real: int = 10000  # real samples behind the cached reference statistics
    split: Optional[str] = None  # real split to compare with; null = the one trained on
    batch_size: int = 250  # generation and feature-extraction batch
    device: str = "cpu"  # cpu | cuda
    seed: int = 0  # of the latent codes (and labels) sampled for evaluation
    # the Inception-v3 weights file (weights-inception-2015-12-05-6726825d.pth); null = torch hub cache
    inception_weights: Optional[str] = None
    # download a missing Inception weights file into the torch hub cache (checked against its
    # SHA-256, written atomically); false = never touch the network
    allow_download: bool = True
    # where to download it from; null = $GAN_CLI_INCEPTION_URL, else torch-fidelity's URL
    inception_url: Optional[str] = None
    # the download's SHA-256 (or a prefix); null = the hash in the URL's file name (torch hub's -<hash>.pth)
    inception_sha256: Optional[str] = None
    # resize to 299x299 before Inception: tf1 = torch-fidelity's TF1-compatible bilinear (the original
    # FID code's; FIDs comparable with published ones) | antialias = torchmetrics' default
    inception_resize: str = "tf1"
    # where the checkpoint's dataset is looked for and unpacked (its saved dataset.root is not
    # used: docs/reliability.md); null = $GAN_CLI_DATA, else ~/.cache/gan-cli/data
    data_root: Optional[str] = None
    data_download: bool = False  # let torchvision download that dataset into data_root (the saved
    #                              dataset.download is not used)
    use_ema: bool = True  # evaluate G_ema when the checkpoint has one; false = the trained G
    # the truncation trick for every sample: |z_i| <= truncation (Brock et al. 2019), or, for
    # StyleGAN / StyleGAN2, psi in W: w = w_avg + truncation (w - w_avg) (Karras et al. 2019); null = off
    truncation: Optional[float] = None
    truncation_method: str = "resample"  # resample (a truncated normal) | clamp
    # only latents where ||dG/dz||_F <= this x its batch's median (Tanielian et al. 2020;
    # gan_cli/latents.py), for data of separate modes; null = off
    jacobian_threshold: Optional[float] = None
    # thresholds of truncation_sweep.png (images only), one row each, the same latents per column;
    # StyleGAN / StyleGAN2 get style_mixing.png, stochastic_variation.png and psi_sweep.png instead
    truncation_sweep: list[float] = field(default_factory=lambda: [2.0, 1.0, 0.5, 0.25, 0.04])
    sweep_columns: int = 10  # samples per row of that figure (at most 8 in the style figures); 0 = no figure
    # linear: D's features as a representation (Radford et al. 2016, section 5.1): a linear
    # classifier on D's block features, fitted on the labelled training split, its test accuracy
    # beside the same probe on a randomly initialised D (gan_cli/metrics/probe.py); null = none.
    # metrics=[] runs the probe alone.
    probe: Optional[str] = None
    # per-metric options over the data's, e.g. +metric_options.modes.num_fake=2600 (Stacked MNIST's
    # modes draw 26,000 samples by the papers' protocol); keys: gan_cli/metrics/registry.py
    metric_options: dict[str, Any] = field(default_factory=dict)
    probe_train: int = 10000  # labelled training images the probe is fitted on (10% held out to
    #                           pick its L2 penalty)
    probe_test: int = 10000  # test images it is scored on (the test split; else held-out training
    #                          images after the probe_train first ones, for data with no test split)
    logger: Any = MISSING

    def __post_init__(self) -> None:
        _positive(self, "num_samples", "num_real", "batch_size", "probe_train", "probe_test")
        _non_negative(self, "sweep_columns")
        _require(all(isinstance(v, Mapping) for v in self.metric_options.values()), "metric_options",
                 "must map metric names to their options, e.g. {modes: {num_fake: 2600}}")
        _require(self.probe in (None, "linear"), "probe", f"must be linear or null, got {self.probe!r}")
        _one_of(self, "device", ("cpu", "cuda"))
        _one_of(self, "truncation_method", ("resample", "clamp"))
        _require(self.truncation is None or self.truncation > 0, "truncation",
                 f"must be > 0 or null, got {self.truncation}")
        _jacobian_threshold(self)
        _inception_keys(self)
        _require(all(t > 0 for t in self.truncation_sweep), "truncation_sweep",
                 f"thresholds must be > 0, got {list(self.truncation_sweep)}")


SAMPLE_MODES = ("export", "grid", "interp", "arithmetic", "classes", "mixing", "psi")


@dataclass
class SampleConfig:
    """gan-sample: conf/sample.yaml (gan_cli/sample.py). A checkpoint's generator, no training."""

    ckpt: str = MISSING  # a gan-cli checkpoint, e.g. outputs/<date>/<time>/checkpoints/last.pt
    # export: n samples as files | grid: a grid of samples | interp: latent walks (PNG strip + GIF)
    # | arithmetic: DCGAN's vector arithmetic (first a numbered grid to pick from) | classes: one
    # row per class | mixing, psi: StyleGAN's style mixing and truncation-psi figures
    mode: str = "export"
    n: int = 64  # export: how many samples; grid: how many images
    format: str = "png"  # export: png (a folder of files) | npz (one file); 2D points: npz | csv
    # a conditional G's class for every sample; null = all classes in turn (sample i: i mod classes)
    label: Optional[int] = None
    split: Optional[str] = None  # an image-conditioned G's inputs: this split; null = the trained one
    seed: int = 0  # of every random latent (and of the perturbations)
    truncation: Optional[float] = None  # every latent component within [-t, t]; null = off
    truncation_method: str = "resample"  # resample (a truncated normal) | clamp
    # export, unconditional G: only latents where ||dG/dz||_F <= this x its batch's median
    # (Tanielian et al. 2020; gan_cli/latents.py), for data of separate modes; null = off
    jacobian_threshold: Optional[float] = None
    use_ema: bool = True  # the checkpoint's G_ema when it has one; false = the trained G
    device: str = "cpu"  # cpu | cuda
    batch_size: int = 250  # samples per forward pass
    # where the checkpoint's dataset is looked for and unpacked (its saved dataset.root is not
    # used: docs/reliability.md); null = $GAN_CLI_DATA, else ~/.cache/gan-cli/data
    data_root: Optional[str] = None
    data_download: bool = False  # let torchvision download that dataset into data_root (the saved
    #                              dataset.download is not used)
    # interp: one row per walk; a walk goes through `seeds` in order (latent of seed s: the first
    # draw of a generator seeded with s), or between two random latents when seeds is null
    interp: str = "slerp"  # lerp | slerp
    rows: int = 4  # interp without seeds: walks; mixing: sources A; psi: latents
    columns: int = 8  # classes: fixed latents (one per column); mixing: sources B
    steps: int = 8  # interp: images per segment between two latents, both ends included
    seeds: Optional[list[int]] = None
    fps: float = 8.0  # frames per second of the GIF (and MP4)
    mp4: bool = True  # also an MP4 when imageio-ffmpeg is installed; skipped (with a note) otherwise
    # arithmetic: ``select`` = three lists of indices into candidates.png, A - B + C (Radford et al.
    # 2016, figure 7); null = write candidates.png only, to pick from
    select: Optional[list[list[int]]] = None
    candidates: int = 64  # images in candidates.png
    perturb: float = 0.25  # uniform noise in [-perturb, perturb] per component around the result
    # psi: truncation values of the psi figure (StyleGAN figure 8)
    psis: list[float] = field(default_factory=lambda: [1.0, 0.7, 0.5, 0.0, -0.5, -1.0])

    def __post_init__(self) -> None:
        _one_of(self, "mode", SAMPLE_MODES)
        _one_of(self, "format", ("png", "npz", "csv"))
        _one_of(self, "interp", ("lerp", "slerp"))
        _one_of(self, "device", ("cpu", "cuda"))
        _one_of(self, "truncation_method", ("resample", "clamp"))
        _positive(self, "n", "batch_size", "rows", "columns", "fps", "candidates")
        _require(self.steps >= 2, "steps", f"must be >= 2 (both ends of a segment), got {self.steps}")
        _require(self.truncation is None or self.truncation > 0, "truncation",
                 f"must be > 0 or null, got {self.truncation}")
        _require(self.label is None or self.label >= 0, "label", f"must be >= 0 or null, got {self.label}")
        _jacobian_threshold(self)
        _require(self.seeds is None or len(self.seeds) >= 2, "seeds",
                 f"a walk needs at least 2 seeds, got {self.seeds}")
        _non_negative(self, "perturb")
        if self.select is not None:
            _require(len(self.select) == 3 and all(len(g) > 0 for g in self.select), "select",
                     f"must be three non-empty lists of indices (A - B + C), got {self.select}")
