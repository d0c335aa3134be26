"""Building a run's objects from its config: one place for every constructor.

The training loop, gan-eval and the launcher receive built objects from here; none of them calls
``instantiate`` itself. Every part is picked by the ``_target_`` of its config node and receives
the facts it needs at construction (shape facts from the data, the run's batch, device and rank),
never by a branch on a name.

    select_device, configure_torch      the device and the process's torch settings
    batch_per_device                    this process's share of the global batch
    build_data                          the DataSource (cfg.dataset)
    build_split                         another split of it, for in-training metrics (metrics.split)
    build_loss                          the adversarial loss object (cfg.loss)
    build_generator, build_discriminator, build_network
                                        networks shaped by the data, spectral norm and packing
                                        applied from outside the model classes
    build_regularizers                  extra loss terms with their own interval (R1, ...)
    build_optimizers                    one optimizer class for G and D, lazy-regularisation
                                        corrections included
    lr_factor                           the learning-rate schedule, a pure function of the step
    build_logger                        W&B or none (cfg.logger)

A checkpoint's config is data: gan_cli/config/trust.py ``validate_saved_config`` refuses any
``_target_`` that is not one of the project's own builders (the schemas' targets) or torch's
optimizers, and any interpolation, before anything is built. :func:`build`, the one place that
calls Hydra's ``instantiate``, checks the same again on the resolved node it is about to hand to
Hydra (defence in depth): a route that escaped validation still cannot call anything else.
"""

from __future__ import annotations

import copy
import inspect
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from hydra.errors import InstantiationException
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException
from torch import nn

from gan_cli.errors import ConfigError, GanCliError
from gan_cli.losses.regularizers import lazy_factor
from gan_cli.models.layers import apply_spectral_norm

# ---------------------------------------------------------------------------------------------
# Instantiating config nodes.


#: ``_target_``s of the configuration this process trains with (its own option files, as its
#: command line composed them; gan-train adds them with :func:`allow_own_targets`). gan-eval and
#: gan-sample build only from checkpoints and shipped options: for them this stays empty.
_OWN_TARGETS: set[str] = set()


def allow_own_targets(cfg: DictConfig | Mapping) -> None:
    """Let :func:`build` call the ``_target_``s written literally in ``cfg`` (the run's own
    composed config: a loss of your own added through ``hydra.searchpath``); a target that only an
    interpolation would produce is not one of them."""
    stack = [OmegaConf.to_container(cfg, resolve=False) if isinstance(cfg, DictConfig) else cfg]
    while stack:
        node = stack.pop()
        if isinstance(node, Mapping):
            target = node.get("_target_")
            if isinstance(target, str) and "${" not in target:
                _OWN_TARGETS.add(target)
            stack.extend(node.values())
        elif isinstance(node, (list, tuple)):
            stack.extend(node)


def allowed_targets() -> frozenset[str]:
    """What :func:`build` may call: gan-cli's own builders and this run's own targets."""
    from gan_cli.config import trusted_targets

    return trusted_targets() | _OWN_TARGETS


def guarded(node: DictConfig | Mapping, key: str) -> dict:
    """``node`` resolved to plain data and checked right before Hydra sees it: every ``_target_``
    (nested ones too) one of gan-cli's own builders (config.trusted_targets, plus this run's own:
    allow_own_targets), no other Hydra instantiation key, no string that OmegaConf would read as an
    interpolation. UntrustedConfigError (exit 1) otherwise; nothing is located or called."""
    from gan_cli.config import refuse_untrusted
    from gan_cli.errors import UntrustedConfigError, cut

    try:
        spec = OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else dict(node)
    except (OmegaConfBaseException, RecursionError) as e:
        raise UntrustedConfigError(f"refused to build {key}: its config cannot be resolved "
                                   f"({cut((str(e).splitlines() or [type(e).__name__])[0], 200)})") from None
    refuse_untrusted(spec, f"to build {key}", allowed_targets())
    return spec


