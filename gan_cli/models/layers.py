"""Building blocks shared by the image models: spectral norm, conditional batch norm, self-attention.

* :func:`apply_spectral_norm` puts ``torch.nn.utils.parametrizations.spectral_norm`` on every
  weight layer of a network (Miyato et al. 2018). It is how ``spectral_norm: true`` on any
  generator or discriminator config works, so the model classes do not know about it.
* :class:`ConditionalBatchNorm2d`: batch norm whose gain and bias come from the class
  (de Vries et al. 2017; Miyato & Koyama 2018) or from a conditioning vector (BigGAN's shared
  class embedding and latent chunk, Brock et al. 2019).
* :class:`SelfAttention2d`: the self-attention block of SAGAN (Zhang et al. 2019).
"""

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
    """Spectrally normalise the weight of every Conv2d, ConvTranspose2d, Linear and Embedding.

    A layer is left alone when it sets ``spectral_norm_exempt = True`` (the label embeddings
    that produce conditional batch norm gains, and BigGAN's shared class embedding, which the
    papers do not normalise), or when it is already normalised.

    The power iteration's vectors ``u`` and ``v`` are buffers of the parametrization, so they are
    in ``state_dict()`` (checkpoints restore them exactly) and DistributedDataParallel broadcasts
    rank 0's copy with the other buffers at every forward (``broadcast_buffers=True``), which keeps
    the ranks consistent. One power iteration runs per forward pass in training mode; in eval mode
    the stored vectors are used as they are.

    Args:
        net: the network; changed in place.
        n_power_iterations: power iterations per training-mode forward pass (the papers use 1).
        eps: numerical floor of the norms.

    Returns:
        ``net``.
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
    """Initialise every Conv2d, ConvTranspose2d, Linear and Embedding weight of ``net``; zero biases.

    Args:
        net: the network (before spectral norm is applied).
        method: ``xavier`` (Glorot uniform, SNGAN's), ``orthogonal`` (BigGAN's) or ``normal``
            (N(0, 0.02), DCGAN's).

    Layers that set ``keep_init = True`` (conditional batch norm's gain and bias tables, which
    start at 1 and 0) are skipped.
    """
    inits = {"xavier": nn.init.xavier_uniform_, "orthogonal": nn.init.orthogonal_,
             "normal": lambda w: nn.init.normal_(w, 0.0, 0.02)}
    if method not in inits:
        raise ValueError(f"init must be one of {', '.join(inits)}, got {method!r}")
    for module in net.modules():
        if isinstance(module, _WEIGHT_LAYERS) and not getattr(module, "keep_init", False):
            inits[method](module.weight)
            if getattr(module, "bias", None) is not None:
                nn.init.zeros_(module.bias)


class ConditionalBatchNorm2d(nn.Module):
    """Batch norm whose per-channel gain and bias depend on the sample.

    Three modes, chosen by the arguments:

    * ``cond_dim > 0``: gain ``1 + W_g c`` and bias ``W_b c`` from a conditioning vector ``c``
      of size ``cond_dim`` (BigGAN: the shared class embedding concatenated with a latent chunk);
    * ``num_classes > 0``: a gain and a bias per class, looked up from the label ``y``
      (conditional BN of SNGAN's and SAGAN's class-conditional generators); they start at 1 and 0;
    * neither: plain ``BatchNorm2d`` with its own learned gain and bias.

    Args:
        num_features: channels C.
        num_classes: label count for the per-class mode.
        cond_dim: size of the conditioning vector for the linear mode.

    Forward: ``(x, c)`` with x of shape (N, C, H, W) and c the labels (N,) int64, the vectors
    (N, cond_dim), or None in the plain mode.
    """

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
    """SAGAN's self-attention over the positions of a feature map (Zhang et al. 2019).

    ``out = x + gamma * W_o (V softmax(Q^T K))``, with 1x1 convolutions for the query and key
    (C/8 channels) and the value (C/2 channels), keys and values max-pooled 2x2 (as in the
    BigGAN and SAGAN code, a quarter of the cost), and ``gamma`` a learned scalar that starts
    at 0, so the block starts as the identity. Written with matmul and softmax rather than
    ``scaled_dot_product_attention`` because the gradient penalties (WGAN-GP, DRAGAN)
    differentiate twice through D, which every math-only op supports.

    Args:
        channels: C, at least 8.
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
        return x + self.gamma * self.out(o)


def positive_int(value: object, name: str, who: str) -> int:
    """``value`` when it is an int >= 1 (not a bool); else ValueError naming ``who`` and ``name``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{who}: {name} must be a positive integer, got {value!r}")
    return value


def num_classes_arg(value: object, who: str) -> int:
    """``num_classes`` when it is an int >= 0 (not a bool); else ValueError naming ``who``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{who}: num_classes must be an integer >= 0, got {value!r}")
    return value


def image_shape(data_shape: Sequence[int], who: str) -> tuple[int, int, int]:
    """``data_shape`` as a (C, H, W) tuple of positive ints; else ValueError naming ``who``."""
    shape = tuple(data_shape)
    if len(shape) != 3 or not all(isinstance(s, int) and s > 0 for s in shape):
        raise ValueError(f"{who}: data_shape must be (C, H, W) with positive sides, got {shape}")
    return shape  # type: ignore[return-value]
