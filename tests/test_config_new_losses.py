"""loss=fgan and loss=mmd: their option files, schema defaults, checks, and the D feature_dim key."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

import gan_cli
from gan_cli import losses as L
from gan_cli.build import REGULARIZER_KEYS, build_loss
from gan_cli.config import SCHEMAS, register_configs, validate
from gan_cli.config.loss import FGANConfig, MMDConfig
from gan_cli.errors import ConfigError

CONF_DIR = Path(gan_cli.__file__).parent / "conf"


def compose_cfg(overrides: list[str]):
    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="train", overrides=overrides)


def test_schemas_are_registered():
    assert SCHEMAS["loss"]["fgan"] is FGANConfig
    assert SCHEMAS["loss"]["mmd"] is MMDConfig


@pytest.mark.parametrize("name", ["fgan", "mmd"])
def test_option_files_hold_only_the_defaults_list(name):
    # the values live in the schema alone, so a default has one place
    node = OmegaConf.load(CONF_DIR / "loss" / f"{name}.yaml")
    assert list(node) == ["defaults"]
    assert list(node.defaults) == [{"/schema/loss@_here_": name}, "_self_"]


def test_fgan_composes_with_the_schema_defaults_and_builds():
    cfg = compose_cfg(["loss=fgan"])
    validate(cfg)
    assert OmegaConf.to_container(cfg.loss) == {
        "_target_": "gan_cli.losses.FGAN", "n_critic": 1, "divergence": "js",
        "g_objective": "nonsaturating", "r1_gamma": 0.0, "r2_gamma": 0.0, "r_interval": 1}
    loss = build_loss(cfg.loss)
    assert isinstance(loss, L.FGAN) and loss.divergence == "js"


@pytest.mark.parametrize("divergence", ["kl", "reverse_kl", "js", "pearson", "hellinger"])
def test_every_divergence_builds(divergence):
    cfg = compose_cfg(["loss=fgan", f"loss.divergence={divergence}", "loss.g_objective=saturating"])
    validate(cfg)
    loss = build_loss(cfg.loss)
    assert (loss.divergence, loss.g_objective) == (divergence, "saturating")


def test_mmd_composes_with_the_schema_defaults_and_builds():
    cfg = compose_cfg(["loss=mmd"])
    validate(cfg)
    assert OmegaConf.to_container(cfg.loss) == {
        "_target_": "gan_cli.losses.MMD", "n_critic": 5, "sigmas": [1.0, 2.0, 4.0, 8.0, 16.0],
        "clip_value": 0.01, "biased": False, "bandwidth": "fixed", "ae_lambda": 0.0,
        "decoder_hidden": [256], "r1_gamma": 0.0, "r2_gamma": 0.0, "r_interval": 1}
    loss = build_loss(cfg.loss)
    assert isinstance(loss, L.MMD)
    assert loss.sigmas == (1.0, 2.0, 4.0, 8.0, 16.0) and loss.n_critic == 5 and loss.d_output == "features"


def test_mmd_overrides_reach_the_loss():
    cfg = compose_cfg(["loss=mmd", "loss.sigmas=[0.5,3]", "loss.clip_value=null", "loss.biased=true",
                       "loss.bandwidth=median"])
    validate(cfg)
    loss = build_loss(cfg.loss)
    assert (loss.sigmas, loss.clip_value, loss.biased, loss.bandwidth) == ((0.5, 3.0), None, True, "median")


def test_schema_defaults_match_the_loss_constructors():
    # the schema and the class agree on every default, so `FGAN()` and `loss=fgan` are one loss
    # (R1/R2 keys are the regularisers' own, built apart: gan_cli.build.build_regularizers)
    assert vars(L.FGAN()) == {k: v for k, v in vars(FGANConfig()).items()
                              if k != "_target_" and k not in REGULARIZER_KEYS}
    mmd, schema = L.MMD(), MMDConfig()
    assert (mmd.sigmas, mmd.n_critic, mmd.clip_value, mmd.biased, mmd.bandwidth) == (
        tuple(schema.sigmas), schema.n_critic, schema.clip_value, schema.biased, schema.bandwidth)


@pytest.mark.parametrize("override, key", [
    (["loss=fgan", "loss.divergence=chi2"], "loss.divergence"),
    (["loss=fgan", "loss.g_objective=alternative"], "loss.g_objective"),
    (["loss=fgan", "loss.n_critic=0"], "loss.n_critic"),
    (["loss=mmd", "loss.sigmas=[]"], "loss.sigmas"),
    (["loss=mmd", "loss.sigmas=[1,-2]"], "loss.sigmas"),
    (["loss=mmd", "loss.clip_value=0"], "loss.clip_value"),
    (["loss=mmd", "loss.bandwidth=mean"], "loss.bandwidth"),
    (["model=mlp", "model.discriminator.feature_dim=0"], "model.discriminator.feature_dim"),
    (["model=dcgan", "model.discriminator.feature_dim=-3"], "model.discriminator.feature_dim"),
])
def test_impossible_values_are_config_errors_naming_the_key(override, key):
    cfg = compose_cfg(override)
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        validate(cfg)


def test_feature_dim_defaults_to_null_on_both_discriminators():
    assert compose_cfg(["model=mlp"]).model.discriminator.feature_dim is None
    assert compose_cfg(["model=dcgan"]).model.discriminator.feature_dim is None


# The losses' and regularisers' values are checked once, by their schemas (issue 27): what their
# constructors refused before is refused when the config is composed, naming the key.
@pytest.mark.parametrize("override, key", [
    (["loss=wgan", "loss.clip_value=0"], "loss.clip_value"),
    (["loss=wgan", "loss.clip_value=-0.01"], "loss.clip_value"),
    (["loss=wgan", "loss.clip_value=nan"], "loss.clip_value"),
    (["loss=wgan_gp", "loss.gp_lambda=-1"], "loss.gp_lambda"),
    (["loss=wgan_gp", "loss.gp_lambda=inf"], "loss.gp_lambda"),
    (["loss=singan_wgan_gp", "loss.gp_lambda=-1"], "loss.gp_lambda"),
    (["loss=dragan", "loss.dragan_lambda=-1"], "loss.dragan_lambda"),
    (["loss=dragan", "loss.perturb_scale=-0.5"], "loss.perturb_scale"),
    (["loss=began", "loss.gamma=0"], "loss.gamma"),
    (["loss=began", "loss.gamma=1.5"], "loss.gamma"),
    (["loss=began", "loss.lambda_k=-0.001"], "loss.lambda_k"),
    (["loss=began", "loss.k_init=1.5"], "loss.k_init"),
    (["loss=began", "loss.k_init=-0.1"], "loss.k_init"),
    (["loss=lsgan", "loss.a=1", "loss.b=1"], "loss.b"),
    (["loss=lsgan", "loss.c=inf"], "loss.c"),
    (["loss=minimax", "loss.n_critic=0"], "loss.n_critic"),
    (["loss=ns", "loss.n_critic=-1"], "loss.n_critic"),
    (["loss=hinge", "loss.n_critic=0"], "loss.n_critic"),
    (["loss=fgan", "loss.divergence=KL"], "loss.divergence"),
    (["loss=mmd", "loss.sigmas=[1,0]"], "loss.sigmas"),
    (["loss=mmd", "loss.clip_value=nan"], "loss.clip_value"),
    (["loss=mmd", "loss.n_critic=0"], "loss.n_critic"),
    (["loss=ns", "loss.r1_gamma=-1"], "loss.r1_gamma"),
    (["loss=ns", "loss.r2_gamma=inf"], "loss.r2_gamma"),
    (["loss=ns", "loss.r_interval=0"], "loss.r_interval"),
    (["model=stylegan2", "model.regularizers.r1.gamma=-1"], "model.regularizers.r1.gamma"),
    (["model=stylegan2", "model.regularizers.r1.gamma=inf"], "model.regularizers.r1.gamma"),
    (["model=stylegan2", "model.regularizers.r1.interval=0"], "model.regularizers.r1.interval"),
    (["model=progan", "model.regularizers.drift.epsilon=-1"], "model.regularizers.drift.epsilon"),
    (["model=stylegan2", "model.regularizers.path_length.weight=-1"],
     "model.regularizers.path_length.weight"),
    (["model=stylegan2", "model.regularizers.path_length.decay=2"], "model.regularizers.path_length.decay"),
    (["model=stylegan2", "model.regularizers.path_length.interval=0"],
     "model.regularizers.path_length.interval"),
    (["model=stylegan2", "model.regularizers.path_length.batch_shrink=0"],
     "model.regularizers.path_length.batch_shrink"),
    (["model=pix2pix", "dataset=paired_folder", "dataset.path=/x", "model.regularizers.l1.weight=-1"],
     "model.regularizers.l1.weight"),
    (["model=pix2pix", "dataset=paired_folder", "dataset.path=/x", "model.regularizers.l1.weight=nan"],
     "model.regularizers.l1.weight"),
    (["model=pix2pix", "dataset=paired_folder", "dataset.path=/x", "model.regularizers.l1.weight=inf"],
     "model.regularizers.l1.weight"),
    (["model=singan", "dataset=single_image", "model.regularizers.rec.alpha=-1"],
     "model.regularizers.rec.alpha"),
])
def test_loss_and_regulariser_values_are_checked_by_their_schemas(override, key):
    cfg = compose_cfg(override)
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        validate(cfg)


@pytest.mark.parametrize("override", [
    ["loss=wgan", "loss.n_critic=2.5"], ["loss=wgan_gp", "loss.n_critic=true"], ["loss=lsgan", "loss.c=one"],
    ["loss=mmd", "loss.biased=maybe"], ["loss=ns", "loss.r1_gamma=true"], ["loss=ns", "loss.r_interval=2.5"],
    ["model=stylegan2", "model.regularizers.r1.interval=2.5"],
    ["model=pix2pix", "model.regularizers.l1.weight=true"],
])
def test_values_of_the_wrong_type_are_refused_when_composed(override):
    from hydra.errors import ConfigCompositionException

    with pytest.raises(ConfigCompositionException, match=override[-1].split("=")[0].replace(".", r"\.")):
        compose_cfg(override)