def build(node: DictConfig | Mapping, key: str, **runtime: Any) -> Any:
    """``instantiate(node, **runtime)`` of the checked node (:func:`guarded`): the only call of
    Hydra's instantiate in gan-cli. A constructor's ValueError becomes a ConfigError on ``key``."""
    spec = guarded(node, key)
    try:
        return instantiate(OmegaConf.create(spec), **runtime, _convert_="all")
    except InstantiationException as e:
        cause = e.__cause__
        if isinstance(cause, GanCliError):
            raise cause from None
        if isinstance(cause, (ValueError, TypeError)):
            raise ConfigError(f"{key}: {cause}") from None
        raise


def _spec(node: DictConfig, *pop: str) -> tuple[dict, dict]:
    """``node`` as a resolved dict without the keys ``pop`` (returned apart): options the builder
    applies from outside the class (spectral norm, packing)."""
    spec = OmegaConf.to_container(node, resolve=True)
    taken = {k: spec.pop(k) for k in pop if k in spec}
    return spec, taken


# ---------------------------------------------------------------------------------------------
# The process: device, torch settings, batch.


def select_device(hw: DictConfig | Mapping) -> torch.device:
    """The device ``hardware.device`` names; a clear error when CUDA is asked for and absent."""
    if hw["device"] == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError("hardware.device=cuda, but no CUDA GPU is visible to PyTorch "
                              "(torch.cuda.is_available() is False); use hardware=cpu")
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def configure_torch(hw: DictConfig, device: torch.device) -> None:
    """This process's torch settings from ``hardware``: threads, determinism, the bf16 CPU path."""
    if device.type == "cpu" and hw.precision == "bf16" and "ONEDNN_MAX_CPU_ISA" not in os.environ:
        # oneDNN picks AMX for bf16 convolutions on CPUs that list it; on virtual machines that
        # list AMX without enabling it the process dies of SIGILL (seen on this project's CI
        # machines). AVX512-BF16 is the fastest path that is safe everywhere; set the variable
        # yourself to override. It is read when oneDNN first runs, which is later in this process.
        os.environ["ONEDNN_MAX_CPU_ISA"] = "AVX512_CORE_BF16"
    if hw.num_threads:
        torch.set_num_threads(hw.num_threads)
    if hw.deterministic:
        if device.type == "cuda":
            # cuBLAS is deterministic only with a fixed workspace (CUDA's documentation); torch
            # raises at the first matmul without it. Read when cuBLAS first runs, later on.
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)


def batch_per_device(tc: DictConfig | Mapping, world_size: int) -> int:
    """This process's share of the global batch ``train.batch_size`` (checked: no remainder)."""
    if tc["batch_size"] % world_size:
        raise ConfigError(f"train.batch_size={tc['batch_size']} (the global batch) must be "
                          f"divisible by the number of processes ({world_size})")
    per_device = tc.get("batch_per_device")
    if per_device is not None and per_device * world_size != tc["batch_size"]:
        raise ConfigError(
            f"train.batch_per_device={per_device} x {world_size} process(es) != "
            f"train.batch_size={tc['batch_size']} (the global batch); set train.batch_size only, "
            f"or train.batch_per_device=null to derive it")
    return tc["batch_size"] // world_size


# ---------------------------------------------------------------------------------------------
# Data and loss.


def build_data(node: DictConfig, *, batch_size: int, device: torch.device | str, seed: int,
               rank: int = 0, world_size: int = 1) -> Any:
    """The DataSource ``cfg.dataset`` describes, delivering ``batch_size`` samples per call."""
    return build(node, "dataset", batch_size=batch_size, device=device, seed=seed, rank=rank,
                 world_size=world_size)


