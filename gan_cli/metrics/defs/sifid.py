"""SiFID, the single-image Frechet distance of SinGAN (Shaham et al. 2019, section 4.1), as a metric:
every generated sample against the one training image, averaged over samples.

    sifid      = mean over samples of SiFID(x, x~_i)       (gan_cli/metrics/sifid.py)
    sifid_std  = their standard deviation (population, over the samples drawn)

The real image is the data's finest scale (``dataset=single_image``: ``ctx.data.image``); samples
come from the evaluation's sampler at that size (a coarser cascade's samples are upsampled to it
during training). Options: ``num_fake`` (50 by default: this project's choice, SiFID is per sample
and each costs a forward pass of the whole cascade), ``features``: ``fashion`` (the shipped offline
CNN's first block: D = 32, the default) or ``inception`` (Inception-v3's first max pool, the
paper's layer: needs ``inception_weights``). Numbers are comparable only on the same network
(``provenance.sifid.network``).
"""

from __future__ import annotations

from typing import Any

from torch import nn

from gan_cli.errors import ConfigError
from gan_cli.metrics.context import EvalContext, Key, Metric


def low_features(opts: dict) -> nn.Module:
    """The SiFID feature network ``opts['features']`` names, on ``opts['device']``."""
    from gan_cli.metrics.inception import weights_from_options
    from gan_cli.metrics.sifid import FashionLowFeatures, InceptionLowFeatures

    which = opts.get("features", "fashion")
    if which == "fashion":
        weights = opts.get("fashion_weights")
        if weights is None:
            net: nn.Module = FashionLowFeatures()
        else:
            from gan_cli.metrics.feature_net import load_fashion_cnn

            net = FashionLowFeatures(load_fashion_cnn(weights))
    elif which == "inception":
        net = InceptionLowFeatures(weights_from_options(opts))
    else:
        raise ConfigError(f"sifid.features={which!r}: use 'fashion' (offline) or 'inception'")
    return net.to(opts.get("device", "cpu"))


def training_image(data: Any):
    """The single image a SiFID compares with: the finest scale of a ``single_image`` source."""
    if data is None or not hasattr(data, "image") or not hasattr(data, "sizes"):
        raise ConfigError("sifid compares samples with one training image: it needs "
                          "dataset=single_image (a SinGAN run)")
    return data.image(len(data.sizes) - 1)


def sifid(ctx: EvalContext, opts: dict) -> dict[str, float]:
    from gan_cli.metrics.sifid import sifid_samples

    real = training_image(ctx.data)
    n = int(opts.get("num_fake", 50))
    features = low_features(opts)
    values = sifid_samples(real, ctx.fake(n), features)
    ctx.record("sifid", image=f"{ctx.data.name} at {real.shape[-2]}x{real.shape[-1]}",
               num_fake=n, network=features.identity)
    return {"sifid": float(values.mean()), "sifid_std": float(values.std(unbiased=False))}


DEFINES = (
    Metric("sifid", sifid, (Key("sifid", lower_is_better=True, shown=True), Key("sifid_std")),
           feature_net="fashion", defaults={"num_fake": 50}),
)
