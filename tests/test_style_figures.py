"""The StyleGAN figures (gan_cli/style_figures.py): layout, what each cell is, std image, psi."""

from __future__ import annotations

import pytest
import torch

from gan_cli.models import stylegan, stylegan2
from gan_cli.style_figures import (
    BLANK,
    crossover_bands,
    mixed_styles,
    psi_sweep,
    stochastic_variation,
    style_mixing_figure,
)

Z = 8
MODELS = {"stylegan": stylegan.Generator, "stylegan2": stylegan2.Generator}


def small_g(kind, side=16):
    torch.manual_seed(0)
    G = MODELS[kind](z_dim=Z, data_shape=(3, side, side), w_dim=8, mapping_layers=2, channel_base=64,
                     channel_max=16).double()
    with torch.no_grad():
        for name, p in G.named_parameters():
            if name.endswith("noise.strength"):
                p.fill_(0.5)
        G.mapping.w_avg.normal_()
    return G


def test_crossover_bands():
    # the paper at 1024 px: coarse 4-8 px, middle 16-32 px, fine 64-1024 px
    v1 = [4 * 2 ** (i // 2) for i in range(18)]
    assert crossover_bands(v1) == {"coarse": (0, 4), "middle": (4, 8), "fine": (8, 18)}
    v2 = [4] + [4 * 2 ** ((i + 1) // 2) for i in range(1, 17)] + [1024]
    assert crossover_bands(v2) == {"coarse": (0, 3), "middle": (3, 7), "fine": (7, 18)}
    # smaller models: the sides split in three runs, the coarse one longest
    assert crossover_bands([4, 4, 8, 8, 16, 16, 32, 32]) == {"coarse": (0, 4), "middle": (4, 6),
                                                             "fine": (6, 8)}
    assert crossover_bands([4, 4, 8, 8, 16, 16]) == {"coarse": (0, 2), "middle": (2, 4), "fine": (4, 6)}
    assert crossover_bands([4, 4]) == {"coarse": (0, 2)}


def test_mixed_styles():
    a, b = torch.zeros(2, 5, 3), torch.ones(2, 5, 3)
    out = mixed_styles(a, b, 1, 3)
    assert torch.equal(out[:, :, 0], torch.tensor([[0.0, 1, 1, 0, 0]] * 2))
    assert torch.equal(a, torch.zeros(2, 5, 3))  # the inputs are left alone


@pytest.mark.parametrize("kind", MODELS)
def test_style_mixing_figure_layout_and_cells(kind):
    G = small_g(kind).train()
    z_a, z_b = torch.randn(2, Z, dtype=torch.float64), torch.randn(3, Z, dtype=torch.float64)
    everything = {"all": (0, G.num_ws), "none": (0, 0), "coarse": (0, 2)}
    fig = style_mixing_figure(G, z_a, z_b, bands=everything)
    assert G.training  # the mode is restored
    assert fig.nrow == 4 and fig.images.shape == ((1 + 3 * 2) * 4, 3, 16, 16)
    grid = fig.images.reshape(7, 4, 3, 16, 16)
    G.eval()
    img_a, img_b = G(z_a, noise_mode="const"), G(z_b, noise_mode="const")
    assert torch.equal(grid[0, 0], torch.full_like(grid[0, 0], BLANK))
    assert torch.allclose(grid[0, 1:], img_b)  # columns: the B images on top
    assert torch.allclose(grid[1:, 0], img_a.repeat(3, 1, 1, 1))  # rows: the A images on the left
    # band "all" (rows 1-2): every style from B gives B's image; band "none" (rows 3-4): A's image
    assert torch.allclose(grid[1:3, 1:], img_b.expand(2, -1, -1, -1, -1))
    assert torch.allclose(grid[3:5, 1:], img_a[:, None].expand(-1, 3, -1, -1, -1))
    # band "coarse": A's styles with the first two from B
    ws_a, ws_b = G.mapping(z_a), G.mapping(z_b)
    cell = G.synthesize(mixed_styles(ws_a[1:2], ws_b[2:3], 0, 2), "const")
    assert torch.allclose(grid[6, 3], cell[0])
    assert not torch.allclose(grid[6, 3], img_a[1]) and not torch.allclose(grid[6, 3], img_b[2])


def test_style_mixing_figure_default_bands():
    G = small_g("stylegan2")
    z_a, z_b = torch.randn(2, Z, dtype=torch.float64), torch.randn(2, Z, dtype=torch.float64)
    fig = style_mixing_figure(G, z_a, z_b)
    assert fig.info["bands"] == crossover_bands(G.layer_resolutions) and len(fig.info["bands"]) == 3
    assert fig.images.shape[0] == (1 + 3 * 2) * 3


@pytest.mark.parametrize("kind", MODELS)
def test_stochastic_variation(kind):
    G = small_g(kind).eval()
    z = torch.randn(2, Z, dtype=torch.float64)
    rng = torch.get_rng_state()
    fig = stochastic_variation(G, z, columns=3, std_draws=8, seed=5)
    assert torch.equal(torch.get_rng_state(), rng)  # the global generator is left as it was
    assert fig.nrow == 4 and fig.images.shape == (8, 3, 16, 16)
    grid = fig.images.reshape(2, 4, 3, 16, 16)
    assert not torch.allclose(grid[:, 0], grid[:, 1])  # the noise differs between columns
    # the last column: per-pixel std over the 8 draws (mean over channels), 2 std / max - 1
    torch.manual_seed(5)
    ws = G.mapping(z)
    draws = torch.stack([G.synthesize(ws, "random") for _ in range(8)], dim=1)
    assert torch.allclose(grid[:, :3], draws[:, :3])
    std = draws.std(dim=1, unbiased=False).mean(dim=1)
    assert fig.info["std_max"] == pytest.approx(std.max().item())
    assert torch.allclose(grid[:, 3], (2 * std / std.max() - 1)[:, None].expand(-1, 3, -1, -1))
    again = stochastic_variation(G, z, columns=3, std_draws=8, seed=5)
    assert torch.equal(again.images, fig.images)


def test_stochastic_variation_without_noise_is_constant():
    G = small_g("stylegan2").eval()
    with torch.no_grad():
        for name, p in G.named_parameters():
            if name.endswith("noise.strength"):
                p.zero_()
    fig = stochastic_variation(G, torch.randn(1, Z, dtype=torch.float64), columns=2, std_draws=4)
    assert torch.equal(fig.images[0], fig.images[1])
    assert torch.equal(fig.images[2], -torch.ones_like(fig.images[2]))  # std 0 everywhere: black
    with pytest.raises(ValueError):
        stochastic_variation(G, torch.randn(1, Z), std_draws=1)


@pytest.mark.parametrize("kind", MODELS)
def test_psi_sweep(kind):
    G = small_g(kind).eval()
    z = torch.randn(3, Z, dtype=torch.float64)
    fig = psi_sweep(G, z, psis=(1.0, 0.5, 0.0, -1.0))
    assert fig.nrow == 4 and fig.images.shape == (12, 3, 16, 16)
    grid = fig.images.reshape(3, 4, 3, 16, 16)
    assert torch.allclose(grid[:, 0], G(z, noise_mode="const"))
    assert torch.allclose(grid[:, 1], G(z, psi=0.5, noise_mode="const"))
    assert torch.allclose(grid[0, 2], grid[1, 2]) and torch.allclose(grid[0, 2], grid[2, 2])  # psi 0: w_avg
    assert not torch.allclose(grid[0, 3], grid[1, 3])
