"""The adversarial losses and the regularisers beside them; every class is a config ``_target_``
``gan_cli.losses.<Class>`` (conf/loss/<name>.yaml, a model's ``regularizers``).

    base.py          the loss-object contract (AdversarialLoss), score_stats, input_gradient
    classic.py       games on D's scores: minimax, non-saturating, LSGAN, hinge, none
    wasserstein.py   critics and the gradient penalties: WGAN, WGAN-GP, DRAGAN, SinGAN's WGAN-GP
    began.py         BEGAN (D an autoencoder)     fgan.py   f-GAN     mmd.py   MMD-GAN (D's features)
    regularizers.py  terms with their own network and interval: R1, R2, drift, path length,
                     pix2pix's L1, SinGAN's reconstruction
"""

from gan_cli.losses.base import AdversarialLoss, clip_weights, input_gradient, score_stats
from gan_cli.losses.began import BEGAN, recon_error
from gan_cli.losses.classic import (
    LSGAN,
    Hinge,
    Minimax,
    NoAdversarial,
    NonSaturating,
    d_loss_bce,
    d_loss_hinge,
    d_loss_ls,
    g_loss_hinge,
    g_loss_ls,
    g_loss_minimax,
    g_loss_ns,
)
from gan_cli.losses.fgan import (
    F_DIVERGENCES,
    FGAN,
    FDivergence,
    d_loss_fgan,
    fgan_activation,
    fgan_conjugate,
    g_loss_fgan_nonsaturating,
    g_loss_fgan_saturating,
)
from gan_cli.losses.mmd import MMD, median_distance, mmd2, rbf_mixture_kernel
from gan_cli.losses.regularizers import (
    R1,
    R2,
    Drift,
    L1Reconstruction,
    PathLength,
    RegContext,
    SinGANReconstruction,
    grad_sq_norm,
    lazy_factor,
)
from gan_cli.losses.wasserstein import (
    DRAGAN,
    WGAN,
    WGANGP,
    SinGANWGANGP,
    d_loss_wasserstein,
    g_loss_wasserstein,
    gradient_penalty,
    interpolate,
    patch_gradient_penalty,
    perturb,
)

__all__ = [
    "BEGAN", "DRAGAN", "F_DIVERGENCES", "FGAN", "LSGAN", "MMD", "R1", "R2", "WGAN", "WGANGP",
    "AdversarialLoss", "Drift", "FDivergence", "Hinge", "L1Reconstruction", "Minimax", "NoAdversarial",
    "NonSaturating", "PathLength", "RegContext", "SinGANReconstruction", "SinGANWGANGP",
    "clip_weights", "d_loss_bce", "d_loss_fgan", "d_loss_hinge", "d_loss_ls",
    "d_loss_wasserstein", "fgan_activation", "fgan_conjugate", "g_loss_fgan_nonsaturating",
    "g_loss_fgan_saturating", "g_loss_hinge", "g_loss_ls", "g_loss_minimax", "g_loss_ns",
    "g_loss_wasserstein", "grad_sq_norm", "gradient_penalty", "input_gradient", "interpolate",
    "lazy_factor", "median_distance", "mmd2", "patch_gradient_penalty", "perturb", "rbf_mixture_kernel",
    "recon_error", "score_stats",
]
