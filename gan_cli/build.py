"""Building a run's objects from its config: one place for every constructor.

The loop, gan-eval and the launcher receive built objects from here. Every part is picked by the
``_target_`` of its config node and receives the facts it needs at construction (the data's
shape, the batch, device and rank), never by a branch on a name. :func:`build`, the one call of
Hydra's ``instantiate``, checks the resolved node right before (only gan-cli's builders and the
run's own targets, no interpolation), as ``validate_saved_config`` did for a saved config:
defence in depth.
"""

from __future__ import annotations

import copy
import inspect
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from hydra.errors import InstantiationException
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException
from torch import nn

from gan_cli.distributed import wrap_ddp
from gan_cli.ema import EMA
from gan_cli.errors import ConfigError, GanCliError
from gan_cli.latents import shape_latent
from gan_cli.losses.regularizers import lazy_factor
from gan_cli.models.layers import apply_spectral_norm
from gan_cli.models.stages import SingleStage

log = logging.getLogger("gan_cli")

# ---------------------------------------------------------------------------------------------
# Instantiating config nodes.


#: ``_target_``s of the config this process trains with (gan-train: :func:`allow_own_targets`);
#: empty for gan-eval and gan-sample, which build only from checkpoints and shipped options.
_OWN_TARGETS: set[str] = set()


def allow_own_targets(cfg: DictConfig | Mapping) -> None:
    """Let :func:`build` call the ``_target_``s written literally in ``cfg`` (the run's composed
    config: a loss of your own through ``hydra.searchpath``), not those an interpolation makes."""
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
    """``node`` resolved to plain data, every (nested) ``_target_`` one of :func:`allowed_targets`,
    no other Hydra key, no interpolation; else UntrustedConfigError (exit 1), nothing called."""
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
    """``instantiate(node, **runtime)`` of the :func:`guarded` node; a constructor's ValueError
    becomes a ConfigError on ``key``."""
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
    """``node`` as a resolved dict without the keys ``pop``, returned apart."""
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
        # oneDNN picks AMX for bf16 convolutions where the CPU lists it; virtual machines that
        # list AMX without enabling it die of SIGILL (this project's CI). Read at oneDNN's first run.
        os.environ["ONEDNN_MAX_CPU_ISA"] = "AVX512_CORE_BF16"
    if hw.num_threads:
        torch.set_num_threads(hw.num_threads)
    if hw.deterministic:
        if device.type == "cuda":
            # cuBLAS is deterministic only with a fixed workspace (CUDA's documentation)
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
    """The real data of ``metrics.split`` for in-training metrics: ``node`` with that ``split``, on
    the CPU; None when ``split`` is None (the training data serve)."""
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


def build_network(node: DictConfig, key: str, *, per_sample: bool = False, **runtime: Any) -> nn.Module:
    """A generator or discriminator from its config, with what every model gets from outside its
    class: ``spectral_norm`` (models/layers.py), PacGAN's ``pack: m`` (the network built for m
    samples concatenated, judging each group of m; models/pack.py), and ``norm: auto`` resolved
    here only: under a penalty on D's input gradients (``per_sample``) the node's
    ``penalty_norm`` where it has one, else layer norm (Gulrajani et al. 2017); batch otherwise;
    and a generator's ``latent`` (gan_cli/latents.py, ``shape_latent``)."""
    spec, taken = _spec(node, "spectral_norm", "pack", "penalty_norm", "latent")
    if spec.get("norm") == "auto":
        spec["norm"] = (taken.get("penalty_norm") or "layer") if per_sample else "batch"
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
    net = shape_latent(net, taken.get("latent", "normal"))  # a generator's z: normal | uniform
    return Packed(net, pack) if pack > 1 else net


def _input_facts(info: Any) -> dict[str, Any]:
    """``input_channels`` when the data pair each sample with an input image (data/paired.py);
    nothing for other datasets, so other models never see the key."""
    shape = getattr(info, "input_shape", None)
    return {"input_channels": shape[0]} if shape else {}


#: The model's network config nodes a pair is built from, unless a stage names others.
NETWORKS: tuple[str, str] = ("generator", "discriminator")


def build_generator(model: DictConfig, info: Any, *, networks: tuple[str, str] = NETWORKS,
                    **facts: Any) -> nn.Module:
    """The generator ``cfg.model`` describes, shaped by the data's ``info`` and a stage's ``facts``;
    ``networks``: the (generator, discriminator) nodes to build from (LAPGAN's upper levels name
    ``level_generator``, ``level_discriminator``)."""
    facts = {**_input_facts(info), **facts}
    node = networks[0]
    return build_network(model[node], f"model.{node}", z_dim=model.z_dim,
                         data_shape=info.shape, num_classes=info.num_classes, bounded=info.bounded,
                         **facts)