def build_split(node: DictConfig, split: str | None, seed: int) -> Any:
    """The dataset ``node`` describes with its ``split`` set to ``split``, one sample per batch on
    the CPU: the real data of ``metrics.split`` that in-training metrics compare with (its
    ``real_batches``). None when ``split`` is None (the training data serve)."""
    if split is None:
        return None
    if "split" not in node:
        raise ConfigError(f"metrics.split={split}: this dataset has no splits")
    node = copy.deepcopy(node)
    node.split = split
    return build_data(node, batch_size=1, device="cpu", seed=seed)


def build_loss(node: DictConfig) -> Any:
    """The loss object ``cfg.loss`` describes (its R1/R2 keys are regularisers, built apart)."""
    spec, _ = _spec(node, *REGULARIZER_KEYS)
    return build(spec, "loss")


# ---------------------------------------------------------------------------------------------
# Networks.


def build_network(node: DictConfig, key: str, **runtime: Any) -> nn.Module:
    """A generator or discriminator from its config, with what is applied from outside the model
    classes, so that every model gets it without knowing about it:

    * ``spectral_norm: true`` normalises every weight (gan_cli/models/layers.apply_spectral_norm);
    * ``pack: m`` > 1 (a discriminator's PacGAN packing) builds the network for m samples
      concatenated along channels (or features) and wraps it so that it judges each group of m
      consecutive samples at once (gan_cli/models/pack.py);
    * ``penalty_norm`` (a discriminator's) is what ``norm: auto`` becomes under a gradient
      penalty, read by ``resolve_norm`` (gan_cli/training/state.py) before the network is built.
    """
    spec, taken = _spec(node, "spectral_norm", "pack", "penalty_norm")
    pack = int(taken.get("pack", 1))
    if pack > 1:
        from gan_cli.models.pack import Packed, packed_shape

        if runtime.get("num_classes"):
            raise ConfigError(f"{key}.pack: packing (PacGAN) needs an unconditional D; the data "
                              f"have labels: set {key}.pack=1 or use an unconditional model")
        runtime = {**runtime, "data_shape": packed_shape(runtime["data_shape"], pack)}
    net = build(spec, key, **runtime)
    if taken.get("spectral_norm", False):
        net = apply_spectral_norm(net)
    return Packed(net, pack) if pack > 1 else net


def _input_facts(info: Any) -> dict[str, Any]:
    """The condition image's channels when the data pair each sample with an input image
    (``info.input_shape``, gan_cli/data/paired.py: pix2pix's U-Net and PatchGAN take
    ``input_channels``); nothing for every other dataset, so other models never see the key."""
    shape = getattr(info, "input_shape", None)
    return {"input_channels": shape[0]} if shape else {}


#: The model's network config nodes a pair is built from, unless a stage names others.
NETWORKS: tuple[str, str] = ("generator", "discriminator")


def build_generator(model: DictConfig, info: Any, *, networks: tuple[str, str] = NETWORKS,
                    **facts: Any) -> nn.Module:
    """The generator ``model`` (cfg.model) describes, shaped by the data's ``info`` (and a stage's
    extra ``facts``). ``networks`` names the (generator, discriminator) nodes of ``model`` to build
    from: a multi-stage model's ``network_kwargs`` may name others for some stages (LAPGAN's levels
    above the coarsest: ``level_generator``, ``level_discriminator``)."""
    facts = {**_input_facts(info), **facts}
    node = networks[0]
    return build_network(model[node], f"model.{node}", z_dim=model.z_dim,
                         data_shape=info.shape, num_classes=info.num_classes, bounded=info.bounded,
                         **facts)


def build_discriminator(model: DictConfig, info: Any, output: str, *,
                        networks: tuple[str, str] = NETWORKS, **facts: Any) -> nn.Module:
    """The discriminator ``model`` (cfg.model) describes; ``output`` is what the loss needs of it
    (``loss.d_output``: scores, a reconstruction, features); ``networks`` as for the generator."""
    facts = {**_input_facts(info), **facts}
    node = networks[1]
    return build_network(model[node], f"model.{node}", data_shape=info.shape,
                         num_classes=info.num_classes, output=output, **facts)


