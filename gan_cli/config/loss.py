"""Schemas of the loss group (conf/loss/): one per loss; n_critic = D steps per G step (the papers' k)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

from omegaconf import MISSING

from gan_cli.config.checks import (
    _finite,
    _non_negative,
    _one_of,
    _positive,
    _require,
)


@dataclass
class LossConfig:
    _target_: str = MISSING
    n_critic: int = 1
    # Zero-centred gradient penalties on D, beside any loss (Mescheder et al. 2018): R1 at real
    # samples, R2 at generated ones, gamma/2 E||grad D||^2; 0 = off
    r1_gamma: float = 0.0
    r2_gamma: float = 0.0
    # apply R1/R2 every r_interval D updates; > 1 = lazy regularisation (StyleGAN2: 16), with
    # D's lr and betas corrected by r_interval / (r_interval + 1)
    r_interval: int = 1

    def __post_init__(self) -> None:
        _positive(self, "n_critic", "r_interval")
        _finite(self, "r1_gamma", "r2_gamma")
        _non_negative(self, "r1_gamma", "r2_gamma")


@dataclass
class MinimaxConfig(LossConfig):
    _target_: str = "gan_cli.losses.Minimax"


@dataclass
class NonSaturatingConfig(LossConfig):
    _target_: str = "gan_cli.losses.NonSaturating"


@dataclass
class WGANConfig(LossConfig):
    _target_: str = "gan_cli.losses.WGAN"
    clip_value: float = 0.01  # D's weights are clamped to [-clip_value, clip_value] after each step
    n_critic: int = 5

    def __post_init__(self) -> None:
        super().__post_init__()
        _finite(self, "clip_value")
        _positive(self, "clip_value")


@dataclass
class WGANGPConfig(LossConfig):
    _target_: str = "gan_cli.losses.WGANGP"
    gp_lambda: float = 10.0  # weight of the gradient penalty on interpolates
    n_critic: int = 5

    def __post_init__(self) -> None:
        super().__post_init__()
        _finite(self, "gp_lambda")
        _non_negative(self, "gp_lambda")


@dataclass
class SinGANWGANGPConfig(WGANGPConfig):
    """WGAN-GP with SinGAN's penalty: per pixel, on the gradient of the summed patch scores."""

    _target_: str = "gan_cli.losses.SinGANWGANGP"
    gp_lambda: float = 0.1  # the SinGAN code's weight
    n_critic: int = 3  # the SinGAN code's discriminator steps per iteration


@dataclass
class LSGANConfig(LossConfig):
    _target_: str = "gan_cli.losses.LSGAN"
    a: float = 0.0  # D's target for fake samples
    b: float = 1.0  # D's target for real samples
    c: float = 1.0  # G's target for its samples

    def __post_init__(self) -> None:
        super().__post_init__()
        _finite(self, "a", "b", "c")
        _require(self.a != self.b, "b", f"a (target for fake) and b (target for real) must differ, "
                                        f"both are {self.a:g}")


@dataclass
class DRAGANConfig(LossConfig):
    _target_: str = "gan_cli.losses.DRAGAN"
    dragan_lambda: float = 10.0  # weight of the gradient penalty around real data
    # uniform: x + alpha * perturb_scale * std * U[0, 1] (the authors' code, the default) |
    # normal: x + N(0, c), sqrt(c) = perturb_scale * std (the paper's eq. 9 and the lecture's table);
    # std: the real batch's
    perturb: str = "uniform"
    perturb_scale: float = 0.5  # the perturbations' reach (uniform) or std (normal), in units of std
    # ns: G minimises -log D(G(z)) (the authors' code, the default) | minimax: log(1 - D(G(z)))
    # (the paper's and the lecture's table, Lucic et al. 2018)
    g_loss: str = "ns"

    def __post_init__(self) -> None:
        super().__post_init__()
        _finite(self, "dragan_lambda", "perturb_scale")
        _non_negative(self, "dragan_lambda")
        _positive(self, "perturb_scale")
        _one_of(self, "perturb", ("uniform", "normal"))
        _one_of(self, "g_loss", ("ns", "minimax"))


@dataclass
class BEGANConfig(LossConfig):
    _target_: str = "gan_cli.losses.BEGAN"
    gamma: float = 0.5  # diversity ratio E[L(G(z))] / E[L(x)] the controller aims at
    lambda_k: float = 0.001  # learning rate of the k_t controller
    k_init: float = 0.0  # k_0

    def __post_init__(self) -> None:
        super().__post_init__()
        _require(0 < self.gamma <= 1, "gamma", f"must be in (0, 1], got {self.gamma}")
        _finite(self, "lambda_k")
        _non_negative(self, "lambda_k")
        _require(0 <= self.k_init <= 1, "k_init", f"must be in [0, 1], got {self.k_init}")


