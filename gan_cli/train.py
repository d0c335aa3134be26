"""One GAN training run: build the objects the config names, then one loop, top to bottom.

The loop receives built objects: a DataSource, a loss object that owns the G/D forward logic,
two networks and two optimizers. It never branches on a loss, model or dataset name.
Units: ``step`` counts generator updates; ``nimg`` counts real samples shown to D.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn

from gan_cli.checkpoint import (
    CheckpointError,
    CheckpointMismatchError,
    latest_checkpoint,
    load_checkpoint,
    remove_stale_temp_files,
    save_checkpoint,
)
from gan_cli.distributed import (
    any_rank,
    check_replicas,
    get_rank,
    get_world_size,
    is_main,
    reduce_stats,
    replica_state,
    wrap_ddp,
)
from gan_cli.ema import EMA, ema_beta
from gan_cli.errors import ConfigError, GanCliError, Interrupted, RuntimeFailure
from gan_cli.latents import sample_latents
from gan_cli.launch import batch_per_device as batch_per_device_for
from gan_cli.models.layers import apply_spectral_norm
from gan_cli.resilience import (
    NonFiniteWatch,
    StopSignals,
    config_differences,
    nonfinite_weights,
    slurm_requeue,
    trim_metrics,
    update_is_finite,
)
from gan_cli.seeding import derive_seed, rng_state, seed_everything, set_rng_state
from gan_cli.stats import Collector, RunLog

log = logging.getLogger("gan_cli")


# ---------------------------------------------------------------------------------------------
# Building.


def build(node: DictConfig, key: str, **runtime: Any) -> Any:
    """``instantiate(node, **runtime)``; a constructor's ValueError becomes a ConfigError on ``key``."""
    try:
        return instantiate(node, **runtime, _convert_="all")
    except InstantiationException as e:
        cause = e.__cause__
        if isinstance(cause, GanCliError):
            raise cause from None
        if isinstance(cause, (ValueError, TypeError)):
            raise ConfigError(f"{key}: {cause}") from None
        raise


def build_network(node: DictConfig, key: str, **runtime: Any) -> nn.Module:
    """A generator or discriminator from its config; ``spectral_norm: true`` normalises its weights.

    Spectral norm is applied here, to whatever network the config builds, so every model class
    gets it without knowing about it (``gan_cli.models.layers.apply_spectral_norm``).
    """
    spec = OmegaConf.to_container(node, resolve=True)
    spectral_norm = spec.pop("spectral_norm", False)
    net = build(OmegaConf.create(spec), key, **runtime)
    return apply_spectral_norm(net) if spectral_norm else net


def build_generator(model: DictConfig, info: Any) -> nn.Module:
    """The generator ``model`` (cfg.model) describes, shaped by the data's ``info``."""
    return build_network(model.generator, "model.generator", z_dim=model.z_dim,
                         data_shape=info.shape, num_classes=info.num_classes, bounded=info.bounded)


def build_optimizers(cfg: DictConfig, G: nn.Module, D: nn.Module) -> tuple[torch.optim.Optimizer, ...]:
    """One optimizer class from the config, built for G with lr_g and for D with lr_d."""
    kwargs = OmegaConf.to_container(cfg, resolve=True)
    lr_g, lr_d = kwargs.pop("lr_g"), kwargs.pop("lr_d")
    kwargs.pop("lr_decay", None)  # the loop's schedule (lr_factor), not an optimizer argument
    opt_g = build(OmegaConf.create(kwargs), "optimizer", params=G.parameters(), lr=lr_g)
    opt_d = build(OmegaConf.create(kwargs), "optimizer", params=D.parameters(), lr=lr_d)
    return opt_g, opt_d


def lr_factor(schedule: str, step: int, steps: int) -> float:
    """The learning rates' multiplier for the update after ``step`` generator steps.

    ``none``: 1. ``linear``: from 1 at step 0 down to 0 at ``steps`` (Chainer's LinearShift, used
    by the WGAN-GP and SNGAN CIFAR-10 settings). A pure function of the step, so a resumed run
    follows the same schedule; torch's chainable LR schedulers would instead scale whatever
    learning rate a resume restores from the config.
    """
    if schedule == "linear":
        return max(0.0, 1.0 - step / steps)
    return 1.0