def build_stages(model: DictConfig) -> Any:
    """The model's stages (``model.stages``: LAPGAN levels, SinGAN scales), or one stage."""
    from gan_cli.training.curriculum import SingleStage

    node = model.get("stages")
    return SingleStage() if node is None else build(node, "model.stages")


def build_schedule(model: DictConfig) -> Any:
    """The model's phase schedule (``model.schedule``: progressive growing), or None."""
    node = model.get("schedule")
    return None if node is None else build(node, "model.schedule")


def restore_phase(G: nn.Module, model_cfg: Any, step: int) -> None:
    """Put a growing generator rebuilt from a checkpoint of ``step`` steps into the phase of its
    last trained step (the phase its sample figure at that step was drawn in).

    Nothing happens for a generator without ``set_phase`` or a model without ``model.schedule``;
    the schedule is rebuilt from the checkpoint's own (resolved) model config.
    """
    if not hasattr(G, "set_phase") or model_cfg.get("schedule") is None:
        return
    phase = build_schedule(model_cfg).phase(max(step - 1, 0))
    G.set_phase(phase.resolution, phase.alpha)


# ---------------------------------------------------------------------------------------------
# Regularisers and optimizers.

#: Keys of a loss config that configure regularisers rather than the loss object.
REGULARIZER_KEYS: tuple[str, ...] = ("r1_gamma", "r2_gamma", "r_interval")


def build_regularizers(loss: DictConfig, model: DictConfig) -> list:
    """The regularisers a run trains with (gan_cli/losses/regularizers.py), in a fixed order: R1 and R2
    from the loss's ``r1_gamma`` / ``r2_gamma`` (every ``r_interval`` D updates), then the model's
    own ``regularizers`` by name."""
    from gan_cli.losses.regularizers import R1, R2

    regs: list = []
    interval = int(loss.get("r_interval", 1))
    for key, cls in (("r1_gamma", R1), ("r2_gamma", R2)):
        gamma = float(loss.get(key, 0.0))
        if gamma > 0:
            regs.append(cls(gamma=gamma, interval=interval))
    for name, node in sorted((model.get("regularizers") or {}).items()):
        if node is not None:
            regs.append(build(node, f"model.regularizers.{name}"))
    return regs


def _lazy_interval(regularizers: Iterable, net: str) -> int:
    intervals = {r.interval for r in regularizers if r.net == net and r.interval > 1}
    if len(intervals) > 1:
        raise ConfigError(f"the lazy regularisers of {net} have different intervals "
                          f"{sorted(intervals)}; give them one interval")
    return intervals.pop() if intervals else 1


def build_optimizers(node: DictConfig, G: nn.Module, D: nn.Module,
                     regularizers: Sequence = ()) -> tuple[torch.optim.Optimizer, ...]:
    """One optimizer class from the config, built for G with lr_g and for D with lr_d.

    A network with a lazy regulariser (interval k > 1) gets lr * k/(k+1) and, for Adam's betas,
    beta ** (k/(k+1)) (StyleGAN2's correction, so that the main loss keeps its settings).
    """
    kwargs = OmegaConf.to_container(node, resolve=True)
    # the rates (optimizer_lr) and the loop's schedule (lr_factor), not optimizer arguments
    for key in ("lr_g", "lr_d", "lr_decay", "lr_decay_steps", "lr_decay_start"):
        kwargs.pop(key, None)
    implementation = kwargs.pop("implementation", "single")
    opts = []
    for net, module in (("G", G), ("D", D)):
        args = dict(kwargs)
        args.update(update_kernel(kwargs["_target_"], implementation, list(module.parameters())))
        ratio = _lazy_ratio(regularizers, net)
        if ratio != 1 and "betas" in args:
            args["betas"] = [b ** ratio for b in args["betas"]]
        opts.append(build(OmegaConf.create(args), "optimizer", params=module.parameters(),
                          lr=optimizer_lr(node, net, regularizers)))
    return tuple(opts)


