"""One GAN training run: build the objects the config names, then one loop, top to bottom.

The loop receives built objects (gan_cli/build.py) gathered in a :class:`TrainState`; one call of
:class:`GANStep` makes one generator step. The loop never branches on a loss, model or dataset
name, and never lists checkpoint keys. Units: ``step`` counts generator updates; ``nimg`` counts
real samples shown to D.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from gan_cli.build import (
    allow_own_targets,
    allowed_targets,
    batch_per_device,
    build_data,
    build_logger,
    build_pair,
    build_schedule,
    build_split,
    build_stages,
    configure_torch,
    lr_factor,
    optimizer_lr,
    select_device,
)
from gan_cli.checkpoint import load_checkpoint, remove_stale_temp_files
from gan_cli.config import check_saved_config
from gan_cli.distributed import (
    check_replicas,
    control_group,
    get_rank,
    get_world_size,
    is_main,
    replica_state,
    wait_for_main,
)
from gan_cli.errors import Interrupted, RuntimeFailure
from gan_cli.latents import Noise
from gan_cli.seeding import derive_seed, seed_everything
from gan_cli.stats import Collector, RunLog, run_summary
from gan_cli.training.curriculum import Curriculum
from gan_cli.training.memory import describe_peak, peak_memory
from gan_cli.training.nonfinite import NonFinitePolicy
from gan_cli.training.outputs import Checkpoints, SampleFigures, StandingStats
from gan_cli.training.reset import discriminator_reset
from gan_cli.training.resume import last_record, resume_path, trim_metrics
from gan_cli.training.signals import StopAgreement, StopSignals, slurm_requeue
from gan_cli.training.state import TrainState
from gan_cli.training.step import Autocast, GANStep

log = logging.getLogger("gan_cli")


def train(cfg: DictConfig, run_dir: Path, group: str | None = None) -> dict[str, float]:
    """Train the GAN ``cfg`` describes, writing into ``run_dir``; return the last logged stats.
    Out of memory is a RuntimeFailure (exit 1) naming the batch."""
    try:
        return _train(cfg, run_dir, group)
    except (RuntimeError, MemoryError) as e:
        if not out_of_memory(e):
            raise
        first = " ".join((str(e).strip().splitlines() or [type(e).__name__])[0].split())
        where = "the GPU" if isinstance(e, torch.cuda.OutOfMemoryError) else "this machine"
        batch, world_size = cfg.train.batch_size, get_world_size()
        per = f" ({batch // world_size} per process)" if world_size > 1 else ""
        raise RuntimeFailure(f"out of memory on {where} with train.batch_size={batch}{per}: "
                             f"{first[:300]}; lower train.batch_size (or the networks' size)") from None


def out_of_memory(e: BaseException) -> bool:
    """Whether ``e`` is torch (or Python) failing to allocate memory, on the GPU or the CPU."""
    if isinstance(e, (torch.cuda.OutOfMemoryError, MemoryError)):
        return True
    text = str(e)
    return isinstance(e, RuntimeError) and any(
        words in text for words in ("can't allocate memory", "not enough memory", "out of memory"))


def _train(cfg: DictConfig, run_dir: Path, group: str | None) -> dict[str, float]:
    rank, world_size = get_rank(), get_world_size()
    tc, hw = cfg.train, cfg.hardware

    # Set up the process.
    allow_own_targets(cfg)  # build() calls only gan-cli's builders and this config's own targets
    device = select_device(hw)
    configure_torch(hw, device)
    seed_everything(cfg.seed + rank)
    per_device = batch_per_device(tc, world_size)  # train.batch_size is the global batch
    ckpt_dir, samples_dir = run_dir / "checkpoints", run_dir / "samples"
    if is_main():
        for d in (ckpt_dir, samples_dir):
            try:
                d.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise RuntimeFailure(f"cannot write the run directory {run_dir}: {e}") from None
        remove_stale_temp_files(ckpt_dir)  # left by a writer killed mid-save; never checkpoints

    # Build the data, the networks and what trains them.
    data = build_data(cfg.dataset, batch_size=per_device, device=device, seed=cfg.seed,
                      rank=rank, world_size=world_size)
    info = data.info
    stages, schedule = build_stages(cfg.model), build_schedule(cfg.model)
    pairs = [build_pair(cfg, stages.info(k, info), device, per_device,
                        **stages.network_kwargs(k, info)) for k in range(stages.num_stages)]
    pair = pairs[0]
    noise = Noise(torch.Generator(device=device).manual_seed(derive_seed(cfg.seed, "noise")),
                  cfg.model.z_dim, device, rank, world_size)
    curriculum = Curriculum(stages, schedule, tc.steps, tc.batch_size, world_size, pair.loss.n_critic)
    state = TrainState(pairs=pairs, data=data, noise=noise,
                       nonfinite=NonFinitePolicy(tc.nonfinite, device, ckpt_dir),
                       config=OmegaConf.to_container(cfg, resolve=True),
                       real_nimg=curriculum.real_nimg)
    reset_d = discriminator_reset(cfg, stages, info, pairs)  # train.reset_d_at
    autocast = Autocast(hw.precision, device)
    collector = Collector()
    step_fn = GANStep(data=data, noise=noise, nonfinite=state.nonfinite, collector=collector,
                      autocast=autocast, channels_last=hw.channels_last and len(info.shape) == 3,
                      ema_cfg=cfg.ema)
    n_params = sum(p.numel() for p in pair.G.parameters()), sum(p.numel() for p in pair.D.parameters())
    log.info("G: %s parameters, D: %s parameters, data shape %s, %d classes, device %s",
             f"{n_params[0]:,}", f"{n_params[1]:,}", info.shape, info.num_classes, device)

    # The metrics tracked during training (rank 0), and resuming from a checkpoint when asked.
    if is_main():
        from gan_cli.metrics.tracker import TrainingMetrics

        state.metrics = TrainingMetrics(cfg.metrics, data, lambda: curriculum.sampler(state),
                                        cfg.model.z_dim, device, cfg.seed, run_dir,
                                        reference=build_split(cfg.dataset, cfg.metrics.get("split"),
                                                              cfg.seed))
    resumed_from = resume_path(cfg.get("resume"), ckpt_dir)
    if resumed_from is not None:
        checkpoint = load_checkpoint(resumed_from)
        # its config is only compared with this run's, never built; still data: checked first
        # (its targets: gan-cli's builders and this run's own, as build() would allow them)
        check_saved_config(checkpoint.get("config"), f"checkpoint {resumed_from}", allowed_targets())
        state.load_state_dict(checkpoint, resumed_from)
        if is_main() and trim_metrics(run_dir / "metrics.jsonl", state.step):
            log.info("metrics.jsonl: dropped the records logged after step %d; they are "
                     "logged again as training repeats those steps", state.step)
        log.info("resumed from %s at step %d", resumed_from, state.step)
        if state.step >= tc.steps:  # a finished run started again (a job script run twice)
            last = last_record(run_dir / "metrics.jsonl") if is_main() else {}
            log.info("the run is already at step %d of train.steps=%d: nothing to train; its last "
                     "statistics are reported again", state.step, tc.steps)
            if is_main() and not last:
                log.warning("%s holds no records (emptied or deleted): no statistics to report",
                            run_dir / "metrics.jsonl")
            return last
    elif cfg.get("resume") == "auto":
        log.info("resume=auto: no checkpoint in %s yet; starting from step 0", ckpt_dir)

    # Where the run reports: metrics.jsonl, the console, the logger; figures and checkpoints.
    logger = build_logger(cfg.logger) if is_main() else None
    if logger is not None:
        logger.start(run_dir=run_dir, config=state.config, name=cfg.name or run_dir.name,
                     group=group)
    from gan_cli.metrics.registry import shown_keys

    runlog = RunLog(run_dir, logger, total_steps=tc.steps, start_step=state.step,
                    enabled=is_main(), shown=shown_keys())
    standing = StandingStats(state, cfg.ema if pair.ema is not None else None, cfg.model.z_dim,
                             tc.batch_size, cfg.seed, device)
    figures = SampleFigures(state, lambda: curriculum.sampler(state), samples_dir,
                            count=tc.figure_samples or data.figure_samples,
                            z_dim=cfg.model.z_dim, seed=cfg.seed, device=device,
                            truncation=tc.figure_truncation, method=tc.truncation_method,
                            autocast=autocast, standing=standing, runlog=runlog)
    checkpoints = Checkpoints(state, ckpt_dir, tc.keep_ckpts, standing, resumed_from)

    # Train.
    stop = StopSignals().install()  # SIGTERM, SIGINT, SIGHUP, ...: a checkpoint at the step boundary
    agree = StopAgreement(stop, control_group())  # under DDP: all ranks stop after one step
    exit_code, last = 1, {}
    lr_decay = cfg.optimizer.lr_decay
    decay_steps = cfg.optimizer.lr_decay_steps or tc.steps
    decay_start = cfg.optimizer.lr_decay_start
    saved_steps = (resumed_from is not None and lr_decay != "none"
                   and cfg.optimizer.lr_decay_steps is None)
    if saved_steps and state.resumed_steps not in (None, tc.steps):
        log.warning("optimizer.lr_decay=linear now ends at train.steps=%d instead of the %d the run "
                    "started with: the learning rates rise at this resume (%.3g -> %.3g of their "
                    "base). Set optimizer.lr_decay_steps=%d to keep the original schedule.",
                    tc.steps, state.resumed_steps,
                    lr_factor(lr_decay, state.step, state.resumed_steps, decay_start),
                    lr_factor(lr_decay, state.step, tc.steps, decay_start), state.resumed_steps)
    t_interval, step_interval, interval_nimg = time.perf_counter(), state.step, state.nimg
    try:
        while state.step < tc.steps:
            # The stage, the networks' phase, the batch and the learning rates of this step (pure
            # functions of the step: a resumed run takes the same path).
            plan = curriculum.before_step(state)
            state.stage, state.data.batch_size = plan.stage, plan.batch_per_device
            pair = state.pair
            reset_d(pair, state.step)  # D from scratch at train.reset_d_at's steps
            if lr_decay != "none":
                factor = lr_factor(lr_decay, state.step, decay_steps, decay_start)
                for opt, net in ((pair.opt_g, "G"), (pair.opt_d, "D")):
                    base = optimizer_lr(cfg.optimizer, net, pair.regularizers)
                    for param_group in opt.param_groups:
                        param_group["lr"] = base * factor

            # The discriminator's and the generator's updates.
            step_fn(pair, state.step, plan)
            state.step += 1
            step = state.step

            # Report statistics (the only host synchronisation in the loop) and metrics.
            every = cfg.metrics.every_steps
            metrics_due = every > 0 and (step % every == 0 or step == tc.steps)
            log_step = step % tc.log_every_steps == 0 or step == tc.steps or metrics_due
            if log_step:
                now = time.perf_counter()
                stats_mean = collector.flush()
                state.nonfinite.check_interval(stats_mean, step_interval + 1, step)
                imgs = state.nimg - interval_nimg
                last = {"step": step, "kimg": state.nimg / 1000, **stats_mean,
                        "imgs_per_s": imgs / max(now - t_interval, 1e-9)}
                if lr_decay != "none":
                    last["lr_g"], last["lr_d"] = (o.param_groups[0]["lr"] for o in (pair.opt_g, pair.opt_d))
                if metrics_due and state.metrics is not None:
                    standing()
                    last.update(state.metrics(step))
                if metrics_due and world_size > 1:
                    wait_for_main()  # the others wait for rank 0's metrics outside DDP's collectives
                last.update(state.nonfinite.report())
                if step == tc.steps:  # the run's peak memory in its last record (training/memory.py)
                    last.update(peak_memory(device))
                if state.nonfinite.total_skips > state.nonfinite.skips_logged:
                    state.nonfinite.skips_logged = state.nonfinite.total_skips
                    log.warning("train.nonfinite=skip: %d discriminator and %d generator updates "
                                "skipped so far (non-finite loss or gradients)",
                                state.nonfinite.skips["d"], state.nonfinite.skips["g"])
                runlog.write(last)
                t_interval, step_interval = time.perf_counter(), step  # metrics time excluded
                interval_nimg = state.nimg

            # A stop signal: a plain Python flag, read once per step (no host sync). Under DDP
            # the ranks agree one step later (an asynchronous all-reduce of the flag on a gloo
            # group), so all stop after the same step. From here the stop finishes: no second
            # Ctrl-C interrupts the checkpoint of this step.
            if agree() and step < tc.steps:
                stop.finish()

            # Sample figure and checkpoint.
            if is_main() and (step % tc.sample_every_steps == 0 or step == tc.steps):
                figures()
            if step % tc.ckpt_every_steps == 0 or step == tc.steps:
                checkpoints.write()  # every rank: their RNG states are gathered; rank 0 writes
            if stop.finishing:
                break

        # The end: a clean stop after a signal, or the replicas checked after a full run.
        if stop.finishing:
            exit_code = Interrupted.exit_code
            _stop_cleanly(stop, cfg, state.step, checkpoints, run_dir)
        elif world_size > 1:  # every rank ends with the same weights (loss, regulariser state)
            n = check_replicas(replica_state(pair.G, pair.D, pair.loss, pair.regularizers))
            log.info("G, D and the loss and regulariser states are bitwise identical on all %d "
                     "ranks", n)
        exit_code = 0
    finally:
        agree.close()
        stop.restore()
        runlog.close(exit_code)
    if is_main():
        log.info("%s", run_summary(last, run_dir, tc.steps))
        if "peak_rss_mib" in last:
            log.info(describe_peak(last))
    return last


def _stop_cleanly(stop: StopSignals, cfg: DictConfig, step: int, checkpoints: Checkpoints,
                  run_dir: Path) -> None:
    """After a stop signal: checkpoint this step (unless just written), maybe requeue, exit 3.

    Every rank takes part in the checkpoint and then waits for rank 0 to have written it, so no
    rank exits (and makes the launcher stop the others) while rank 0 is still writing."""
    if checkpoints.last_step != step:
        checkpoints.write()
    wait_for_main()
    requeued = None
    if is_main() and stop.name == "SIGUSR1" and cfg.train.requeue:
        requeued = slurm_requeue()
    then = (f"SLURM job {requeued} was requeued and continues with resume=auto"
            if requeued else f"continue with: gan-train resume={run_dir}")
    raise Interrupted(f"stopped by {stop.description} at step {step}/{cfg.train.steps}; checkpoint "
                      f"{run_dir / 'checkpoints' / 'last.pt'} holds step {step}; {then}")