def select_device(hw: DictConfig) -> torch.device:
    if hw.device == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError("hardware.device=cuda, but no CUDA GPU is visible to PyTorch "
                              "(torch.cuda.is_available() is False); use hardware=cpu")
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def set_requires_grad(module: nn.Module, flag: bool) -> None:
    for p in module.parameters():
        p.requires_grad_(flag)


@dataclass
class Noise:
    """Latent codes from a stream of their own.

    Every rank draws the same global batch and keeps its strided share, so N ranks together use
    exactly the codes one process would.
    """

    generator: torch.Generator
    z_dim: int
    device: torch.device
    rank: int = 0
    world_size: int = 1

    def __call__(self, batch_per_device: int) -> torch.Tensor:
        z = torch.randn(batch_per_device * self.world_size, self.z_dim, generator=self.generator,
                        device=self.device)
        return z[self.rank :: self.world_size]


def fixed_latents(z_dim: int, num_classes: int, count: int, seed: int, device: torch.device,
                  truncation: float | None = None,
                  method: str = "resample") -> tuple[torch.Tensor, torch.Tensor | None]:
    """The fixed batch behind every sample figure: one row per class for a conditional G."""
    g = torch.Generator().manual_seed(derive_seed(seed, "fixed_z"))
    y = None
    if num_classes:
        per_class = max(1, count // num_classes)
        y = torch.arange(num_classes).repeat_interleave(per_class)
        count = len(y)
    z = sample_latents(count, z_dim, generator=g, truncation=truncation, method=method)
    return z.to(device), (y.to(device) if y is not None else None)


# ---------------------------------------------------------------------------------------------
# The run.


def run(cfg: DictConfig, run_dir: Path, group: str | None = None) -> dict[str, float]:
    """Train the GAN ``cfg`` describes, writing into ``run_dir``; return the last logged stats."""
    rank, world_size = get_rank(), get_world_size()
    tc, hw = cfg.train, cfg.hardware

    # Set up the process.
    device = select_device(hw)
    if device.type == "cpu" and hw.precision == "bf16" and "ONEDNN_MAX_CPU_ISA" not in os.environ:
        # oneDNN picks AMX for bf16 convolutions on CPUs that list it; on virtual machines that
        # list AMX without enabling it the process dies of SIGILL (seen on this project's CI
        # machines). AVX512-BF16 is the fastest path that is safe everywhere; set the variable
        # yourself to override. It is read when oneDNN first runs, which is later in this process.
        os.environ["ONEDNN_MAX_CPU_ISA"] = "AVX512_CORE_BF16"
    if hw.num_threads:
        torch.set_num_threads(hw.num_threads)
    if hw.deterministic:
        torch.use_deterministic_algorithms(True)
    seed_everything(cfg.seed + rank)
    batch_per_device = batch_per_device_for(tc, world_size)  # train.batch_size is the global batch
    ckpt_dir = run_dir / "checkpoints"
    samples_dir = run_dir / "samples"
    if is_main():
        for d in (ckpt_dir, samples_dir):
            try:
                d.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise RuntimeFailure(f"cannot write the run directory {run_dir}: {e}") from None
        remove_stale_temp_files(ckpt_dir)  # left by a writer killed mid-save; never checkpoints

    # Build the data, the loss, the networks and their optimizers.
    data = build(cfg.dataset, "dataset", batch_size=batch_per_device, device=device,
                 seed=cfg.seed, rank=rank, world_size=world_size)
    info = data.info
    loss = build(cfg.loss, "loss")
    G = build_generator(cfg.model, info).to(device)
    D = build_network(cfg.model.discriminator, "model.discriminator", data_shape=info.shape,
                      num_classes=info.num_classes, output=loss.d_output).to(device)
    if G.num_classes != D.num_classes:
        raise ConfigError(f"the generator uses {G.num_classes} classes and the discriminator "
                          f"{D.num_classes}: make both conditional or neither")
    opt_g, opt_d = build_optimizers(cfg.optimizer, G, D)
    channels_last = hw.channels_last and len(info.shape) == 3
    if channels_last:
        G, D = G.to(memory_format=torch.channels_last), D.to(memory_format=torch.channels_last)
    # The moving average of G (ema.half_life_kimg): figures and metrics use it when enabled.
    ema_cfg = cfg.get("ema") or OmegaConf.create({"half_life_kimg": None})
    ema = EMA(G) if ema_cfg.half_life_kimg is not None else None
    G_sample = ema.module if ema is not None and ema_cfg.for_samples else G
    # What the step calls (DDP wrappers when distributed); G and D keep the state dicts.
    G_fwd, D_fwd = wrap_ddp(G, D, hw, device)
    if hw.compile:
        G_fwd = torch.compile(G_fwd)
        if getattr(loss, "double_backward", False):
            log.warning("hardware.compile: D is not compiled, since torch.compile does not "
                        "support the double backward of %s's gradient penalty",
                        type(loss).__name__)
        else:
            D_fwd = torch.compile(D_fwd)
    amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(hw.precision)
    scaler_g = torch.amp.GradScaler(device.type, enabled=hw.precision == "fp16")
    scaler_d = torch.amp.GradScaler(device.type, enabled=hw.precision == "fp16")

    def autocast() -> contextlib.AbstractContextManager:
        if amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device.type, dtype=amp_dtype)

    noise = Noise(torch.Generator(device=device).manual_seed(derive_seed(cfg.seed, "noise")),
                  cfg.model.z_dim, device, rank, world_size)
    fixed_z, fixed_y = fixed_latents(cfg.model.z_dim, G.num_classes,
                                     tc.figure_samples or data.figure_samples, cfg.seed, device,
                                     tc.get("figure_truncation"), tc.get("truncation_method", "resample"))
    n_params = sum(p.numel() for p in G.parameters()), sum(p.numel() for p in D.parameters())
    log.info("G: %s parameters, D: %s parameters, data shape %s, %d classes, device %s",
             f"{n_params[0]:,}", f"{n_params[1]:,}", info.shape, info.num_classes, device)

    # Resume from a checkpoint when asked.
    step = 0
    skips = {"d": 0, "g": 0}  # updates skipped for non-finite values (train.nonfinite=skip)
    resume_path = _resume_path(cfg.get("resume"), ckpt_dir, run_dir)
    if resume_path is not None:
        state = load_checkpoint(resume_path)
        _restore(state, resume_path, OmegaConf.to_container(cfg, resolve=True), G=G, D=D,
                 opt_g=opt_g, opt_d=opt_d, scaler_g=scaler_g, scaler_d=scaler_d, loss=loss,
                 data=data, noise=noise, ema=ema)
        step = state["step"]
        skips.update(state.get("nonfinite_skips") or {})
        if is_main() and trim_metrics(run_dir / "metrics.jsonl", step):
            log.info("metrics.jsonl: dropped the records logged after step %d; they are "
                     "logged again as training repeats those steps", step)
        log.info("resumed from %s at step %d", resume_path, step)
    elif cfg.get("resume") == "auto":
        log.info("resume=auto: no checkpoint in %s yet; starting from step 0", ckpt_dir)

    def checkpoint_state() -> dict:
        return {
            "step": step,
            "nimg": step * tc.batch_size * loss.n_critic,
            "G": G.state_dict(), "D": D.state_dict(),
            **({"G_ema": ema.state_dict()} if ema is not None else {}),
            "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(),
            "scaler_g": scaler_g.state_dict(), "scaler_d": scaler_d.state_dict(),
            "loss": loss.state_dict(), "data": data.state_dict(),
            "noise": noise.generator.get_state(),
            "metrics": evaluator.state_dict() if evaluator is not None else {},  # best so far
            "rng": rng_state(),
            "nonfinite_skips": dict(skips),
            "config": OmegaConf.to_container(cfg, resolve=True),
        }

    standing_at = -1  # the step G_ema's BatchNorm statistics were last recomputed at

    def ema_standing_stats() -> None:
        """G_ema's own BatchNorm statistics, once per step that needs them (figure, metrics, ckpt)."""
        nonlocal standing_at
        if ema is None or standing_at == step or not ema_cfg.get("bn_batches", 0):
            return
        ema.recompute_batchnorm(cfg.model.z_dim, G.num_classes, ema_cfg.bn_batches,
                                tc.batch_size, derive_seed(cfg.seed, f"standing_{step}"), device)
        standing_at = step

    def save_samples() -> None:
        ema_standing_stats()
        was_training = G_sample.training
        G_sample.eval()
        with torch.no_grad(), autocast():
            fake = G_sample(fixed_z, fixed_y).float()
        G_sample.train(was_training)
        path = samples_dir / f"step_{step:08d}.png"
        data.save_figure(fake, path, labels=fixed_y)
        runlog.image("samples", path, step)

    evaluator = None
    if is_main():
        from gan_cli.evaluate import TrainingMetrics

        evaluator = TrainingMetrics(cfg.metrics, data, G_sample, cfg.model.z_dim, device,
                                    cfg.seed, run_dir)
        if resume_path is not None:
            evaluator.load_state_dict(state.get("metrics", {}))
    logger = build(cfg.logger, "logger") if is_main() else None
    if logger is not None:
        logger.start(run_dir=run_dir, config=OmegaConf.to_container(cfg, resolve=True),
                     name=cfg.name or run_dir.name, group=group)
    runlog = RunLog(run_dir, logger, total_steps=tc.steps, start_step=step, enabled=is_main())
    collector = Collector()
    watch = NonFiniteWatch()  # stop mode: where the first non-finite statistic appeared
    skip_nonfinite = tc.get("nonfinite", "stop") == "skip"
    skips_logged = skips["d"] + skips["g"]
    last: dict[str, float] = {}
    last_ckpt = (resume_path, step) if resume_path is not None else (None, 0)
    exit_code = 1
    t_interval, step_interval = time.perf_counter(), step

    def check_finite(where: str) -> None:
        """Raise if a loss since the last check, or a weight now, is not finite (host sync)."""
        first = watch.first()
        bad_net = nonfinite_weights({"G": G, "D": D}) if where == "checkpoint" else None
        if first is None and bad_net is None:
            return
        what = (f"{first[1]} is not finite (NaN or inf) at step {first[0]}" if first is not None
                else f"the weights of {bad_net} are not finite (NaN or inf) at step {step}")
        kept = (f"the last good checkpoint is {last_ckpt[0]} (step {last_ckpt[1]})"
                if last_ckpt[0] is not None else "no checkpoint was written")
        raise RuntimeFailure(
            f"training diverged: {what}; stopped before writing a checkpoint, {kept}. Lower the "
            f"learning rates, change the loss, or set train.nonfinite=skip to skip such updates.")

    def write_checkpoint() -> None:
        nonlocal last_ckpt
        check_finite("checkpoint")  # never overwrite a good checkpoint with NaN weights
        ema_standing_stats()
        last_ckpt = (save_checkpoint(checkpoint_state(), ckpt_dir, step, tc.keep_ckpts), step)

    stop = StopSignals().install()  # SIGTERM/SIGINT/SIGUSR1: checkpoint at the step boundary
    stopping = False
    lr_decay = cfg.optimizer.get("lr_decay", "none")
    base_lrs = [(opt_g, cfg.optimizer.lr_g), (opt_d, cfg.optimizer.lr_d)]
    try:
        while step < tc.steps:
            if lr_decay != "none":
                factor = lr_factor(lr_decay, step, tc.steps)
                for opt, base in base_lrs:
                    for group in opt.param_groups:
                        group["lr"] = base * factor
            # Discriminator: n_critic updates, each on a fresh real batch. The last one's fake
            # batch keeps its graph and serves the generator's update (one G forward fewer).
            # A conditional G draws its labels from the real batch: fakes follow the data's classes.
            for i in range(loss.n_critic):
                real, y_real = data.next()
                y = y_real if G.num_classes else None
                if channels_last:
                    real = real.contiguous(memory_format=torch.channels_last)
                with torch.set_grad_enabled(i == loss.n_critic - 1), autocast():
                    fake = G_fwd(noise(batch_per_device), y)
                with autocast():
                    loss_d, stats = loss.d_loss(D_fwd, real, fake.detach(), y)
                opt_d.zero_grad(set_to_none=True)
                scaler_d.scale(loss_d).backward()
                if skip_nonfinite and not update_is_finite(loss_d, D.parameters(),
                                                           not scaler_d.is_enabled()):
                    skips["d"] += 1  # no optimizer step, no loss-state update, no stats
                    continue
                scaler_d.step(opt_d)
                scaler_d.update()
                loss.after_d_step(D, reduce_stats(stats))  # rank-averaged (BEGAN's k_t)
                collector.add(stats)
                if not skip_nonfinite:
                    watch.add(stats, step + 1)

            # Generator: one update through the frozen discriminator.
            set_requires_grad(D, False)
            with autocast():
                loss_g, stats = loss.g_loss(D_fwd, fake, y)
            opt_g.zero_grad(set_to_none=True)
            scaler_g.scale(loss_g).backward()
            if skip_nonfinite and not update_is_finite(loss_g, G.parameters(),
                                                       not scaler_g.is_enabled()):
                skips["g"] += 1
            else:
                scaler_g.step(opt_g)
                scaler_g.update()
                collector.add(stats)
                if not skip_nonfinite:
                    watch.add(stats, step + 1)
                if ema is not None:
                    ema.update(G, ema_beta(ema_cfg.half_life_kimg, tc.batch_size,
                                           (step + 1) * tc.batch_size, ema_cfg.rampup,
                                           ema_cfg.get("start_kimg", 0.0)))
            set_requires_grad(D, True)
            step += 1

            # Report statistics (the only host synchronisation in the loop) and metrics.
            every = cfg.metrics.every_steps
            metrics_due = every > 0 and (step % every == 0 or step == tc.steps)
            log_step = step % tc.log_every_steps == 0 or step == tc.steps or metrics_due
            if log_step:
                now = time.perf_counter()
                stats_mean = collector.flush()
                check_finite("log")
                for key, value in stats_mean.items():
                    if not math.isfinite(value):
                        raise RuntimeFailure(
                            f"training diverged: {key} is {value} at step {step} (mean over steps "
                            f"{step_interval + 1}-{step}); the last good checkpoint is kept in "
                            f"{ckpt_dir}. Lower the learning rates or change the loss.")
                imgs = (step - step_interval) * tc.batch_size * loss.n_critic
                last = {"step": step, "kimg": step * tc.batch_size * loss.n_critic / 1000,
                        **stats_mean, "imgs_per_s": imgs / max(now - t_interval, 1e-9)}
                if lr_decay != "none":
                    last["lr_g"], last["lr_d"] = (o.param_groups[0]["lr"] for o in (opt_g, opt_d))
                if metrics_due and evaluator is not None:
                    ema_standing_stats()
                    last.update(evaluator(step))
                if skip_nonfinite:
                    last["nonfinite_skips"] = skips["d"] + skips["g"]
                    if not stats_mean and last["nonfinite_skips"] > skips_logged:
                        raise RuntimeFailure(
                            f"training diverged: every update of steps {step_interval + 1}-{step} "
                            f"was skipped for non-finite values (train.nonfinite=skip); the last "
                            f"good checkpoint is {last_ckpt[0]} (step {last_ckpt[1]}). Lower the "
                            f"learning rates or change the loss.")
                    if last["nonfinite_skips"] > skips_logged:
                        skips_logged = last["nonfinite_skips"]
                        log.warning("train.nonfinite=skip: %d discriminator and %d generator "
                                    "updates skipped so far (non-finite loss or gradients)",
                                    skips["d"], skips["g"])
                runlog.write(last)
                t_interval, step_interval = time.perf_counter(), step  # metrics time excluded

            # Sample figure and checkpoint.
            if is_main() and (step % tc.sample_every_steps == 0 or step == tc.steps):
                save_samples()
            if is_main() and (step % tc.ckpt_every_steps == 0 or step == tc.steps):
                write_checkpoint()
            # A stop signal: a plain Python flag, read once per step (no host sync). Under DDP
            # the ranks agree at logging steps (one tiny all-reduce), so all stop at one step.
            stopping = stop.received is not None
            if world_size > 1:
                stopping = log_step and any_rank(stopping, device)
            if stopping and step < tc.steps:
                break
        if stopping and step < tc.steps:
            exit_code = Interrupted.exit_code
            _stop_cleanly(stop, cfg, step, last_ckpt, write_checkpoint, run_dir)
        elif world_size > 1:  # every rank ends with the same weights (and loss state)
            n = check_replicas(replica_state(G, D, loss))
            log.info("G, D and the loss state are bitwise identical on all %d ranks", n)
        exit_code = 0
    finally:
        stop.restore()
        runlog.close(exit_code)
    log.info("done: %d steps; samples in %s, checkpoint %s", step, samples_dir,
             ckpt_dir / "last.pt")
    return last