def optimizer_lr(node: DictConfig, net: str, regularizers: Sequence = ()) -> float:
    """The base learning rate of ``net`` ("G" or "D"): ``lr_g`` / ``lr_d`` times the lazy
    regularisation's k/(k+1) where ``net`` has one (interval k > 1). The loop's schedule
    (``lr_factor``) scales this, not the config's rate, so a decay keeps the correction."""
    lr = float(node.lr_g if net == "G" else node.lr_d)
    return lr * _lazy_ratio(regularizers, net)


def _lazy_ratio(regularizers: Iterable, net: str) -> float:
    interval = _lazy_interval(regularizers, net)
    return lazy_factor(interval) if interval > 1 else 1.0


def update_kernel(target: str, implementation: str, params: Sequence[torch.Tensor]) -> dict:
    """The optimizer's keyword for ``optimizer.implementation``: ``fused`` (one kernel over every
    parameter), ``foreach`` (one op per kind over the tensor list) or ``single`` (a Python loop
    over tensors, torch's default on a CPU). ``auto`` is fused where the class has a fused kernel
    for the parameters' devices (torch's Adam, AdamW and SGD on CPU and GPU), else foreach."""
    if implementation == "single":
        return {"foreach": False}
    if implementation == "foreach":
        return {"foreach": True}
    if implementation == "fused":
        return {"fused": True}
    from torch.utils._foreach_utils import _get_fused_kernels_supported_devices

    guarded({"_target_": target}, "optimizer")  # get_class imports what it names: check it first
    cls = get_class(target)
    devices = set(_get_fused_kernels_supported_devices())
    if ("fused" in inspect.signature(cls).parameters
            and all(p.is_floating_point() and p.device.type in devices for p in params)):
        return {"fused": True}
    return {"foreach": True}


def lr_factor(schedule: str, step: int, steps: int, start: int = 0) -> float:
    """The learning rates' multiplier for the update after ``step`` generator steps.

    ``none``: 1. ``linear``: 1 until ``start``, then down linearly to 0 at ``steps`` (from
    ``start`` = 0: Chainer's LinearShift, used by the WGAN-GP and SNGAN CIFAR-10 settings). A pure
    function of the step, so a resumed run follows the same schedule; torch's chainable LR
    schedulers would instead scale whatever learning rate a resume restores from the config.
    """
    if schedule == "linear":
        return min(1.0, max(0.0, (steps - step) / (steps - start)))
    return 1.0


def build_logger(node: DictConfig) -> Any:
    """The logger ``cfg.logger`` describes (gan_cli/loggers.py)."""
    return build(node, "logger")


# ---------------------------------------------------------------------------------------------
# A generator from a checkpoint, without the loop (gan-eval, gan-sample).


@dataclass
class Rebuilt:
    """A checkpoint's generator rebuilt from the config saved inside it.

    Attributes:
        G: the generator in eval mode on the asked device (the EMA weights when ``which`` is G_ema;
            a multi-stage model's cascade).
        which: "G_ema" or "G".
        config: the run's saved config.
        data: the DataSource rebuilt from that config (shape facts, real samples, figures).
        step: the checkpoint's generator step.
    """

    G: nn.Module
    which: str
    config: DictConfig
    data: Any
    step: int


