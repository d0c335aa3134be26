"""Fully connected generator and discriminator (Goodfellow et al. 2014).

For 2D toy data and for flattened images alike: the data's shape is injected by the dataset, the
generator ends in tanh when the data is bounded to [-1, 1] (images) and is linear otherwise.
With ``conditional: true`` both networks take the dataset's labels through a learned embedding
concatenated to their input (Mirza & Osindero 2014).
"""

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
    """MLP generator: z (N, z_dim) [+ label embedding] -> sample (N, *data_shape).

    Args:
        z_dim: latent size.
        data_shape: shape of one sample, from the dataset.
        num_classes: the dataset's label count (used only when ``conditional``).
        bounded: the data lies in [-1, 1], so the output goes through tanh.
        hidden: widths of the hidden layers.
        activation: relu | leaky_relu | tanh.
        batch_norm: BatchNorm1d after each hidden layer.
        conditional: use labels (needs num_classes > 0).
        latent: "normal" (the first layer sees z) or "uniform" (it sees 2 Phi(z) - 1, uniform on
            (-1, 1) per component).
    """

    def __init__(self, *, z_dim: int, data_shape: tuple[int, ...], num_classes: int = 0,
                 bounded: bool = False, hidden: list[int] = (256, 256, 256),
                 activation: str = "relu", batch_norm: bool = False, conditional: bool = False,
                 latent: str = "normal"):
        super().__init__()
        if latent not in ("normal", "uniform"):
            raise ValueError(f"latent must be 'normal' or 'uniform', got {latent!r}")
        self.uniform_latent = latent == "uniform"
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
        if self.uniform_latent:  # the normal CDF: each component uniform on (-1, 1)
            z = 2 * torch.special.ndtr(z) - 1
        if self.embed is not None:
            z = torch.cat([z, self.embed(y)], dim=1)
        return self.net(z).view(len(z), *self.data_shape)


class Discriminator(nn.Module):
    """MLP discriminator: sample [+ label embedding] -> one raw score per sample.

    With ``output="reconstruction"`` (BEGAN) it is an autoencoder instead: the hidden layers form
    the encoder, their mirror the decoder, and it returns a reconstruction of the input's shape.
    With ``output="features"`` (MMD-GAN) it returns the last hidden layer's output, the input the
    score layer would have, shape (N, hidden[-1]); or, with ``feature_dim``, a linear map of it to
    (N, feature_dim).

    Args:
        data_shape: shape of one sample, from the dataset.
        num_classes: the dataset's label count (used only when ``conditional``).
        output: "score", "reconstruction" or "features" (what the loss needs).
        hidden: widths of the hidden layers.
        activation: relu | leaky_relu | tanh.
        dropout: dropout probability after each hidden layer.
        conditional: use labels (needs num_classes > 0).
        feature_dim: with ``output="features"``: the size of a linear head on the last hidden
            layer; None = no head, the features are the last hidden layer's output.
        input_scale: D's first layer sees ``x / input_scale`` (a fixed rescaling, not learned); a
            reconstruction is scaled back to x's units.
    """

    def __init__(self, *, data_shape: tuple[int, ...], num_classes: int = 0, output: str = "score",
                 hidden: list[int] = (256, 256, 256), activation: str = "leaky_relu",
                 dropout: float = 0.0, conditional: bool = False, feature_dim: int | None = None,
                 input_scale: float = 1.0):
        super().__init__()
        if not input_scale > 0:
            raise ValueError(f"input_scale must be > 0, got {input_scale!r}")
        self.input_scale = float(input_scale)
        if output not in ("score", "reconstruction", "features"):
            raise ValueError(f"output must be 'score', 'reconstruction' or 'features', got {output!r}")
        if feature_dim is not None:
            if output != "features":
                raise ValueError(f"feature_dim applies to output='features' only, got output={output!r}")
            if isinstance(feature_dim, bool) or not isinstance(feature_dim, int) or feature_dim < 1:
                raise ValueError(f"feature_dim must be a positive integer or None, got {feature_dim!r}")
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