def build_discriminator(model: DictConfig, info: Any, output: str, *, per_sample: bool = False,
                        networks: tuple[str, str] = NETWORKS, **facts: Any) -> nn.Module:
    """The discriminator ``cfg.model`` describes; ``output`` is ``loss.d_output`` (scores, a
    reconstruction, features); ``per_sample``: D's input gradients are penalised (``norm: auto``);
    ``networks`` as for the generator."""
    facts = {**_input_facts(info), **facts}
    node = networks[1]
    return build_network(model[node], f"model.{node}", per_sample=per_sample, data_shape=info.shape,
                         num_classes=info.num_classes, output=output, **facts)


def build_stages(model: DictConfig) -> Any:
    """The model's stages (``model.stages``: LAPGAN levels, SinGAN scales), or one stage."""
    node = model.get("stages")
    return SingleStage() if node is None else build(node, "model.stages")


def build_schedule(model: DictConfig) -> Any:
    """The model's phase schedule (``model.schedule``: progressive growing), or None."""
    node = model.get("schedule")
    return None if node is None else build(node, "model.schedule")


def restore_phase(G: nn.Module, model_cfg: Any, step: int) -> None:
    """Put a growing generator rebuilt from a checkpoint of ``step`` steps into the phase of its
    last trained step, by the schedule of ``model_cfg`` (the checkpoint's)."""
    if not hasattr(G, "set_phase") or model_cfg.get("schedule") is None:
        return
    phase = build_schedule(model_cfg).phase(max(step - 1, 0))
    G.set_phase(phase.resolution, phase.alpha)


# ---------------------------------------------------------------------------------------------
# Regularisers and optimizers.

#: Keys of a loss config that configure regularisers rather than the loss object.
REGULARIZER_KEYS: tuple[str, ...] = ("r1_gamma", "r2_gamma", "r_interval")


def build_regularizers(loss: DictConfig, model: DictConfig) -> list:
    """The run's regularisers in a fixed order: R1, R2 from ``loss.r1_gamma`` / ``r2_gamma`` (every
    ``r_interval`` D updates), then ``model.regularizers`` by name."""
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
    """The configured optimizer for G (lr_g) and D (lr_d); a network with a lazy regulariser of
    interval k gets lr * k/(k+1) and betas ** (k/(k+1)) (StyleGAN2)."""
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
    """The base learning rate of ``net`` ("G" or "D"): ``lr_g`` / ``lr_d`` times the lazy k/(k+1);
    the loop's ``lr_factor`` scales this, so a decay keeps the correction."""
    lr = float(node.lr_g if net == "G" else node.lr_d)
    return lr * _lazy_ratio(regularizers, net)


def _lazy_ratio(regularizers: Iterable, net: str) -> float:
    interval = _lazy_interval(regularizers, net)
    return lazy_factor(interval) if interval > 1 else 1.0


def update_kernel(target: str, implementation: str, params: Sequence[torch.Tensor]) -> dict:
    """The optimizer's keyword for ``optimizer.implementation`` (fused, foreach, single); ``auto`` is
    fused where the class has a fused kernel for the parameters' devices, else foreach."""
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
    """The learning rates' multiplier for the update after ``step`` generator steps: ``none`` 1;
    ``linear`` 1 until ``start``, then down to 0 at ``steps`` (Chainer's LinearShift, the WGAN-GP
    and SNGAN settings). A pure function of the step, so a resume follows the same schedule."""
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
    """A checkpoint's generator (in eval mode; a multi-stage model's cascade), which weights
    ("G_ema" or "G"), its saved config, the data rebuilt from it, and its step."""

    G: nn.Module
    which: str
    config: DictConfig
    data: Any
    step: int


def local_dataset(node: DictConfig, *, data_root: str | None, download: bool) -> DictConfig:
    """A copy of a checkpoint's dataset node with the reader's settings in place of the keys that
    make a builder write or fetch (docs/reliability.md): an ImageDataConfig's ``root`` becomes
    ``data_root`` (None: $GAN_CLI_DATA, else ~/.cache/gan-cli/data), ``download`` ``download``;
    keys naming files that are only read stay the checkpoint's."""
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
    """:func:`local_dataset` in place on a checked saved config, for ``dataset`` and SinGAN's copy
    of it (``model.stages.dataset``)."""
    config.dataset = local_dataset(config.dataset, data_root=data_root, download=download)
    stages = config.model.get("stages")
    if isinstance(stages, DictConfig) and "dataset" in stages:
        stages.dataset = config.dataset


