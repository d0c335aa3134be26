"""ProGAN's progressive schedule (gan_cli/schedules.py): phase boundaries, alpha, kimg, real images.

Every expected phase is worked out by hand in the comments from the segment lengths.
"""

from __future__ import annotations

import random

import pytest
import torch

from gan_cli.schedules import Phase, ProgressiveSchedule

# 16 px from 4 px; 1 kimg training, 0.5 kimg transition; batch 100 / 50 / 25 at 4 / 8 / 16 px.
# Segments (steps = ceil(1000 kimg / batch)):
#   train 4:   1000 / 100 = 10 steps, steps  0-9,  images    0-1000
#   fade 8:     500 / 50  = 10 steps, steps 10-19, images 1000-1500
#   train 8:   1000 / 50  = 20 steps, steps 20-39, images 1500-2500
#   fade 16:    500 / 25  = 20 steps, steps 40-59, images 2500-3000
#   train 16:  unbounded from step 60, images 3000-
BATCHES = {4: 100, 8: 50, 16: 25}
HAND = ProgressiveSchedule(16, start_resolution=4, training_kimg=1.0, transition_kimg=0.5,
                           batch_sizes=BATCHES)


@pytest.mark.parametrize(("step", "expected"), [
    (0, Phase(0, 4, 1.0, 100, False, 0.0)),
    (9, Phase(0, 4, 1.0, 100, False, 0.9)),
    (10, Phase(1, 8, 0.0, 50, True, 1.0)),  # a transition begins: reset, alpha 0
    (15, Phase(1, 8, 0.5, 50, False, 1.25)),  # 5 steps x 50 = 250 of 500 images faded
    (19, Phase(1, 8, 0.9, 50, False, 1.45)),
    (20, Phase(1, 8, 1.0, 50, True, 1.5)),  # the transition ends: reset again
    (21, Phase(1, 8, 1.0, 50, False, 1.55)),
    (40, Phase(2, 16, 0.0, 25, True, 2.5)),
    (50, Phase(2, 16, 0.5, 25, False, 2.75)),  # 10 x 25 = 250 of 500
    (60, Phase(2, 16, 1.0, 25, True, 3.0)),
    (1000, Phase(2, 16, 1.0, 25, False, 26.5)),  # 3000 + 940 x 25 = 26,500 images
])
def test_phases_by_hand(step, expected):
    phase = HAND.phase(step)
    assert (phase.index, phase.resolution, phase.batch_size, phase.reset_optimizers) == (
        expected.index, expected.resolution, expected.batch_size, expected.reset_optimizers)
    assert phase.alpha == pytest.approx(expected.alpha, abs=1e-12)
    assert phase.kimg == pytest.approx(expected.kimg, abs=1e-12)
    assert phase.fading == (expected.alpha < 1)


def test_segment_table():
    got = [(s.resolution, s.transition, s.start_step, s.start_nimg, s.steps) for s in HAND.segments]
    assert got == [(4, False, 0, 0, 10), (8, True, 10, 1000, 10), (8, False, 20, 1500, 20),
                   (16, True, 40, 2500, 20), (16, False, 60, 3000, None)]


def test_alpha_ramps_linearly_through_a_transition():
    alphas = [HAND.phase(s).alpha for s in range(10, 20)]
    assert alphas == pytest.approx([i / 10 for i in range(10)])  # 50 images of 500 per step


def test_n_critic_counts_every_discriminator_batch():
    # 2 D updates per G step: 200 images per step at 4 px -> 5 steps; the fade to 8 px shows 100 per
    # step, so 2 steps into it alpha = 200 / 500 = 0.4 and kimg = (1000 + 200) / 1000
    s = ProgressiveSchedule(16, training_kimg=1.0, transition_kimg=0.5, batch_sizes=BATCHES, n_critic=2)
    phase = s.phase(7)
    assert (phase.resolution, phase.alpha, phase.kimg) == (8, pytest.approx(0.4), pytest.approx(1.2))


def test_segment_lengths_round_up_to_whole_steps():
    # 0.25 kimg at batch 64: ceil(250 / 64) = 4 steps = 256 images
    s = ProgressiveSchedule(8, training_kimg=0.25, transition_kimg=0.25, batch_sizes=64)
    assert s.phase(3).resolution == 4 and s.phase(4).resolution == 8
    assert s.phase(4).kimg == pytest.approx(0.256)
    assert s.phase(4).alpha == 0.0 and s.phase(5).alpha == pytest.approx(64 / 250)


