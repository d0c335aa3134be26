"""The energy distance between generated and real samples (gan_cli/metrics/two_sample.py), with its
floor: the same statistic between independent real samples of the same size, what a generator that
draws from the data itself would score. The default for the 2D sets.

``num_fake`` (2,500) generated samples against the first ``num_fake`` real ones; the floor is the
mean over up to three further disjoint real samples of ``num_fake`` against that first one (the
real stream must hold at least 2 x num_fake points: ``num_real``). The real points are the same at
every evaluation of a run, so the floor and the reference's self-distance are computed once per
process and real sample (keyed by its content), and an evaluation costs two distance matrices, not
twelve."""

from __future__ import annotations

import hashlib

import torch

from gan_cli.errors import ConfigError
from gan_cli.metrics.context import EvalContext, Key, Metric
from gan_cli.metrics.two_sample import EnergyReference

FLOOR_SAMPLES = 3  # real-vs-real pairs behind the floor
_FLOORS: dict[tuple[str, int], tuple[EnergyReference, list[float]]] = {}  # (digest, n): reference, floors
_FLOORS_KEPT = 4  # real samples whose floor this process keeps


def _real_points(ctx: EvalContext, n: int) -> torch.Tensor:
    """Up to (1 + FLOOR_SAMPLES) * n real points from the real stream, flattened."""
    parts, have = [], 0
    for batch in ctx.real.batches():
        parts.append(batch.detach().to("cpu", torch.float64).reshape(len(batch), -1))
        have += len(batch)
        if have >= (1 + FLOOR_SAMPLES) * n:
            break
    return torch.cat(parts)[: (1 + FLOOR_SAMPLES) * n] if parts else torch.empty(0, 1)


def _reference_and_floors(real: torch.Tensor, n: int) -> tuple[EnergyReference, list[float]]:
    """The first ``n`` real points as the reference, and the energy distance of each further
    disjoint sample of ``n`` against it; cached by the points' content."""
    key = (hashlib.sha256(real.contiguous().numpy().tobytes()).hexdigest(), n)
    if key not in _FLOORS:
        reference = EnergyReference(real[:n])
        floors = [reference.distance(real[i:i + n]) for i in range(n, len(real) - n + 1, n)]
        while len(_FLOORS) >= _FLOORS_KEPT:
            del _FLOORS[next(iter(_FLOORS))]
        _FLOORS[key] = (reference, floors)
    return _FLOORS[key]


def energy(ctx: EvalContext, opts: dict) -> dict[str, float]:
    n = int(opts["num_fake"])
    real = _real_points(ctx, n)
    if len(real) < 2 * n:
        raise ConfigError(f"the 'energy' metric needs at least 2 x num_fake = {2 * n} real samples "
                          f"for its floor, the real data gave {len(real)}: raise num_real")
    fake = ctx.fake(n)
    reference, floors = _reference_and_floors(real, n)
    floor = sum(floors) / len(floors)
    ctx.record("energy", real=f"{ctx.real.name}/{ctx.real.split}", num_fake=n, num_real=n,
               floor=floor, floor_pairs=list(floors),
               formula="2 E|X-Y| - E|X-X'| - E|Y-Y'| (V-statistic; Szekely & Rizzo 2013)")
    return {"energy_distance": reference.distance(fake), "energy_distance_floor": floor}


DEFINES = (
    Metric("energy", energy, (Key("energy_distance", lower_is_better=True, shown=True),
                              Key("energy_distance_floor")),
           needs_real=True, defaults={"num_fake": 2500},  # as many as the modes metric's protocol
           real_needed=lambda opts: 2 * int(opts["num_fake"])),  # the reference and one floor sample
)
