"""StyleGAN's style-based generator (Karras et al. 2019, section 2, fig. 1(b), appendix C).

Mapping z -> w (``MappingNetwork``) broadcast to ``2 (k + 1)`` styles; synthesis from a learned
constant of ones, per side two layers ``[conv 3x3] -> + B noise -> + bias -> LeakyReLU(0.2) ->
AdaIN(., A w)``, bilinear upsampling between sides, toRGB per side for ProGAN's fade-in
(``set_phase``). Style mixing (3.1) with ``mixing_prob`` in training mode; truncation in W (3.3).
Noise modes: random (fresh), const (one fixed draw per layer, in the state dict), none.
Its discriminator is ProGAN's. Labels are not used.

The generator interface shared with StyleGAN2's: ``G(z, y=None, *, psi, truncation_cutoff,
noise_mode, return_ws)``, ``G.mapping``, ``G.synthesize(ws, noise_mode)``, ``G.num_ws``,
``G.layer_resolutions`` (the side each style acts at).
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
    """StyleGAN's and StyleGAN2's shared forward: subclasses set ``mapping``, ``synthesis`` (with
    ``num_ws``, ``layer_resolutions``, ``num_active_ws``), ``mixing_prob`` and ``squash``."""

    mapping: MappingNetwork
    synthesis: nn.Module
    mixing_prob: float
    squash: bool
    #: truncation is psi in W (``gan_cli.models.truncates_in_w``): callers pass ``psi`` and a plain z
    truncation_in_w = True

    @property
    def num_ws(self) -> int:
        return self.synthesis.num_ws

    @property
    def layer_resolutions(self) -> list[int]:
        return list(self.synthesis.layer_resolutions)

    @property
    def w_avg(self) -> Tensor:
        return self.mapping.w_avg

    @property
    def latent_module(self) -> nn.Module:
        """Where z enters (``gan_cli.latents.shape_latent``): the mapping network."""
        return self.mapping

    def forward(self, z: Tensor, y: Tensor | None = None, *, psi: float = 1.0,
                truncation_cutoff: int | None = None, noise_mode: str = "random",
                return_ws: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        """Images (N, C, r, r) at the phase's side r from z (N, z_dim); with ``return_ws`` also the
        styles the synthesis received (after mixing, with a second latent from torch's global RNG)."""
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
    """StyleGAN's synthesis network: ws (N, num_ws, w_dim) -> images at the phase's side."""

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
    """StyleGAN's generator; keys as conf/model/stylegan.yaml (schema StyleGANGeneratorConfig)."""

    def __init__(self, *, z_dim: int, data_shape: Sequence[int], num_classes: int = 0, bounded: bool = True,
                 w_dim: int = 512, mapping_layers: int = 8, mapping_lr_multiplier: float = 0.01,
                 channel_base: int = 16384, channel_max: int = 512, start_resolution: int | None = None,
                 mixing_prob: float = 0.9, w_avg_beta: float = 0.995, tanh_output: bool = False,
                 progressive: bool = True) -> None:
        super().__init__()
        c, resolutions = progressive_plan(data_shape, start_resolution, "StyleGAN generator")
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
        self.synthesis.set_phase(resolution, alpha)