def generator_from_checkpoint(path: str | os.PathLike, *, device: torch.device,
                              use_ema: bool = True, split: str | None = None,
                              data_root: str | None = None, download: bool = False) -> Rebuilt:
    """Load ``path`` (weights only), check its saved config (else UntrustedConfigError, exit 1,
    before anything is built), rebuild its data (:func:`local_dataset`) and generator, and load
    the weights (G_ema when present and ``use_ema``); a multi-stage model's G is the cascade of
    the stages trained so far, as the run's figures sample it."""
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


# ---------------------------------------------------------------------------------------------
# A G/D pair: what one stage trains (training/state.py holds the pairs; its state is the checkpoint).


@dataclass
class Pair:
    """One generator/discriminator pair and everything that trains it.

    ``G`` and ``D`` own the state dicts; ``G_fwd`` and ``D_fwd`` are what the step calls (the
    same modules, or their DDP / compiled wrappers).
    """

    G: nn.Module
    D: nn.Module
    loss: Any
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    scaler_g: torch.amp.GradScaler
    scaler_d: torch.amp.GradScaler
    ema: EMA | None = None
    regularizers: Sequence[Any] = ()
    G_fwd: Any = None
    D_fwd: Any = None
    ema_for_samples: bool = True  # ema.for_samples: figures and metrics use G_ema

    def __post_init__(self) -> None:
        self.G_fwd = self.G if self.G_fwd is None else self.G_fwd
        self.D_fwd = self.D if self.D_fwd is None else self.D_fwd

    @property
    def G_sample(self) -> nn.Module:
        """The generator figures and metrics use: G_ema when there is one (``ema.for_samples``)."""
        return self.ema.module if self.ema is not None and self.ema_for_samples else self.G

    def state_dict(self) -> dict[str, Any]:
        state = {"G": self.G.state_dict(), "D": self.D.state_dict()}
        if self.ema is not None:
            state["G_ema"] = self.ema.state_dict()
        state.update({
            "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(),
            "scaler_g": self.scaler_g.state_dict(), "scaler_d": self.scaler_d.state_dict(),
            "loss": self.loss.state_dict(),
        })
        regs = {type(r).__name__: r.state_dict() for r in self.regularizers
                if hasattr(r, "state_dict")}
        if regs:
            state["regularizers"] = regs
        return state

    def load_state_dict(self, state: dict[str, Any], path: Path) -> None:
        """Load a pair's checkpointed state. The optimizers' state (moments, step counts) comes
        from the checkpoint, their settings (learning rates, betas, weight decay) from the
        configuration, so a resume can change them."""
        self.G.load_state_dict(state["G"])
        self.D.load_state_dict(state["D"])
        if self.ema is not None and "G_ema" in state:
            self.ema.load_state_dict(state["G_ema"])
        elif self.ema is not None:  # EMA switched on at this resume: start the average from G
            self.ema.load_state_dict(state["G"])
            log.warning("%s has no G_ema (the EMA was off): the average starts from its G", path)
        for name in ("opt_g", "opt_d"):
            opt = getattr(self, name)
            settings = [{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups]
            opt.load_state_dict(state[name])
            for group, configured in zip(opt.param_groups, settings, strict=True):
                group.update(configured)
        self.scaler_g.load_state_dict(state["scaler_g"])
        self.scaler_d.load_state_dict(state["scaler_d"])
        self.loss.load_state_dict(state["loss"])
        saved = state.get("regularizers") or {}
        for r in self.regularizers:
            if hasattr(r, "load_state_dict") and type(r).__name__ in saved:
                r.load_state_dict(saved[type(r).__name__])

    def reset_optimizers(self) -> None:
        """Forget the optimizers' moments (progressive growing does at each new resolution)."""
        for opt in (self.opt_g, self.opt_d):
            opt.state.clear()


def build_full_discriminator(model_cfg: DictConfig, info: Any, loss: Any, per_sample: bool,
                             **facts: Any) -> nn.Module:
    """D as the pair trains it: ``build_discriminator`` plus the modules the loss adds to D (MMD-GAN's
    decoder, ``loss.d_modules``: trained by D's optimizer, saved with D)."""
    D = build_discriminator(model_cfg, info, loss.d_output, per_sample=per_sample, **facts)
    for name, module in loss.d_modules(D, info).items():
        D.add_module(name, module)
    return D


def build_pair(cfg: DictConfig, info: Any, device: torch.device, batch_per_device: int,
               **facts: Any) -> Pair:
    """G, D, the loss, the regularisers, the optimizers, the grad scalers and the EMA of G that
    ``cfg`` describes, placed on ``device`` and wrapped for the step (DDP, compile, NHWC).

    The order of construction is part of the run's reproducibility: G's and D's initial weights
    come from the global torch stream seeded by the loop.

    ``facts`` are a stage's extra constructor facts (``stages.network_kwargs``), given to both
    builders; among them ``networks`` may name the model's (generator, discriminator) config
    nodes this pair is built from (default ``("generator", "discriminator")``).
    """
    hw = cfg.hardware
    loss = build_loss(cfg.loss)
    regularizers = build_regularizers(cfg.loss, cfg.model)
    per_sample = scores_per_sample(loss, regularizers)
    G = build_generator(cfg.model, info, **facts).to(device)
    D = build_full_discriminator(cfg.model, info, loss, per_sample, **facts).to(device)
    if per_sample and batch_per_device > 1:
        check_no_batch_coupling(D, type(loss).__name__, chosen=cfg.model.discriminator.get("norm"))
    if G.num_classes != D.num_classes:
        raise ConfigError(f"the generator uses {G.num_classes} classes and the discriminator "
                          f"{D.num_classes}: make both conditional or neither")
    d_node = facts.get("networks", NETWORKS)[1]
    pack = int(cfg.model[d_node].get("pack", 1))
    if batch_per_device % pack:
        raise ConfigError(f"model.{d_node}.pack={pack} must divide the batch per device "
                          f"({batch_per_device}): D judges groups of {pack} samples")
    opt_g, opt_d = build_optimizers(cfg.optimizer, G, D, regularizers)
    if hw.channels_last and len(info.shape) == 3:
        G, D = G.to(memory_format=torch.channels_last), D.to(memory_format=torch.channels_last)
    # The moving average of G (ema.half_life_kimg): figures and metrics use it when enabled.
    ema_cfg = cfg.get("ema")
    ema = EMA(G) if ema_cfg is not None and ema_cfg.half_life_kimg is not None else None
    # What the step calls (DDP wrappers when distributed); G and D keep the state dicts.
    G_fwd, D_fwd = wrap_ddp(G, D, hw, device,
                            find_unused_parameters=cfg.model.get("schedule") is not None)
    if hw.compile:
        G_fwd = torch.compile(G_fwd)
        if getattr(loss, "double_backward", False):
            log.warning(
                "hardware.compile: D is not compiled, since torch.compile does not support the "
                "double backward of %s's gradient penalty", type(loss).__name__)
        else:
            D_fwd = torch.compile(D_fwd)
    fp16 = hw.precision == "fp16"
    scaler_g = torch.amp.GradScaler(device.type, enabled=fp16)
    scaler_d = torch.amp.GradScaler(device.type, enabled=fp16)
    return Pair(G=G, D=D, loss=loss, opt_g=opt_g, opt_d=opt_d, scaler_g=scaler_g,
                scaler_d=scaler_d, ema=ema, regularizers=regularizers, G_fwd=G_fwd, D_fwd=D_fwd,
                ema_for_samples=bool(ema_cfg.for_samples) if ema is not None else True)


def scores_per_sample(loss: Any, regularizers: Sequence) -> bool:
    """Whether D must score each sample alone: a gradient penalty (the loss's or a regulariser's)
    assumes it."""
    return getattr(loss, "double_backward", False) or any(
        getattr(r, "input_gradients", False) for r in regularizers if r.net == "D")


def check_no_batch_coupling(D: nn.Module, loss_name: str, chosen: str | None = None) -> None:
    """Refuse a discriminator with BatchNorm under a penalty on its input gradients: with it a
    sample's score depends on the whole batch, and the penalty no longer constrains one sample's
    gradient (Gulrajani et al. 2017 remove it from the critic). A user who set
    ``model.discriminator.norm=batch`` explicitly gets it, with a warning."""
    coupled = [name for name, m in D.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if coupled and chosen == "batch":
        log.warning("model.discriminator.norm=batch under %s: BatchNorm makes a sample's score "
                    "depend on its batch, so the penalty no longer constrains each sample's "
                    "gradient (Gulrajani et al. 2017 use layer norm: norm=auto)", loss_name)
    elif coupled:
        raise ConfigError(
            f"{loss_name} (or an R1/R2 term) penalises D's gradient at each sample, but "
            f"model.discriminator uses BatchNorm ({coupled[0]}), which makes a sample's score depend "
            f"on the rest of its batch; set model.discriminator.norm=layer (or none) where the model "
            f"has that option, or use a discriminator without batch normalisation")
