"""Adding a part is one new file plus a config file: a loss from outside the package, through
Hydra's search path, and a metric by one file in gan_cli/metrics/defs/."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from gan_cli.checkpoint import load_checkpoint
from tests.conftest import SMALL, read_metrics, run_cli


@pytest.mark.slow
def test_a_new_loss_is_one_python_file_and_one_option_file(tmp_path: Path, monkeypatch):
    (tmp_path / "my_losses.py").write_text(
        "from gan_cli.losses import Hinge\n\n"
        "class DoubleHinge(Hinge):\n"
        "    '''The hinge loss with D's loss doubled.'''\n\n"
        "    def __init__(self, scale: float = 2.0, n_critic: int = 1):\n"
        "        super().__init__(n_critic=n_critic)\n"
        "        self.scale = scale\n\n"
        "    def d_loss(self, D, real, fake, y=None):\n"
        "        loss, stats = super().d_loss(D, real, fake, y)\n"
        "        return self.scale * loss, {**stats, 'scaled': (self.scale * loss).detach()}\n")
    conf = tmp_path / "conf" / "loss"
    conf.mkdir(parents=True)
    (conf / "double_hinge.yaml").write_text("_target_: my_losses.DoubleHinge\nscale: 3.0\nn_critic: 1\n")
    run_dir = tmp_path / "run"
    monkeypatch.syspath_prepend(str(tmp_path))  # what PYTHONPATH does for a new interpreter
    try:  # the command runs in this process (tests/inprocess.py)
        proc = run_cli([*SMALL, f"hydra.searchpath=[file://{tmp_path / 'conf'}]", "loss=double_hinge"],
                       run_dir)
    finally:
        sys.modules.pop("my_losses", None)
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = read_metrics(run_dir)[-1]
    # the option file's scale reached the new class: its own statistic is 3 x the hinge loss
    assert record["scaled"] == __import__("pytest").approx(3.0 * record["loss_d"], rel=1e-5)
    assert load_checkpoint(run_dir / "checkpoints" / "last.pt")["config"]["loss"]["scale"] == 3.0


def test_a_new_metric_is_one_file_in_metrics_defs():
    """Every table is derived from the records: the registry, directions, console keys."""
    from gan_cli.metrics import defs
    from gan_cli.metrics.registry import METRICS, lower_is_better, metric_of, shown_keys

    files = sorted(p.stem for p in Path(defs.__file__).parent.glob("*.py") if p.stem != "__init__")
    defined = {m.name for m in METRICS.values()}
    assert defined >= {"fid", "is", "kid", "pr", "fd_fashion", "cis_fashion", "modes", "nn"}
    assert len(files) >= 4
    for metric in METRICS.values():
        for key in metric.keys:
            assert metric_of(key.name) is metric
            assert lower_is_better(key.name) is key.lower_is_better
    assert set(shown_keys()) == {k.name for m in METRICS.values() for k in m.keys if k.shown}
