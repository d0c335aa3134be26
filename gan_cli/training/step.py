"""One generator step of a GAN: ``n_critic`` discriminator updates, then one generator update.

The step sees built objects only (a :class:`~gan_cli.build.Pair`, the data, the latent
stream, the non-finite policy) and never branches on a loss, model or dataset name. Its extension
points: the plan's ``prepare(batch)`` (a growth phase's faded images, a cascade level's target
and condition); the batch's condition ``y`` (labels or an image), given to G and D whenever G
takes one; regularisers (gan_cli/losses/regularizers.py), added to their network's loss at interval 1,
else run lazily with their own backward and step. A lazy update runs on the bare networks and
takes its gradients with ``autograd.grad``, averaged over the ranks with one all-reduce: DDP's
reducer would wait for the parameters the term does not reach (R1 never reaches D's last bias).

Units: ``step`` counts generator updates; a discriminator update's index is
``step * n_critic + i``, so lazy intervals are a pure function of the step (exact resume).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from gan_cli.build import Pair
from gan_cli.data.base import Batch
from gan_cli.distributed import all_reduce_grads, reduce_stats
from gan_cli.ema import ema_beta
from gan_cli.losses.regularizers import RegContext
from gan_cli.models import takes_condition
from gan_cli.training.curriculum import StepPlan
from gan_cli.training.nonfinite import NonFinitePolicy


def set_requires_grad(module: nn.Module, flag: bool) -> None:
    for p in module.parameters():
        p.requires_grad_(flag)


class Autocast:
    """``hardware.precision``: a context manager for the forward passes (nothing in fp32)."""

    def __init__(self, precision: str, device: torch.device) -> None:
        self.dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
        self.device_type = device.type

    def __call__(self) -> contextlib.AbstractContextManager:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)


class GANStep:
    """The discriminator and generator updates of one generator step, as one callable.

    ``data.next()`` gives ``(x, y)`` or a Batch; ``noise(n)`` gives (n, z_dim) latents; the
    ``collector`` takes the updates' statistics; ``ema_cfg`` is the ``ema`` node when the pair
    has an EMA. What changes between steps (batch, transform) comes in each call's StepPlan.
    """

    def __init__(self, *, data: Any, noise: Callable[[int], torch.Tensor], nonfinite: NonFinitePolicy,
                 collector: Any, autocast: Autocast, channels_last: bool = False,
                 ema_cfg: Any = None) -> None:
        self.data = data
        self.noise = noise
        self.nonfinite = nonfinite
        self.collector = collector
        self.autocast = autocast
        self.channels_last = channels_last
        self.ema_cfg = ema_cfg

    def next_batch(self, prepare: Callable[[Batch], Batch] | None) -> Batch:
        batch = Batch.of(self.data.next())
        if prepare is not None:
            batch = prepare(batch)
        if self.channels_last and batch.x.dim() == 4:
            batch = Batch(batch.x.contiguous(memory_format=torch.channels_last), batch.y)
        return batch

    def __call__(self, pair: Pair, step: int, plan: StepPlan) -> None:
        """Train ``pair`` for generator step ``step`` (0-based: the step being made)."""
        loss, G, D = pair.loss, pair.G, pair.D
        conditioned = takes_condition(G)
        d_regs = [r for r in pair.regularizers if r.net == "D"]
        g_regs = [r for r in pair.regularizers if r.net == "G"]

        # Discriminator: n_critic updates, each on a fresh real batch. The last one's fake batch
        # keeps its graph and serves the generator's update (one G forward fewer).
        for i in range(loss.n_critic):
            batch = self.next_batch(plan.prepare)
            real, y = batch.x, (batch.y if conditioned else None)
            z = self.noise(plan.batch_per_device)
            with torch.set_grad_enabled(i == loss.n_critic - 1), self.autocast():
                fake = pair.G_fwd(z, y)
            with self.autocast():
                loss_d, stats = loss.d_loss(pair.D_fwd, real, fake.detach(), y)
                loss_d, stats = self._add_terms(d_regs, loss_d, stats, pair, real, y, fake.detach(), z)
            pair.opt_d.zero_grad(set_to_none=True)
            pair.scaler_d.scale(loss_d).backward()
            if not self.nonfinite.allow("d", loss_d, D.parameters(), pair.scaler_d):
                continue  # no optimizer step, no loss-state update, no stats
            pair.scaler_d.step(pair.opt_d)
            pair.scaler_d.update()
            loss.after_d_step(D, reduce_stats(stats))  # rank-averaged (BEGAN's k_t)
            self._record(stats, step)
            self._lazy(d_regs, "d", pair, real, y, fake.detach(), z, step * loss.n_critic + i,
                       step, plan.batch_per_device)

        # Generator: one update through the frozen discriminator.
        set_requires_grad(D, False)
        with self.autocast():
            if loss.g_needs_real:  # MMD-GAN compares G's samples with a real batch
                loss_g, stats = loss.g_loss(pair.D_fwd, fake, y, real=real)
            else:
                loss_g, stats = loss.g_loss(pair.D_fwd, fake, y)
            loss_g, stats = self._add_terms(g_regs, loss_g, stats, pair, real, y, fake, z)
        pair.opt_g.zero_grad(set_to_none=True)
        pair.scaler_g.scale(loss_g).backward()
        if self.nonfinite.allow("g", loss_g, G.parameters(), pair.scaler_g):
            pair.scaler_g.step(pair.opt_g)
            pair.scaler_g.update()
            self._record(stats, step)
            self._lazy(g_regs, "g", pair, real, y, None, None, step, step, plan.batch_per_device)
            if pair.ema is not None:
                c = self.ema_cfg
                pair.ema.update(G, ema_beta(c.half_life_kimg, plan.batch_size, plan.ema_nimg,
                                            c.rampup, c.start_kimg))
        set_requires_grad(D, True)

    # -- helpers ---------------------------------------------------------------------------------

    def _record(self, stats: dict[str, torch.Tensor], step: int) -> None:
        self.collector.add(stats)
        self.nonfinite.observe(stats, step + 1)

    @staticmethod
    def _add_terms(regs, total, stats, pair: Pair, real, y, fake, z):
        """Regularisers with interval 1: their terms join the network's own loss."""
        for reg in regs:
            if reg.interval != 1:
                continue
            term, reg_stats = reg(RegContext(G=pair.G_fwd, D=pair.D_fwd, real=real, y=y,
                                             fake=fake, z=z))
            total = total + term
            stats = {**stats, **reg_stats}
        return total, stats

    def _lazy(self, regs, which: str, pair: Pair, real, y, fake, z, index: int, step: int,
              batch_per_device: int) -> None:
        """Lazy regularisers due at update ``index``: term x interval, own backward and step."""
        due = [r for r in regs if r.interval > 1 and index % r.interval == 0]
        if not due:
            return
        net, opt, scaler = ((pair.D, pair.opt_d, pair.scaler_d) if which == "d"
                            else (pair.G, pair.opt_g, pair.scaler_g))
        if which == "g":
            set_requires_grad(pair.D, False)
        with self.autocast():
            if which == "g":  # a lazy G term runs G itself on (part of) fresh latents: no fakes here
                z = self.noise(batch_per_device)
            total, stats = None, {}
            for reg in due:
                term, reg_stats = reg(RegContext(G=pair.G, D=pair.D, real=real, y=y,
                                                 fake=fake, z=z))
                term = term * reg.interval
                total = term if total is None else total + term
                stats.update(reg_stats)
        # autograd.grad, not backward(): DDP's reducer hooks the parameters' gradient
        # accumulation, which backward() would run even through the bare network
        params = [p for p in net.parameters() if p.requires_grad]
        grads = torch.autograd.grad(scaler.scale(total), params, allow_unused=True)
        opt.zero_grad(set_to_none=True)
        for p, g in zip(params, grads, strict=True):
            p.grad = g  # None where the term does not reach p: the optimizer leaves p alone
        all_reduce_grads(params)
        if self.nonfinite.allow(which, total, net.parameters(), scaler):
            scaler.step(opt)
            scaler.update()
            self._record(stats, step)
