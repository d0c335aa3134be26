"""StyleGAN's style-based generator (Karras et al. 2019), optionally grown progressively.

Karras, Laine, Aila 2019, "A Style-Based Generator Architecture for Generative Adversarial
Networks" (CVPR), section 2, figure 1(b), and appendix C; the lecture notes' formula (Leclaire,
"Large-scale GAN training"): ``AdaIN(x_i, y) = y_s,i (x_i - mu(x_i)) / sigma(x_i) + y_b,i``.

* Mapping network f: z -> pixel norm -> 8 equalised fully connected layers (learning rate x0.01)
  -> w (512). w is broadcast to the synthesis network's ``2 * (k + 1)`` style inputs (k doublings
  from the start side s to R), one per layer, so styles can differ per layer (style mixing,
  truncation of some layers only).
* Synthesis network g: a learned constant (C_s, s, s) of ones; per resolution two layers, each
  ``[conv 3x3 (not on the constant)] -> + B * noise -> + bias -> LeakyReLU(0.2) -> AdaIN(., A w)``;
  between resolutions bilinear upsampling (= nearest + the paper's [1, 2, 1] blur, see
  ``style_layers``). toRGB: a 1x1 convolution (linear) at every resolution, used for the
  progressive fade-in as in ProGAN (``set_phase``), or at the last one only when not growing.
* Style mixing regularisation (section 3.1): in training mode, with probability ``mixing_prob``
  (0.9) per batch, a second latent is drawn and its styles replace the first's from a random
  crossover layer on (among the layers active in the current phase).
* Truncation in W (section 3.3 / appendix B): ``w' = w_avg + psi (w - w_avg)``, ``w_avg`` a
  moving average of w kept during training (``G.mapping.w_avg``); ``truncation_cutoff`` limits
  it to the first styles (the paper: the coarse ones).
* Noise: one N(0, 1) image per layer and sample, scaled by a learned per-channel strength
  (initially 0). ``noise_mode``: ``"random"`` (fresh noise, training), ``"const"`` (one fixed draw
  per layer made at construction and kept in the state dict: the same image for the same w),
  ``"none"``.

StyleGAN's discriminator is ProGAN's (``gan_cli.models.progan.Discriminator``).

The generator interface the regularisers and figures use, shared with StyleGAN2's:
``G(z, y=None, *, psi=1, truncation_cutoff=None, noise_mode="random", return_ws=False)`` returns
the images, or ``(images, ws)`` with ``ws`` (N, num_ws, w_dim) the styles the synthesis network
received (after mixing and truncation; path-length regularisation differentiates with respect to
them); ``G.mapping(z, psi, truncation_cutoff)`` gives ws; ``G.synthesis(ws, noise_mode=...)`` the
images; ``G.num_ws`` and ``G.layer_resolutions`` (the side each style acts at) locate the layers.

Labels are not used (``num_classes`` is accepted and the attribute is 0).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan_cli.models.progan import GrowingMixin
from gan_cli.models.style_layers import (
    AdaIN,
    ConstantInput,
    EqualizedConv2d,
    MappingNetwork,
    NoiseInjection,
    channels_at,
    layer_noise,
    mix_styles,
    progressive_plan,
    upsample2x,
)

__all__ = ["Generator", "StyleGenerator", "Synthesis", "NOISE_MODES"]

NOISE_MODES = ("random", "const", "none")


class StyleGenerator(nn.Module):
    """What StyleGAN's and StyleGAN2's generators share: mapping, mixing, truncation, forward.

    Subclasses set ``self.mapping`` (a :class:`MappingNetwork`), ``self.synthesis`` (a module
    with ``forward(ws, noise_mode)``, ``num_ws``, ``layer_resolutions`` and ``num_active_ws``)
    ``self.mixing_prob`` and ``self.squash`` (end in tanh).
    """

    mapping: MappingNetwork
    synthesis: nn.Module
    mixing_prob: float
    squash: bool
    #: truncation means psi in W (``gan_cli.models.truncates_in_w``): gan-eval and the figures call
    #: ``G(z, y, psi=t)`` with an untruncated z
    truncation_in_w = True

    @property
    def num_ws(self) -> int:
        """Style inputs of the synthesis network."""
        return self.synthesis.num_ws

    @property
    def layer_resolutions(self) -> list[int]:
        """The side (px) of the layers each style input drives, one per style."""
        return list(self.synthesis.layer_resolutions)

    @property
    def w_avg(self) -> Tensor:
        """The moving average of w (the truncation centre)."""
        return self.mapping.w_avg

    def forward(self, z: Tensor, y: Tensor | None = None, *, psi: float = 1.0,
                truncation_cutoff: int | None = None, noise_mode: str = "random",
                return_ws: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        """Generate images.

        Args:
            z: latents (N, z_dim).
            y: ignored (unconditional).
            psi: truncation in W; 1 = none.
            truncation_cutoff: truncate only the first styles; None = all.
            noise_mode: ``random``, ``const`` or ``none`` (see the module docstring).
            return_ws: also return the styles the synthesis network received.

        Returns:
            Images (N, C, r, r), r the current phase's side; with ``return_ws``, ``(images, ws)``.
            In training mode with ``mixing_prob > 0`` the styles are mixed with those of a
            second latent drawn from torch's global generator.
        """
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
        ws = self.mapping(z, psi=psi, truncation_cutoff=truncation_cutoff)
        if self.training and self.mixing_prob > 0:
            other = self.mapping(torch.randn_like(z), psi=psi, truncation_cutoff=truncation_cutoff,
                                 update_w_avg=False)
            ws = mix_styles(ws, other, self.synthesis.num_active_ws, self.mixing_prob)
        img = self.synthesize(ws, noise_mode)
        return (img, ws) if return_ws else img

    def synthesize(self, ws: Tensor, noise_mode: str = "random") -> Tensor:
        """Images from styles ws (N, num_ws, w_dim): the synthesis network, then tanh if squashing."""
        img = self.synthesis(ws, noise_mode=noise_mode)
        return torch.tanh(img) if self.squash else img


class StyleLayer(nn.Module):
    """``[conv 3x3] -> + B * noise -> + bias -> LeakyReLU(0.2) -> AdaIN``, one style input."""

    def __init__(self, in_ch: int, out_ch: int, w_dim: int, side: int, conv: bool) -> None:
        super().__init__()
        self.conv = EqualizedConv2d(in_ch, out_ch, 3, bias=False) if conv else None
        self.noise = NoiseInjection(out_ch, per_channel=True)
        self.bias = nn.Parameter(torch.zeros(out_ch))
        self.adain = AdaIN(out_ch, w_dim)
        self.register_buffer("noise_const", torch.randn(1, 1, side, side))

    def forward(self, x: Tensor, w: Tensor, noise_mode: str) -> Tensor:
        if self.conv is not None:
            x = self.conv(x)
        x = self.noise(x, layer_noise(noise_mode, self.noise_const))
        x = F.leaky_relu(x + self.bias.to(x.dtype)[None, :, None, None], 0.2)
        return self.adain(x, w)


class Synthesis(GrowingMixin, nn.Module):
    """StyleGAN's synthesis network g: ws (N, num_ws, w_dim) -> images.

    Args:
        w_dim: size of w.
        img_channels: C of the images.
        resolutions: the sides s, 2s, ..., R.
        channel_base, channel_max: feature maps per side, as ProGAN's.
        progressive: build a toRGB per resolution and allow ``set_phase``.
    """

    def __init__(self, *, w_dim: int, img_channels: int, resolutions: list[int], channel_base: int,
                 channel_max: int, progressive: bool) -> None:
        super().__init__()
        self.resolutions, self.growing = list(resolutions), bool(progressive)
        ch = [channels_at(r, channel_base, channel_max) for r in self.resolutions]
        s = self.resolutions[0]
        self.const = ConstantInput(ch[0], s, init="ones")
        layers = []
        for i, r in enumerate(self.resolutions):
            layers.append(StyleLayer(ch[i - 1] if i else ch[0], ch[i], w_dim, r, conv=i > 0))
            layers.append(StyleLayer(ch[i], ch[i], w_dim, r, conv=True))
        self.layers = nn.ModuleList(layers)
        levels = range(len(ch)) if self.growing else [len(ch) - 1]
        self.to_rgb = nn.ModuleDict({str(self.resolutions[i]): EqualizedConv2d(ch[i], img_channels, 1,
                                                                               gain=1.0) for i in levels})
        self.num_ws = len(layers)
        self.layer_resolutions = [self.resolutions[i // 2] for i in range(self.num_ws)]
        self._init_phase()

    @property
    def num_active_ws(self) -> int:
        """Styles the current phase uses: two per resolution up to the phase's."""
        return 2 * (self.phase_level + 1)

    def forward(self, ws: Tensor, noise_mode: str = "random") -> Tensor:
        level = self.phase_level
        x = self.const(ws.shape[0]).to(ws.dtype)
        prev = x
        for i in range(level + 1):
            if i > 0:
                prev, x = x, upsample2x(x, filtered=True)
            x = self.layers[2 * i](x, ws[:, 2 * i], noise_mode)
            x = self.layers[2 * i + 1](x, ws[:, 2 * i + 1], noise_mode)
        img = self.to_rgb[str(self.resolutions[level])](x)
        if level > 0 and self.alpha < 1.0:
            old = upsample2x(self.to_rgb[str(self.resolutions[level - 1])](prev))
            img = torch.lerp(old, img, self.alpha)
        return img


