"""Building blocks of the image models: spectral norm on every weight (Miyato et al. 2018),
conditional batch norm (de Vries et al. 2017; BigGAN's linear form, Brock et al. 2019) and SAGAN's
self-attention (Zhang et al. 2019)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm

__all__ = ["apply_spectral_norm", "ConditionalBatchNorm2d", "SelfAttention2d", "init_weights",
           "spectral_norm_layers"]

_WEIGHT_LAYERS = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.Embedding)


def apply_spectral_norm(net: nn.Module, n_power_iterations: int = 1, eps: float = 1e-12) -> nn.Module:
    """Spectral norm on every Conv2d, ConvTranspose2d, Linear and Embedding weight of ``net`` (in
    place; returns it), except layers marked ``spectral_norm_exempt`` or already normalised. The
    power iteration's u, v are buffers: saved in checkpoints and broadcast by DDP with the others.
    """
    for module in list(net.modules()):
        if not isinstance(module, _WEIGHT_LAYERS) or getattr(module, "spectral_norm_exempt", False):
            continue
        if parametrize.is_parametrized(module, "weight"):
            continue
        # ConvTranspose2d keeps its output channels in dim 1; spectral_norm picks that itself.
        spectral_norm(module, n_power_iterations=n_power_iterations, eps=eps)
    return net


def spectral_norm_layers(net: nn.Module) -> list[nn.Module]:
    """The layers of ``net`` whose weight is spectrally normalised."""
    return [m for m in net.modules() if isinstance(m, _WEIGHT_LAYERS)
            and parametrize.is_parametrized(m, "weight")]


def init_weights(net: nn.Module, method: str) -> None:
    """Draw every weight layer's weight of ``net`` by ``method`` (xavier: SNGAN's, orthogonal: BigGAN's,
    normal: N(0, 0.02)) and zero its bias; layers marked ``keep_init`` are skipped."""
    inits = {"xavier": nn.init.xavier_uniform_, "orthogonal": nn.init.orthogonal_,
             "normal": lambda w: nn.init.normal_(w, 0.0, 0.02)}
    for module in net.modules():
        if isinstance(module, _WEIGHT_LAYERS) and not getattr(module, "keep_init", False):
            inits[method](module.weight)
            if getattr(module, "bias", None) is not None:
                nn.init.zeros_(module.bias)


class ConditionalBatchNorm2d(nn.Module):
    """BatchNorm whose gain and bias come from a vector c (N, cond_dim): 1 + W_g c and W_b c (BigGAN),
    from a per-class table looked up by labels (N,) (SNGAN, SAGAN; start at 1 and 0), or, with
    neither, plain BatchNorm2d. x: (N, C, H, W)."""

    def __init__(self, num_features: int, num_classes: int = 0, cond_dim: int = 0) -> None:
        super().__init__()
        self.mode = "linear" if cond_dim > 0 else "class" if num_classes > 0 else "plain"
        self.bn = nn.BatchNorm2d(num_features, affine=self.mode == "plain")
        if self.mode == "linear":
            self.gain = nn.Linear(cond_dim, num_features, bias=False)
            self.bias = nn.Linear(cond_dim, num_features, bias=False)
        elif self.mode == "class":
            self.gain = nn.Embedding(num_classes, num_features)
            self.bias = nn.Embedding(num_classes, num_features)
            for table in (self.gain, self.bias):
                table.spectral_norm_exempt = True  # a table of gains, not a weight matrix
                table.keep_init = True
            nn.init.ones_(self.gain.weight)
            nn.init.zeros_(self.bias.weight)

    def forward(self, x: Tensor, c: Tensor | None = None) -> Tensor:
        h = self.bn(x)
        if self.mode == "plain":
            return h
        if c is None:
            raise ValueError("conditional batch norm called without its condition")
        gain, bias = self.gain(c), self.bias(c)
        if self.mode == "linear":
            gain = 1.0 + gain
        return h * gain.to(h.dtype)[:, :, None, None] + bias.to(h.dtype)[:, :, None, None]


class SelfAttention2d(nn.Module):
    """SAGAN's self-attention (Zhang et al. 2019) on (N, C, H, W), C >= 8; starts as the identity.

    Keys and values are max-pooled 2x2 (BigGAN's and SAGAN's code); matmul + softmax rather than
    ``scaled_dot_product_attention``, which the penalties' double backward needs.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        if channels < 8:
            raise ValueError(f"self-attention needs at least 8 channels, got {channels}")
        self.query = nn.Conv2d(channels, channels // 8, 1, bias=False)
        self.key = nn.Conv2d(channels, channels // 8, 1, bias=False)
        self.value = nn.Conv2d(channels, channels // 2, 1, bias=False)
        self.out = nn.Conv2d(channels // 2, channels, 1, bias=False)
        self.gamma = nn.Parameter(torch.zeros(()))

    def forward(self, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        q = self.query(x).flatten(2)  # (N, C/8, HW)
        pool = (lambda t: F.max_pool2d(t, 2)) if h % 2 == 0 and w % 2 == 0 else (lambda t: t)
        k = pool(self.key(x)).flatten(2)  # (N, C/8, HW')
        v = pool(self.value(x)).flatten(2)  # (N, C/2, HW')
        attn = torch.softmax(torch.bmm(q.transpose(1, 2), k), dim=-1)  # (N, HW, HW')
        o = torch.bmm(v, attn.transpose(1, 2)).reshape(n, c // 2, h, w)
        return x + self.gamma * self.out(o)  # x + gamma * W_o (V softmax(Q^T K))


def image_shape(data_shape: Sequence[int], who: str) -> tuple[int, int, int]:
    """``data_shape`` as a (C, H, W) tuple of positive ints; else ValueError naming ``who``."""
    shape = tuple(data_shape)
    if len(shape) != 3 or not all(isinstance(s, int) and s > 0 for s in shape):
        raise ValueError(f"{who}: data_shape must be (C, H, W) with positive sides, got {shape}")
    return shape  # type: ignore[return-value]