@dataclass
class NoAdversarialConfig(LossConfig):
    """No adversarial loss (both terms 0): only the model's regularisers train G, e.g.
    ``loss=none model=pix2pix`` is the L1-only U-Net of Isola et al.'s ablation."""

    _target_: str = "gan_cli.losses.NoAdversarial"


@dataclass
class HingeConfig(LossConfig):
    _target_: str = "gan_cli.losses.Hinge"


F_DIVERGENCE_NAMES = ("kl", "reverse_kl", "js", "pearson", "hellinger")


@dataclass
class FGANConfig(LossConfig):
    """f-GAN (Nowozin et al. 2016): D maximises E[g_f(V(x))] - E[f*(g_f(V(G(z))))]."""

    _target_: str = "gan_cli.losses.FGAN"
    # the f-divergence: kl | reverse_kl | js (Jensen-Shannon as the paper's f, i.e. 2 JSD) |
    # pearson (chi-squared) | hellinger (squared Hellinger)
    divergence: str = "js"
    # nonsaturating: G maximises E[g_f(V(G(z)))] (the paper's alternative, used in its experiments)
    # | saturating: G minimises the bound itself
    g_objective: str = "nonsaturating"

    def __post_init__(self) -> None:
        super().__post_init__()
        _one_of(self, "divergence", F_DIVERGENCE_NAMES)
        _one_of(self, "g_objective", ("nonsaturating", "saturating"))


@dataclass
class MMDConfig(LossConfig):
    """MMD-GAN (Li et al. 2017): kernel MMD^2 between D's features (D returns features)."""

    _target_: str = "gan_cli.losses.MMD"
    # bandwidths of the mixture of Gaussian RBF kernels, in D's feature units (the paper's set)
    sigmas: list[float] = field(default_factory=lambda: [1.0, 2.0, 4.0, 8.0, 16.0])
    n_critic: int = 5
    # D's weights are clamped to [-clip_value, clip_value] after each step; null = no clipping
    clip_value: Optional[float] = 0.01
    biased: bool = False  # the biased MMD^2 estimator instead of the unbiased one
    # fixed: sigmas in D's feature units (the paper's) | median: sigmas in units of the median
    # distance between the batch's real and generated features (Gretton et al. 2012's heuristic;
    # a weight-clipped D without BatchNorm has features far smaller than the fixed sigmas)
    bandwidth: str = "fixed"
    # the autoencoder terms of Li et al.'s full objective: D also minimises ae_lambda x (E||x -
    # f_dec(D(x))||^2 + E||G(z) - f_dec(D(G(z)))||^2), f_dec a decoder on D's features added to D
    # (gan_cli/losses/mmd.py); 0 = the MMD part alone; the authors' code uses 8
    ae_lambda: float = 0.0
    decoder_hidden: list[int] = field(default_factory=lambda: [256])  # the decoder's hidden widths

    def __post_init__(self) -> None:
        super().__post_init__()
        _finite(self, "ae_lambda")
        _non_negative(self, "ae_lambda")
        _require(all(h > 0 for h in self.decoder_hidden), "decoder_hidden",
                 f"must be positive widths, got {list(self.decoder_hidden)}")
        _require(len(self.sigmas) > 0 and all(0 < s < math.inf for s in self.sigmas), "sigmas",
                 f"must be a non-empty list of positive bandwidths, got {list(self.sigmas)}")
        _finite(self, "clip_value")
        _require(self.clip_value is None or self.clip_value > 0, "clip_value",
                 f"must be > 0 or null, got {self.clip_value}")
        _one_of(self, "bandwidth", ("fixed", "median"))


#: The options of conf/loss/ and their schemas.
LOSSES: dict[str, type] = {
    "minimax": MinimaxConfig,
    "ns": NonSaturatingConfig,
    "wgan": WGANConfig,
    "wgan_gp": WGANGPConfig,
    "singan_wgan_gp": SinGANWGANGPConfig,
    "lsgan": LSGANConfig,
    "dragan": DRAGANConfig,
    "began": BEGANConfig,
    "hinge": HingeConfig,
    "fgan": FGANConfig,
    "mmd": MMDConfig,
    "none": NoAdversarialConfig,
}