def test_no_transition_and_no_resets():
    s = ProgressiveSchedule(8, training_kimg=1.0, transition_kimg=0.0, batch_sizes=100)
    assert [(p.resolution, p.alpha, p.reset_optimizers) for p in map(s.phase, (9, 10, 11))] == [
        (4, 1.0, False), (8, 1.0, True), (8, 1.0, False)]
    quiet = ProgressiveSchedule(16, training_kimg=1.0, transition_kimg=0.5, batch_sizes=BATCHES,
                                reset_optimizers=False)
    assert not any(quiet.phase(step).reset_optimizers for step in range(100))


def test_phase_is_a_pure_function_of_the_step():
    steps = list(range(0, 200, 3))
    forward = [HAND.phase(s) for s in steps]
    random.Random(0).shuffle(steps)
    again = ProgressiveSchedule(16, training_kimg=1.0, transition_kimg=0.5, batch_sizes=BATCHES)
    shuffled = {s: again.phase(s) for s in steps}
    assert [shuffled[s] for s in range(0, 200, 3)] == forward


def test_paper_batch_sizes_and_single_resolution():
    s = ProgressiveSchedule(1024)
    assert s.batch_sizes == {4: 16, 8: 16, 16: 16, 32: 16, 64: 16, 128: 16, 256: 14, 512: 6, 1024: 3}
    assert s.segments[0].steps == 37500  # 600 kimg at batch 16
    only = ProgressiveSchedule(4, batch_sizes=8)
    assert only.phase(10**6) == Phase(0, 4, 1.0, 8, False, 8000.0)


def test_default_start_matches_the_models():
    assert ProgressiveSchedule(28, batch_sizes=4).resolutions == [7, 14, 28]
    assert ProgressiveSchedule(64, batch_sizes=4).resolutions == [4, 8, 16, 32, 64]


def test_schedule_errors():
    with pytest.raises(ValueError, match="no entry for side 8"):
        ProgressiveSchedule(16, batch_sizes={4: 16, 16: 16})
    with pytest.raises(ValueError, match="power of two"):
        ProgressiveSchedule(24, start_resolution=4)
    with pytest.raises(ValueError, match="positive integer"):
        ProgressiveSchedule(8, batch_sizes=0)
    with pytest.raises(ValueError, match="step"):
        HAND.phase(-1)


# ---------------------------------------------------------------- real images


def test_transform_real_by_hand():
    s = ProgressiveSchedule(8, training_kimg=1.0, transition_kimg=1.0, batch_sizes=10)
    rows, cols = torch.meshgrid(torch.arange(8.0), torch.arange(8.0), indexing="ij")
    x = (8 * rows + cols).reshape(1, 1, 8, 8).double()  # pixel (r, c) holds 8 r + c
    # at 4 px: the mean of block (i, j) is 8 (2i + 0.5) + (2j + 0.5) = 16 i + 2 j + 4.5
    i, j = torch.meshgrid(torch.arange(4.0), torch.arange(4.0), indexing="ij")
    at_4 = s.transform_real(x, s.phase(0))
    assert torch.allclose(at_4, (16 * i + 2 * j + 4.5).double()[None, None])
    # fading into 8 px with alpha 0.25: 0.75 * (block means repeated 2x2) + 0.25 * x
    phase = Phase(1, 8, 0.25, 10, False, 0.0)
    low = 16 * (rows // 2) + 2 * (cols // 2) + 4.5
    expected = 0.75 * low + 0.25 * (8 * rows + cols)
    assert torch.allclose(s.transform_real(x, phase), expected.double()[None, None])
    assert torch.equal(s.transform_real(x, Phase(1, 8, 1.0, 10, False, 0.0)), x)


def test_transform_real_checks_the_size():
    with pytest.raises(ValueError, match="8x8"):
        ProgressiveSchedule(8, batch_sizes=4).transform_real(torch.zeros(1, 1, 16, 16),
                                                             Phase(0, 4, 1.0, 4, False, 0.0))
