"""curves.png (gan_cli/curves.py): which keys go in which panel, what is drawn, reading the file."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from gan_cli.curves import curve_data, curve_panels, log_scale, main, plot_curves, read_records, smoothed

RECORDS = [
    {"step": 50, "kimg": 3.2, "loss_d": 1.0, "loss_g": 2.0, "d_real": 0.7, "d_fake": -0.7, "gp": 0.1,
     "imgs_per_s": 500.0, "lr_g": 2e-4, "lr_d": 2e-4},
    {"step": 100, "kimg": 6.4, "loss_d": 0.8, "loss_g": 2.5, "d_real": 0.8, "d_fake": -0.6, "gp": 0.2,
     "imgs_per_s": 510.0, "lr_g": 1e-4, "lr_d": 1e-4, "fd_fashion": 40.0, "cis_fashion_mean": 3.0,
     "cis_fashion_std": 0.1, "best/fd_fashion": 40.0, "best/fd_fashion_step": 100},
    {"step": 150, "kimg": 9.6, "loss_d": float("nan"), "loss_g": 2.2, "d_real": 0.9, "d_fake": -0.5,
     "gp": 0.3, "imgs_per_s": 490.0, "lr_g": 0.0, "lr_d": 0.0},
]


def test_keys_are_grouped_into_panels():
    assert curve_panels(RECORDS) == {
        "losses": ["loss_d", "loss_g"],
        "d_*": ["d_real", "d_fake"],  # the loss's own statistics; one prefix, one panel
        "gp": ["gp"],
        "learning rates": ["lr_g", "lr_d"],
        "fd_fashion": ["fd_fashion"],  # metric scores come from the metric registry
        "cis_fashion_mean": ["cis_fashion_mean"],  # (not its std)
        "images/s": ["imgs_per_s"],
    }  # step, kimg and best/... are not curves


def test_curve_data_holds_the_records_that_have_the_key():
    data = curve_data(RECORDS, ["fd_fashion", "loss_d"])
    assert data["fd_fashion"] == ([100.0], [40.0])  # x in steps (kimg on the second axis)
    xs, ys = data["loss_d"]
    assert xs == [50.0, 100.0, 150.0] and ys[:2] == [1.0, 0.8] and math.isnan(ys[2])  # a gap, not a drop


@pytest.mark.slow
def test_plot_curves_draws_every_panel(tmp_path: Path):
    drawn = plot_curves(RECORDS, tmp_path / "curves.png")
    assert list(drawn) == list(curve_panels(RECORDS))
    assert drawn["losses"]["loss_g"] == ([50.0, 100.0, 150.0], [2.0, 2.5, 2.2])
    assert (tmp_path / "curves.png").stat().st_size > 0
    assert not list(tmp_path.glob(".*"))  # the temporary file was renamed


def test_read_records_takes_json_objects_only(tmp_path: Path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1, "kimg": 0.1, "loss_d": 1.0}\n[1, 2]\n'
                    '{"step": 2, "kimg": 0.2, "loss_d": NaN}\n{"step": 3, "kim')  # a half-written line
    records = read_records(path)
    assert [r["step"] for r in records] == [1, 2]
    assert read_records(tmp_path / "missing.jsonl") == []
    assert main([str(tmp_path)]) == 0 and (tmp_path / "curves.png").is_file()
    assert main([str(tmp_path / "empty")]) == 1


def test_a_constant_series_gets_no_panel():
    records = [{"step": s, "kimg": s / 10, "loss_d": 1.0 + s, "loss_g": 2.0, "num_modes": 8,
                "k_t": 0.0} for s in (1, 2, 3)]
    assert curve_panels(records) == {"losses": ["loss_d"]}  # loss_g, num_modes, k_t constant
    assert "k_t" in curve_panels(records[:1])  # one record: nothing to call constant


def test_smoothing_is_tensorboards_debiased_average_worked_by_hand():
    # weight 0.5: 1 -> 1; (0.25 + 0.5 * 3) / 0.75 = 2.333; nan kept; (0.875 + 0.5 * 5) / 0.875 = 3.857
    out = smoothed([1.0, 3.0, float("nan"), 5.0], weight=0.5)
    assert out[0] == pytest.approx(1.0) and out[1] == pytest.approx(7 / 3)
    assert math.isnan(out[2]) and out[3] == pytest.approx((0.875 + 2.5) / 0.875)
    assert smoothed([2.0, 4.0], weight=0.0) == [2.0, 4.0]


def test_log_axis_only_where_positive_values_span_decades():
    assert log_scale([1e-3, 1.0, 10.0])
    assert not log_scale([1.0, 50.0])  # less than two decades
    assert not log_scale([-1.0, 1000.0])  # a sign change
    assert log_scale([float("nan"), 1.0, 1e4])


def test_curves_png_has_steps_below_kimg_above_and_labelled_y_axes(tmp_path: Path, monkeypatch):
    import matplotlib.figure

    saved = []
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", lambda fig, path, **kw: (
        saved.append(fig), Path(path).write_bytes(b"png")))
    records = [{"step": s, "kimg": s * 0.32, "loss_d": 1.0 / s, "loss_g": 1.0, "gp": 10.0 ** -s}
               for s in range(1, 13)]  # n_critic 5 and batch 64: 0.32 kimg per step
    plot_curves(records, tmp_path / "curves.png")
    axes = [ax for ax in saved[0].axes if ax.get_title()]
    titles = {ax.get_title(): ax for ax in axes}
    assert set(titles) == {"losses", "gp"}
    assert titles["losses"].get_ylabel() == "loss" and titles["gp"].get_ylabel() == "gp"
    assert titles["gp"].get_yscale() == "log" and titles["losses"].get_yscale() == "linear"
    for ax in axes:
        assert ax.get_xlabel() == "step"
        (top,) = [c for c in ax.child_axes if c.get_xlabel() == "kimg"]
        saved[0].draw_without_rendering()  # the figure is closed: its canvas no longer draws
        assert top.get_xlim() == pytest.approx([0.32 * x for x in ax.get_xlim()])  # kimg = 0.32 step
        raw, smooth = ax.lines[:2]
        assert raw.get_alpha() < 1 and smooth.get_alpha() is None  # raw faint, smoothed over it
        assert list(smooth.get_ydata()) == pytest.approx(smoothed(list(raw.get_ydata())))
