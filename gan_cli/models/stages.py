"""The loop's stages (``model.stages``): several (G, D) pairs trained one after another.

A stages object has

    num_stages: int
    info(k, data_info) -> DataInfo           stage k's target: shape, classes, range
    network_kwargs(k, data_info) -> dict     extra constructor facts of G_k and D_k
    steps(total_steps) -> list[int]          generator steps of each stage (steps past the last
                                             stage's end train the last stage)
    begin(k, state, fresh) -> None           entering stage k: ``fresh`` on its first step, False
                                             when a resumed run re-enters it midway
    prepare(k, batch, generators) -> Batch   the data's batch as stage k sees it, with the frozen
                                             generators of stages 0..k-1
    cascade(generators) -> nn.Module         G(z, y) that chains stages 0..k into samples

:class:`SingleStage` is a classic GAN. LAPGAN (Denton et al. 2015): stage s trains pyramid level
K - s, coarsest first, from ``model.generator`` / ``model.discriminator`` at the coarsest level and
``model.level_generator`` / ``model.level_discriminator`` above it; each stage's batch is the
data's turned into the level's target h_k and condition l_k. SinGAN (Shaham et al. 2019): stage n
trains scale n, coarsest first, on the one image at that scale; its condition is a sample of the
frozen coarser scales, upsampled; a fresh scale starts from the previous one's weights when the
widths agree (the paper's code), with sigma_n from the coarser scales' reconstruction error. Both
split ``train.steps`` evenly over the stages, the remainder to the last.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

from torch import nn

from gan_cli.data.base import Batch, DataInfo
from gan_cli.errors import ConfigError
from gan_cli.models import lapgan, singan

log = logging.getLogger("gan_cli")



class SingleStage:
    """A classic GAN: one pair, trained for every step, sampled by its own generator."""

    num_stages = 1

    def info(self, k: int, data_info: Any) -> Any:
        return data_info

    def network_kwargs(self, k: int, data_info: Any) -> dict:
        return {}

    def steps(self, total_steps: int) -> list[int]:
        return [total_steps]

    def begin(self, k: int, state: Any, fresh: bool) -> None:
        pass

    def prepare(self, k: int, batch: Batch, generators: Sequence[nn.Module]) -> Batch:
        return batch

    def cascade(self, generators: Sequence[nn.Module]) -> nn.Module:
        return generators[-1]


def even_steps(total_steps: int, num_stages: int) -> list[int]:
    """``total_steps`` split over ``num_stages`` (>= 1): ``total // n`` each, the remainder to the
    last (10 over 3: [3, 3, 4])."""
    if num_stages < 1:
        raise ValueError(f"num_stages must be >= 1, got {num_stages}")
    base = total_steps // num_stages
    return [base] * (num_stages - 1) + [total_steps - base * (num_stages - 1)]


class LAPGANStages:
    """LAPGAN's ``levels`` pyramid levels as stages, coarsest first; each level's latent has
    ``z_dim`` entries, the cascade's ``[z_0, ..., z_K]`` (finest first) ``levels * z_dim``."""

    def __init__(self, levels: int = 3, z_dim: int = 100) -> None:
        if isinstance(levels, bool) or not isinstance(levels, int) or levels < 1:
            raise ValueError(f"levels must be a positive integer, got {levels!r}")
        self.levels = levels
        self.z_dim = int(z_dim)
        self.num_stages = levels

    def level(self, k: int) -> int:
        """The pyramid level stage k trains: K - k (0 = full resolution, K = levels - 1)."""
        return self.levels - 1 - k

    def info(self, k: int, data_info: DataInfo) -> DataInfo:
        """Stage k's shape facts: its level's (C, H_k, W_k), the data's classes; a high-pass image
        is not bounded (a difference of two images in [-1, 1])."""
        try:
            shapes = lapgan.level_shapes(data_info.shape, self.levels)
        except ValueError as e:
            raise ConfigError(f"model.levels={self.levels}: {e}") from None
        level = self.level(k)
        coarsest = level == self.levels - 1
        return DataInfo(shape=shapes[level], num_classes=data_info.num_classes,
                        bounded=data_info.bounded if coarsest else False)

    def network_kwargs(self, k: int, data_info: DataInfo) -> dict[str, Any]:
        """The coarsest level: the model's ``generator`` / ``discriminator``; the others: its
        ``level_generator`` / ``level_discriminator``."""
        if self.level(k) == self.levels - 1:
            return {}
        return {"networks": ("level_generator", "level_discriminator")}

    def steps(self, total_steps: int) -> list[int]:
        return even_steps(total_steps, self.num_stages)

    def begin(self, k: int, state: Any, fresh: bool) -> None:
        """Nothing to set up: a level trains on the real pyramid, independently of the others."""
        if fresh:
            _, height, width = lapgan.level_shapes(state.data.info.shape, self.levels)[self.level(k)]
            log.info("LAPGAN: level %d (%dx%d) starts at step %d", self.level(k), height, width,
                     state.step)

    def prepare(self, k: int, batch: Batch, generators: Sequence[nn.Module]) -> Batch:
        """Level K - k's real batch: ``(h_k, LevelCondition(l_k, labels))``, or ``(I_K, labels)``."""
        return lapgan.prepare(self.level(k), batch, levels=self.levels)

    def cascade(self, generators: Sequence[nn.Module]) -> lapgan.LAPGANCascade:
        """The levels trained so far (``generators`` coarsest first) as one generator; its latent
        keeps every level's place, those of the finer levels not trained yet ignored."""
        skipped = (self.levels - len(generators)) * self.z_dim
        return lapgan.LAPGANCascade(list(reversed(generators)), skip_z_dim=skipped, frozen_coarse=True)