class Generator(StyleGenerator):
    """StyleGAN's generator.

    Args:
        z_dim: size of z (512).
        data_shape: (C, R, R), R = start_resolution * 2**k.
        num_classes: accepted and ignored (unconditional).
        bounded: the data lie in [-1, 1]; with ``tanh_output`` the output is squashed to it.
        w_dim: size of w (512).
        mapping_layers: fully connected layers of the mapping network (8).
        mapping_lr_multiplier: their learning-rate multiplier (0.01).
        channel_base, channel_max: feature maps at side r: ``min(channel_base // r, channel_max)``
            (StyleGAN: 16384 and 512).
        start_resolution: side of the constant input; None = 4 for 4 * 2**k px (the paper's), 7 for
            28 px (``style_layers.default_start_resolution``).
        mixing_prob: style-mixing probability per training batch (0.9; 0 = off).
        w_avg_beta: decay of the w moving average per training forward (0.995).
        tanh_output: end in tanh when ``bounded`` (the paper: False).
        progressive: grow progressively (``set_phase``), as the paper does; False = fixed.

    Attributes:
        num_classes: 0.
        mapping, synthesis: the two networks.
        resolutions: the sides.
    """

    def __init__(self, *, z_dim: int, data_shape: Sequence[int], num_classes: int = 0, bounded: bool = True,
                 w_dim: int = 512, mapping_layers: int = 8, mapping_lr_multiplier: float = 0.01,
                 channel_base: int = 16384, channel_max: int = 512, start_resolution: int | None = None,
                 mixing_prob: float = 0.9, w_avg_beta: float = 0.995, tanh_output: bool = False,
                 progressive: bool = True) -> None:
        super().__init__()
        c, resolutions = progressive_plan(data_shape, start_resolution, "StyleGAN generator")
        if not 0.0 <= mixing_prob <= 1.0:
            raise ValueError(f"StyleGAN generator: mixing_prob must be in [0, 1], got {mixing_prob}")
        self.z_dim, self.data_shape, self.num_classes = int(z_dim), tuple(data_shape), 0
        self.resolutions = resolutions
        self.mixing_prob = float(mixing_prob)
        self.squash = bool(bounded and tanh_output)
        self.synthesis = Synthesis(w_dim=w_dim, img_channels=c, resolutions=resolutions,
                                   channel_base=channel_base, channel_max=channel_max,
                                   progressive=progressive)
        self.mapping = MappingNetwork(self.z_dim, w_dim, mapping_layers, self.synthesis.num_ws,
                                      lr_multiplier=mapping_lr_multiplier, w_avg_beta=w_avg_beta)

    @property
    def phase_resolution(self) -> int:
        return self.synthesis.phase_resolution

    @property
    def alpha(self) -> float:
        return self.synthesis.alpha

    def set_phase(self, resolution: int, alpha: float = 1.0) -> None:
        """Grow: see ``GrowingMixin.set_phase``; style mixing then picks among the active layers."""
        self.synthesis.set_phase(resolution, alpha)
