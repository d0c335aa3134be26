"""scripts/compare_runs.py compare: records of synthetic checkpoints and metrics, in seconds."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import torch

from tests.conftest import REPO

sys.path.insert(0, str(REPO / "scripts"))
import compare_runs  # noqa: E402


def write_record(root: Path, name: str = "default") -> Path:
    """A record of one configuration: overrides.txt, metrics.jsonl, last.pt as ``record`` keeps them."""
    d = root / name
    d.mkdir(parents=True)
    (d / "overrides.txt").write_text("logger=none\ntrain.steps=6\n")
    records = [{"step": 3, "loss_d": 1.25, "imgs_per_s": 930.5},
               {"step": 6, "loss_d": 1.125, "imgs_per_s": 1535.2, "reverse_kl": float("nan")}]
    (d / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    g = torch.Generator().manual_seed(0)
    ckpt = {"step": 6, "G": {"net.0.weight": torch.randn(4, 3, generator=g), "net.0.bias": torch.zeros(4)},
            "opt_g": {"param_groups": [{"lr": 2e-4, "betas": (0.5, 0.999), "params": [0]}]},
            "rng": {"torch": torch.randint(0, 255, (16,), dtype=torch.uint8, generator=g)},
            "config": {"model": {"_target_": "gan_cli.models.dcgan.DCGAN", "z_dim": 100}}}
    torch.save(ckpt, d / "last.pt")
    return d


def edit_checkpoint(d: Path, edit) -> None:
    ckpt = torch.load(d / "last.pt", weights_only=True)
    edit(ckpt)
    torch.save(ckpt, d / "last.pt")


def test_compare_says_identical_and_names_a_changed_tensor_element(tmp_path, capsys):
    a = write_record(tmp_path / "a")
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    b = tmp_path / "b" / "default"
    # the wall clock differs between any two runs; a moved class is reported, not counted
    (b / "metrics.jsonl").write_text((a / "metrics.jsonl").read_text().replace("930.5", "12.0"))
    edit_checkpoint(b, lambda c: c["config"]["model"].update(_target_="gan_cli.models.DCGAN"))
    assert compare_runs.main(["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--only", "default"]) == 0
    out = capsys.readouterr().out
    assert "default: identical" in out
    assert "allowed difference (reported only): config.model._target_" in out

    def bump(c):
        c["G"]["net.0.weight"][2, 1] += 1e-6  # one element, below any tolerance of allclose

    edit_checkpoint(b, bump)
    assert compare_runs.main(["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--only", "default"]) == 1
    assert "default: 1 difference: last.pt:G.net.0.weight (values)" in capsys.readouterr().out


def test_compare_fails_on_a_changed_value_a_metric_record_or_a_missing_record(tmp_path, capsys):
    write_record(tmp_path / "a")
    b = write_record(tmp_path / "b")
    edit_checkpoint(b, lambda c: c["opt_g"]["param_groups"][0].update(lr=1e-4))
    (b / "metrics.jsonl").write_text((b / "metrics.jsonl").read_text().replace("1.125", "1.0"))
    assert compare_runs.main(["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--only", "default"]) == 1
    out = capsys.readouterr().out
    assert "default: 2 differences" in out
    assert "metrics.jsonl:2.loss_d (1.125 vs 1.0)" in out and "last.pt:opt_g.param_groups.0.lr" in out
    assert compare_runs.main(["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--only", "singan"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("singan: 1 difference:") and "missing overrides.txt, metrics.jsonl, last.pt" in out


def test_a_state_dict_in_another_order_differs(tmp_path, capsys):
    write_record(tmp_path / "a")
    b = write_record(tmp_path / "b")
    edit_checkpoint(b, lambda c: c.update(G=dict(reversed(c["G"].items()))))
    assert compare_runs.main(["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--only", "default"]) == 1
    assert "default: 1 difference: last.pt:G (key order:" in capsys.readouterr().out
