"""curves.png (gan_cli/curves.py): which keys go in which panel, what is drawn, reading the file."""

from __future__ import annotations

import math
from pathlib import Path

from gan_cli.curves import curve_data, curve_panels, main, plot_curves, read_records

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
    assert data["fd_fashion"] == ([6.4], [40.0])
    xs, ys = data["loss_d"]
    assert xs == [3.2, 6.4, 9.6] and ys[:2] == [1.0, 0.8] and math.isnan(ys[2])  # a gap, not a drop


def test_plot_curves_draws_every_panel(tmp_path: Path):
    drawn = plot_curves(RECORDS, tmp_path / "curves.png")
    assert list(drawn) == list(curve_panels(RECORDS))
    assert drawn["losses"]["loss_g"] == ([3.2, 6.4, 9.6], [2.0, 2.5, 2.2])
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
