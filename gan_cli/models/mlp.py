"""Fully connected generator and discriminator (Goodfellow et al. 2014), for 2D toy data and
flattened images; with ``conditional`` a label embedding is concatenated to the input (Mirza &
Osindero 2014)."""

from __future__ import annotations

import torch
from torch import nn

_ACTIVATIONS = {
    "relu": lambda: nn.ReLU(),
    "leaky_relu": lambda: nn.LeakyReLU(0.2),
    "tanh": lambda: nn.Tanh(),
}


def _mlp(sizes: list[int], activation: str, *, batch_norm: bool = False,
         dropout: float = 0.0) -> list[nn.Module]:
    """Hidden layers: Linear (+ BatchNorm) + activation (+ dropout) for each consecutive pair."""
    layers: list[nn.Module] = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True):
        layers.append(nn.Linear(n_in, n_out))
        if batch_norm:
            layers.append(nn.BatchNorm1d(n_out))
        layers.append(_ACTIVATIONS[activation]())
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
    return layers


class Generator(nn.Module):
    """z (N, z_dim) [+ label embedding] -> samples (N, *data_shape); tanh when ``bounded``."""

    def __init__(self, *, z_dim: int, data_shape: tuple[int, ...], num_classes: int = 0,
                 bounded: bool = False, hidden: list[int] = (256, 256, 256),
                 activation: str = "relu", batch_norm: bool = False, conditional: bool = False):
        super().__init__()
        if conditional and num_classes <= 0:
            raise ValueError("a conditional model needs a dataset with labels (num_classes > 0)")
        self.z_dim = z_dim
        self.data_shape = tuple(data_shape)
        self.num_classes = num_classes if conditional else 0
        self.embed = nn.Embedding(num_classes, z_dim) if self.num_classes else None
        n_in = z_dim * (2 if self.embed is not None else 1)
        n_out = 1
        for s in self.data_shape:
            n_out *= s
        body = _mlp([n_in, *hidden], activation, batch_norm=batch_norm)
        self.net = nn.Sequential(*body, nn.Linear(hidden[-1], n_out), *( [nn.Tanh()] if bounded else []))

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if self.embed is not None:
            z = torch.cat([z, self.embed(y)], dim=1)
        return self.net(z).view(len(z), *self.data_shape)


class Discriminator(nn.Module):
    """Samples (N, *data_shape) [+ label embedding] -> raw scores (N,) (``output="score"``); BEGAN's
    autoencoder (hidden layers, then their mirror) -> a reconstruction of x's shape; or MMD-GAN's
    features: the last hidden layer (N, hidden[-1]), or with ``feature_dim`` a linear map of it.

    The first layer sees ``x / input_scale`` (fixed); a reconstruction is scaled back to x's units.
    """

    def __init__(self, *, data_shape: tuple[int, ...], num_classes: int = 0, output: str = "score",
                 hidden: list[int] = (256, 256, 256), activation: str = "leaky_relu",
                 dropout: float = 0.0, conditional: bool = False, feature_dim: int | None = None,
                 input_scale: float = 1.0):
        super().__init__()
        self.input_scale = float(input_scale)
        if output not in ("score", "reconstruction", "features"):
            raise ValueError(f"output must be 'score', 'reconstruction' or 'features', got {output!r}")
        if feature_dim is not None and output != "features":
            raise ValueError(f"feature_dim applies to output='features' only, got output={output!r}")
        if conditional and num_classes <= 0:
            raise ValueError("a conditional model needs a dataset with labels (num_classes > 0)")
        self.data_shape = tuple(data_shape)
        self.num_classes = num_classes if conditional else 0
        self.output = output
        n_data = 1
        for s in self.data_shape:
            n_data *= s
        self.embed = nn.Embedding(num_classes, n_data) if self.num_classes else None
        n_in = n_data * (2 if self.embed is not None else 1)
        hidden = list(hidden)
        if output == "score":
            self.net = nn.Sequential(*_mlp([n_in, *hidden], activation, dropout=dropout),
                                     nn.Linear(hidden[-1], 1))
        elif output == "features":
            head = [nn.Linear(hidden[-1], feature_dim)] if feature_dim is not None else []
            self.net = nn.Sequential(*_mlp([n_in, *hidden], activation, dropout=dropout), *head)
        else:
            widths = [n_in, *hidden, *reversed(hidden[:-1])]
            self.net = nn.Sequential(*_mlp(widths, activation, dropout=dropout),
                                     nn.Linear(widths[-1], n_data))

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = x.flatten(1)
        if self.input_scale != 1.0:
            h = h / self.input_scale
        if self.embed is not None:
            h = torch.cat([h, self.embed(y)], dim=1)
        out = self.net(h)
        if self.output == "score":
            return out.squeeze(1)
        if self.output == "features":
            return out
        return (out * self.input_scale).view(len(x), *self.data_shape)  # in x's own units
