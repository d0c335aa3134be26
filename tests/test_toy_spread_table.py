"""scripts/toy_spread_table.py: the RESULTS table's rows from finished runs' last metrics records."""

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _run(path: Path, drawn: dict, kept: dict, exit_code: int = 0) -> None:
    path.mkdir(parents=True)
    (path / "sessions.jsonl").write_text(json.dumps({"exit_code": exit_code}) + "\n")
    record = {"step": 10, **drawn, **{f"jacobian/{k}": v for k, v in kept.items()}}
    (path / "metrics.jsonl").write_text(json.dumps({"step": 5}) + "\n" + json.dumps(record) + "\n")


def test_rows_from_finished_runs_only(tmp_path):
    keys = ("high_quality_fraction", "mode_std_ratio_min", "mode_std_ratio_mean", "mode_std_ratio_max",
            "energy_distance", "energy_distance_floor")
    for seed, base in ((0, 0.5), (1, 0.7)):
        _run(tmp_path / "ring8" / "tuned" / f"seed{seed}", dict.fromkeys(keys, base),
             dict.fromkeys(keys, base / 10))
    _run(tmp_path / "ring8" / "tuned" / "seed2", dict.fromkeys(keys, 100.0), {}, exit_code=3)  # unfinished
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "toy_spread_table.py"), "--runs",
                           str(tmp_path)], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| ring8")]
    # mean ± sample std of 0.5 and 0.7: 0.60 ± 0.14; kept: 0.06 ± 0.01 (the third run never finished)
    assert rows[0] == ("| ring8 | as drawn | 2 | 0.600 ± 0.141 | 0.60 ± 0.14 | 0.60 ± 0.14 | 0.60 ± 0.14 | "
                       "0.6000 ± 0.1414 | 0.6000 ± 0.1414 |")
    assert rows[1].startswith("| ring8 | kept by the Jacobian threshold | 2 | 0.060 ± 0.014 | 0.06 ± 0.01 |")