def _stop_cleanly(stop: StopSignals, cfg: DictConfig, step: int, last_ckpt: tuple,
                  write_checkpoint: Any, run_dir: Path) -> None:
    """After a stop signal: checkpoint this step (unless just written), maybe requeue, exit 3."""
    if is_main() and last_ckpt[1] != step:
        write_checkpoint()
    requeued = None
    if (is_main() and stop.name == "SIGUSR1" and cfg.train.get("requeue", False)):
        requeued = slurm_requeue()
    then = (f"SLURM job {requeued} was requeued and continues with resume=auto"
            if requeued else f"continue with: gan-train resume={run_dir}")
    raise Interrupted(f"stopped by {stop.name} at step {step}/{cfg.train.steps}; checkpoint "
                      f"{run_dir / 'checkpoints' / 'last.pt'} holds step {step}; {then}")


def _resume_path(resume: str | None, ckpt_dir: Path, run_dir: Path) -> Path | None:
    """The checkpoint to start from: None (fresh), the run's latest (auto), or the named one.

    A directory names a run: its latest checkpoint (``cli`` already made that directory the run
    directory, so the run continues in place).
    """
    if resume in (None, "", "never"):
        return None
    if resume == "auto":
        return latest_checkpoint(ckpt_dir)  # nothing yet: a fresh start
    path = Path(resume).expanduser()
    if path.is_dir():
        found = latest_checkpoint(path / "checkpoints") or latest_checkpoint(path)
        if found is None:
            raise CheckpointError(f"resume={resume}: no checkpoint in {path / 'checkpoints'} "
                                  f"(last.pt or step_*.pt)")
        return found
    return path