def local_dataset(node: DictConfig, *, data_root: str | None, download: bool) -> DictConfig:
    """A checkpoint's dataset node with the reader's own settings in place of the saved keys that
    make a builder write or fetch (docs/reliability.md, "A checkpoint's paths are data"): ``root``
    of the torchvision-style datasets (the ImageDataConfig schemas: MNIST, Fashion-MNIST,
    MNIST-5k, CIFAR-10, CelebA, LSUN), where they un-gzip and download into, becomes ``data_root``
    (None: $GAN_CLI_DATA, else ~/.cache/gan-cli/data); ``download`` becomes ``download``. Keys
    naming files that are only read (an image folder's ``path``, fashion_pairs' ``root``) and
    every other key stay the checkpoint's. ``node`` itself is left unchanged."""
    from gan_cli.config import SCHEMAS, default_data_root
    from gan_cli.config.data import ImageDataConfig

    node = copy.deepcopy(node)
    writes_under_root = {schema._target_ for schema in SCHEMAS["dataset"].values()
                         if issubclass(schema, ImageDataConfig)}
    if node.get("_target_") in writes_under_root:
        node.root = data_root if data_root is not None else default_data_root()
    if "download" in node:
        node.download = bool(download)
    return node


def use_local_data(config: DictConfig, *, data_root: str | None, download: bool) -> None:
    """:func:`local_dataset` in place on a checked saved config: its ``dataset`` and the copy of
    it that a SinGAN's stages read (``model.stages.dataset``, checked equal to it by
    validate_saved_config)."""
    config.dataset = local_dataset(config.dataset, data_root=data_root, download=download)
    stages = config.model.get("stages")
    if isinstance(stages, DictConfig) and "dataset" in stages:
        stages.dataset = config.dataset


def generator_from_checkpoint(path: str | os.PathLike, *, device: torch.device,
                              use_ema: bool = True, split: str | None = None,
                              data_root: str | None = None, download: bool = False) -> Rebuilt:
    """Load ``path`` safely (weights only), check its saved config (only gan-cli's own builders,
    every group fitting its schema: otherwise UntrustedConfigError, exit 1, before anything is
    built), rebuild its data and generator from it, and load the weights (G_ema when present and
    ``use_ema``).

    A multi-stage model (``model.stages``) gets one generator per stage, and G is their cascade
    over the stages trained so far (the checkpoint's ``stage`` and those before it), as the
    training run's figures and metrics sample it.

    The data are rebuilt from the reader's ``data_root`` and ``download`` setting, never from the
    directory or download switch the checkpoint names (:func:`local_dataset`)."""
    from gan_cli.checkpoint import CheckpointError, generator_state, load_checkpoint
    from gan_cli.config import validate_saved_config

    state = load_checkpoint(path)
    # the saved config is data: its targets must be gan-cli's own and it must fit the schemas
    config = validate_saved_config(state.get("config"), f"checkpoint {path}")
    # its paths are data too: the reader's data root and download setting, not the file's
    use_local_data(config, data_root=data_root, download=download)
    dataset_cfg = config.dataset
    if split is not None and "split" in dataset_cfg:
        dataset_cfg.split = split
    data = build_data(dataset_cfg, batch_size=1, device="cpu", seed=config.seed)
    # One generator per stage (one for most GANs), chained as the stages sample them.
    stages = build_stages(config.model)
    which, weights = generator_state(state, use_ema)
    if len(weights) != stages.num_stages:
        raise CheckpointError(f"{path}: {len(weights)} stage(s) saved, but its model config has "
                              f"{stages.num_stages}")
    generators = []
    for k, stage_weights in enumerate(weights):
        G = build_generator(config.model, stages.info(k, data.info),
                            **stages.network_kwargs(k, data.info))
        try:
            G.load_state_dict(stage_weights)
        except (RuntimeError, KeyError) as e:
            raise CheckpointError(f"{path}: the generator's weights do not fit the model config "
                                  f"saved with them ({str(e).splitlines()[0]})") from None
        generators.append(G)
    G = stages.cascade(generators[: int(state.get("stage", len(generators) - 1)) + 1])
    restore_phase(G, config.model, int(state["step"]))  # a growing G: its last trained phase
    return Rebuilt(G=G.to(device).eval(), which=which, config=config, data=data,
                   step=int(state["step"]))
