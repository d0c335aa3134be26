"""scripts/stacked_mnist_labels.py: a second labeller (k nearest real digits) beside the MNIST CNN,
to tell G's skew from the classifier's."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

from tests.conftest import run_cli

REPO = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("stacked_mnist_labels",
                                              REPO / "scripts" / "stacked_mnist_labels.py")
labels_script = importlib.util.module_from_spec(spec)
spec.loader.exec_module(labels_script)


def _report(capsys) -> dict:
    lines = capsys.readouterr().out.splitlines()
    return {k: json.loads(v) for k, v in (line.split(": ", 1) for line in lines)}


def test_knn_labels_take_the_majority_of_the_nearest_and_break_ties_low():
    # 1D "images": reference points 0, 1, 2 labelled 3, 3, 7 and 10, 11 labelled 7, 1
    ref = torch.tensor([[0.0], [1.0], [2.0], [10.0], [11.0]])
    ref_labels = torch.tensor([3, 3, 7, 7, 1])
    x = torch.tensor([[0.4], [1.9], [10.6]])
    # k=3: 0.4 -> {0, 1, 2} = 3, 3, 7 -> 3; 1.9 -> {2, 1, 0} -> 3; 10.6 -> {11, 10, 2} = 1, 7, 7 -> 7
    assert labels_script.knn_labels(x, ref, ref_labels, 3).tolist() == [3, 3, 7]
    # k=2: 10.6 -> {11, 10} = 1 and 7, a tie: the smaller digit, 1
    assert labels_script.knn_labels(x, ref, ref_labels, 2).tolist() == [3, 3, 1]


def test_summary_by_hand():
    cnn = torch.tensor([9, 9, 4, 1])
    knn = torch.tensor([9, 4, 4, 1])
    conf = torch.tensor([0.5, 1.0, 0.95, 0.75])
    s = labels_script.summary(cnn, conf, knn)
    assert s["cnn"]["counts"] == [0, 1, 0, 0, 1, 0, 0, 0, 0, 2]
    # KL(q || u) with q = (1/4, 1/4, 1/2) on three digits of ten: 2 (1/4) log(2.5) + (1/2) log(5)
    assert s["cnn"]["kl"] == pytest.approx(0.5 * torch.log(torch.tensor(2.5)).item()
                                           + 0.5 * torch.log(torch.tensor(5.0)).item(), abs=1e-4)
    assert s["knn"]["counts"] == [0, 1, 0, 0, 2, 0, 0, 0, 0, 1]
    assert s["agreement"] == 0.75 and s["cnn_mean_confidence"] == 0.8
    assert s["cnn_confidence_below_0.9"] == 0.5 and s["images"] == 4


def test_real_held_out_digits_are_the_control(capsys):
    assert labels_script.main(["--real", "--threads", "1"]) == 0
    r = _report(capsys)
    info = json.loads((REPO / "gan_cli" / "metrics" / "weights" / "mnist_cnn.json").read_text())
    assert r["images"] == 1000 and r["cnn_accuracy"] == info["test_accuracy"]  # the same 1,000 digits
    assert sum(r["knn"]["counts"]) == 1000 and r["knn_accuracy"] > 0.85
    assert r["agreement"] > 0.85 and r["cnn"]["kl"] < 0.01


@pytest.mark.slow
def test_a_checkpoints_channels_are_labelled_both_ways(tmp_path: Path, capsys):
    run_dir = tmp_path / "run"
    proc = run_cli(["tiny=images", "dataset=stacked_mnist", "dataset.num_samples=256", "train.steps=1"],
                   run_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    capsys.readouterr()
    assert labels_script.main(["--ckpt", str(run_dir / "checkpoints" / "last.pt"), "--num", "70",
                               "--threads", "1"]) == 0
    r = _report(capsys)
    assert r["images"] == 210  # three channels of each of 70 samples
    assert sum(r["cnn"]["counts"]) == sum(r["knn"]["counts"]) == 210
    assert 0 <= r["agreement"] <= 1 and "cnn_accuracy" not in r