class SinGANStages:
    """SinGAN's scales as stages, coarsest first; their ``sizes`` (H, W) follow from the run's
    ``dataset`` node (a ``single_image`` one). ``noise_amp_init``: the 0.1 of sigma_n = 0.1 *
    RMSE(up(x_rec_{n-1}), x_n); ``copy_previous``: start scale n from scale n-1's weights."""

    def __init__(self, dataset: Mapping[str, Any], noise_amp_init: float = 0.1,
                 copy_previous: bool = True) -> None:
        from gan_cli.data.single_image import image_scale_sizes

        target = str(dataset.get("_target_", ""))
        if not target.endswith(".single_image"):
            raise ConfigError(f"model=singan learns from one image: use dataset=single_image "
                              f"(dataset.path=... for your own), not {target or 'this dataset'}")
        if not noise_amp_init > 0:
            raise ValueError(f"noise_amp_init must be > 0, got {noise_amp_init}")
        self.sizes = image_scale_sizes(dataset.get("path"), dataset.get("name", "rocket"),
                                       int(dataset.get("max_size", 250)),
                                       int(dataset.get("min_size", 25)),
                                       float(dataset.get("scale_factor", 0.75)))
        self.channels = int(dataset.get("channels", 3))
        self.num_stages = len(self.sizes)
        self.noise_amp_init = float(noise_amp_init)
        self.copy_previous = bool(copy_previous)

    def info(self, k: int, data_info: DataInfo) -> DataInfo:
        """Scale k's shape facts: (C, H_k, W_k), no classes, bounded."""
        finest = (self.channels, *self.sizes[-1])
        if tuple(data_info.shape) != finest:
            raise ConfigError(f"SinGAN's scales end at {finest}, but the data's images are "
                              f"{tuple(data_info.shape)}: use dataset=single_image")
        return DataInfo(shape=(self.channels, *self.sizes[k]), num_classes=0, bounded=True)

    def network_kwargs(self, k: int, data_info: DataInfo) -> dict[str, Any]:
        """The scale index: it sets the networks' width (doubled every few scales) and gives scale
        0 its reconstruction noise z*."""
        return {"scale": k}

    def steps(self, total_steps: int) -> list[int]:
        return even_steps(total_steps, self.num_stages)

    def begin(self, k: int, state: Any, fresh: bool) -> None:
        """Scale k starts (``fresh``) or is re-entered by a resume: the data, the noise and the
        frozen coarser generators at scale k; fresh only (else in the checkpoint): scale k-1's
        weights, sigma_k and the reconstruction term's inputs."""
        data, pair = state.data, state.pairs[k]
        if [tuple(s) for s in getattr(data, "sizes", [])] != self.sizes:
            raise ConfigError(f"SinGAN's scales {self.sizes} differ from the data's "
                              f"{getattr(data, 'sizes', None)}: use dataset=single_image")
        data.set_stage(k)
        state.noise.z_dim = math.prod((self.channels, *self.sizes[k]))
        for coarser in state.pairs[:k]:
            for G in {id(coarser.G): coarser.G, id(coarser.G_sample): coarser.G_sample}.values():
                G.eval().requires_grad_(False)
        if not fresh:
            return
        if k > 0 and self.copy_previous:
            previous = state.pairs[k - 1]
            copied = singan.init_from_previous(pair.G, previous.G)
            singan.init_from_previous(pair.D, previous.D)
            if copied and pair.ema is not None:
                pair.ema.load_state_dict(pair.G.state_dict())
        reconstruction = next((r for r in pair.regularizers if hasattr(r, "set_inputs")), None)
        chain = singan.SinGANCascade([p.G_sample for p in state.pairs[:k]] + [pair.G])
        sigma = chain.begin_scale(k, data.image(k), reconstruction, self.noise_amp_init)
        if pair.ema is not None:
            pair.ema.module.noise_amp.fill_(sigma)
        log.info("SinGAN: scale %d (%dx%d) starts at step %d, noise amplitude %.4f", k,
                 *self.sizes[k], state.step, sigma)

    def prepare(self, k: int, batch: Batch, generators: Sequence[nn.Module]) -> Batch:
        """Scale k's batch: the image and, as condition, a random sample of the frozen coarser
        scales upsampled to scale k (zeros at scale 0)."""
        return singan.prepare(k, batch, generators, sizes=self.sizes)

    def cascade(self, generators: Sequence[nn.Module]) -> singan.SinGANCascade:
        """The scales trained so far as one generator; its latent keeps every scale's place, those
        of the finer scales not trained yet ignored."""
        skipped = sum(self.channels * h * w for h, w in self.sizes[len(generators):])
        return singan.SinGANCascade(list(generators), skip_z_dim=skipped, frozen_coarse=True)
