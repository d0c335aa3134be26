"""The top level of conf/train.yaml: the loop, EMA, in-training metrics, and the whole train config."""

from __future__ import annotations

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
class TrainLoopConfig:
    steps: int = 5000  # generator updates (each preceded by loss.n_critic discriminator updates)
    batch_size: int = 256  # the global batch: samples per update, summed over all processes
    batch_per_device: Optional[int] = None  # each process's share, batch_size / world size;
    #                       null = derived (the saved checkpoint config holds the derived value);
    #                       when set, it must equal batch_size / world size
    log_every_steps: int = 100  # console, metrics.jsonl and W&B interval (generator steps)
    sample_every_steps: int = 1000  # sample figure interval; the last step always gets one
    ckpt_every_steps: int = 1000  # checkpoint interval; the last step always gets one
    keep_ckpts: int = 3  # numbered checkpoints kept besides last.pt; 0 = only last.pt
    figure_samples: Optional[int] = None  # samples in a figure; null = the dataset's default
    # A non-finite (NaN/inf) loss, gradient or weight: stop (exit 1, the last good checkpoint
    # kept) | skip (that update is not applied; skips are counted in metrics.jsonl; costs one
    # host sync per update). Non-finite weights always stop the run.
    nonfinite: str = "stop"
    # On SIGUSR1 under SLURM (SLURM_JOB_ID set): after the checkpoint, `scontrol requeue` the job
    requeue: bool = False
    # The truncation trick in sample figures (Brock et al. 2019): every latent component within
    # [-figure_truncation, figure_truncation]; null = plain N(0, I). Training never truncates.
    figure_truncation: Optional[float] = None
    truncation_method: str = "resample"  # resample (a truncated normal) | clamp
    # D retrained from scratch at these generator steps: fresh weights (seeded by the seed and the
    # step, so a resume repeats them) and fresh optimizer moments, before the step's updates.
    # [] = never. With optimizer.lr_d=0 (D frozen), the seeds' two discriminator lessons.
    reset_d_at: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        _positive(self, "steps", "batch_size", "log_every_steps", "sample_every_steps",
                  "ckpt_every_steps")
        _non_negative(self, "keep_ckpts")
        _require(self.batch_per_device is None or self.batch_per_device > 0, "batch_per_device",
                 f"must be > 0 or null, got {self.batch_per_device}")
        _one_of(self, "nonfinite", ("stop", "skip"))
        _require(self.figure_samples is None or self.figure_samples > 0, "figure_samples",
                 f"must be > 0 or null, got {self.figure_samples}")
        _require(self.figure_truncation is None or self.figure_truncation > 0, "figure_truncation",
                 f"must be > 0 or null, got {self.figure_truncation}")
        _one_of(self, "truncation_method", ("resample", "clamp"))
        _require(all(isinstance(s, int) and s > 0 for s in self.reset_d_at), "reset_d_at",
                 f"must be generator steps > 0, got {list(self.reset_d_at)}")


@dataclass
class EMAConfig:
    """An exponential moving average of G's weights (Karras et al. 2019-2020; Yazici et al. 2019).

    After every generator update, G_ema <- beta * G_ema + (1 - beta) * G with
    beta = 0.5 ** (batch_size / (1000 * half_life_kimg)): the average's half-life is
    half_life_kimg thousand generated images (generator updates x train.batch_size). With
    rampup, the half-life is at most rampup x the images generated so far, so early weights fade
    fast. Buffers (BatchNorm statistics, spectral norm vectors) are copied from G.
    """

    half_life_kimg: Optional[float] = None  # null = no EMA; StyleGAN2 uses 10 (kimg)
    rampup: Optional[float] = 0.05  # null = no ramp-up
    start_kimg: float = 0.0  # before this many generated kimg, G_ema copies G (BigGAN: 1000 steps)
    for_samples: bool = True  # figures and in-training metrics use G_ema (gan-eval: use_ema)
    # Before each figure, metric and checkpoint, G_ema's BatchNorm statistics are recomputed on
    # bn_batches batches of train.batch_size latents (BigGAN's standing statistics); 0 = keep
    # G's copied statistics
    bn_batches: int = 16

    def __post_init__(self) -> None:
        _require(self.half_life_kimg is None or self.half_life_kimg > 0, "half_life_kimg",
                 f"must be > 0 or null, got {self.half_life_kimg}")
        _require(self.rampup is None or self.rampup > 0, "rampup",
                 f"must be > 0 or null, got {self.rampup}")
        _non_negative(self, "start_kimg", "bn_batches")


@dataclass
class TrainMetricsConfig:
    """Metrics computed during training (gan_cli/metrics); the best value is kept with its step."""

    every_steps: int = 1000  # generator steps between evaluations; 0 = never
    names: Optional[list[str]] = None  # null = the dataset's defaults (modes, fd_fashion, fid, ...)
    num_samples: int = 5000  # generated samples per evaluation (2,500 for modes, by its protocol)
    num_real: int = 10000  # real samples behind the cached reference statistics
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
    # the dataset split the real statistics come from: null = the split trained on; test = the
    # held-out split (Lucic et al. 2018 compare 10,000 samples with the 10,000 test images);
    # only for datasets with a `split` key
    split: Optional[str] = None
    # Also every metric on samples kept by the Jacobian threshold (Tanielian et al. 2020;
    # gan_cli/latents.py): only latents where ||dG/dz||_F <= this x its batch's median; logged
    # beside the plain ones as jacobian/<key>. null = off. For data of separate modes (the 2D
    # mixtures), where a continuous G's steepest latents map between the modes.
    jacobian_threshold: Optional[float] = None

    def __post_init__(self) -> None:
        _non_negative(self, "every_steps")
        _positive(self, "num_samples", "num_real")
        _jacobian_threshold(self)
        _inception_keys(self)


@dataclass
class TrainConfig:
    dataset: Any = MISSING
    model: Any = MISSING
    loss: Any = MISSING
    optimizer: Any = MISSING
    hardware: Any = MISSING
    logger: Any = MISSING
    train: TrainLoopConfig = field(default_factory=TrainLoopConfig)
    metrics: TrainMetricsConfig = field(default_factory=TrainMetricsConfig)
    ema: EMAConfig = field(default_factory=EMAConfig)
    seed: int = 0  # every rank seeds seed + rank
    name: Optional[str] = None  # run name in W&B; null = the run directory's name
    # null: fresh start | auto: the latest checkpoint in this run dir (none yet: fresh start) |
    # a checkpoint file (the run continues in its own new directory) | a run directory (the run
    # continues in that directory with its own options; see docs/reliability.md)
    resume: Optional[str] = None
    # What gan-train returns to Hydra (the value an Optuna sweep minimises or maximises): a key
    # of the run's last logged record, e.g. loss_g, wasserstein, or a metric computed at the last
    # step (fd_fashion, reverse_kl, high_quality_fraction; see metrics.every_steps).
    optimized_metric: str = "loss_g"