def _restore(state: dict, path: Path, config: dict, **objs: Any) -> None:
    """Load every piece of a checkpoint into the built objects.

    A checkpoint that does not fit the configured objects is a CheckpointMismatchError naming
    the options that differ; options that differ but still fit are logged as a warning.
    The optimizers' state (moments, step counts) comes from the checkpoint, their settings
    (learning rates, betas, weight decay) from the configuration, so a resume can change them.
    """
    old_config = state.get("config") or {}
    diffs = config_differences(old_config, config, ("model", "loss", "dataset", "optimizer"))
    try:
        objs["G"].load_state_dict(state["G"])
        objs["D"].load_state_dict(state["D"])
        ema = objs.get("ema")
        if ema is not None and "G_ema" in state:
            ema.load_state_dict(state["G_ema"])
        elif ema is not None:  # EMA switched on at this resume: start the average from G
            ema.load_state_dict(state["G"])
            log.warning("%s has no G_ema (the EMA was off): the average starts from its G", path)
        for name in ("opt_g", "opt_d"):
            opt = objs[name]
            settings = [{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups]
            opt.load_state_dict(state[name])
            for group, configured in zip(opt.param_groups, settings, strict=True):
                group.update(configured)
        objs["scaler_g"].load_state_dict(state["scaler_g"])
        objs["scaler_d"].load_state_dict(state["scaler_d"])
        objs["loss"].load_state_dict(state["loss"])
        objs["data"].load_state_dict(state["data"])
        objs["noise"].generator.set_state(state["noise"])
        set_rng_state(state["rng"])
    except (RuntimeError, KeyError, ValueError, TypeError, IndexError) as e:
        detail = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        differ = ("; options that differ: " + "; ".join(diffs[:6])) if diffs else ""
        raise CheckpointMismatchError(
            f"{path} does not fit the configured model: it was written for a different model, "
            f"dataset or loss configuration{differ}. Resume with the run's own options "
            f"(resume=RUN_DIR reuses them) ({detail})") from None
    if diffs:
        log.warning("resuming %s with options that differ from the checkpoint's: %s",
                    path, "; ".join(diffs))
