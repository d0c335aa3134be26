"""The 2D mixtures' spread and energy distance, as drawn and kept by the Jacobian threshold, from
the last metrics record of finished runs (``scripts/reproduce_toy.py``'s run directories, whose
runs log the ``mode_spread`` and ``energy`` metrics beside ``modes``). Usage::

    python scripts/reproduce_toy.py --seeds 3 --rows tuned --jobs 2 --runs outputs/toy_spread
    python scripts/toy_spread_table.py --runs outputs/toy_spread --row tuned
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # this checkout's gan_cli

from gan_cli.scripts import studies  # noqa: E402

JACOBIAN = "jacobian/"


def finished(run: Path) -> bool:
    """gan-train's own record of a session that ended with exit status 0."""
    path = run / "sessions.jsonl"
    return path.is_file() and any(json.loads(line).get("exit_code") == 0
                                  for line in path.read_text().splitlines() if line.strip())


def row(dataset: str, runs: list[Path], prefix: str, name: str) -> str:
    recs = [studies.last_metrics(r, f"{prefix}mode_std_ratio_min", "mode_spread metric") for r in runs]

    def col(key: str, digits: int = 2) -> str:
        return studies.spread([r[f"{prefix}{key}"] for r in recs], digits=digits)

    return (f"| {dataset} | {name} | {len(recs)} | {col('high_quality_fraction', 3)} | "
            f"{col('mode_std_ratio_min')} | {col('mode_std_ratio_mean')} | {col('mode_std_ratio_max')} | "
            f"{col('energy_distance', 4)} | {col('energy_distance_floor', 4)} |")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=Path, required=True, help="reproduce_toy.py's --runs directory")
    p.add_argument("--row", default="tuned")
    args = p.parse_args(argv)
    print("| dataset | samples | runs | high quality (fraction) | mode std ratio, min | mean | max | "
          "energy distance | its real-vs-real floor |")
    print("|---|---|---|---|---|---|---|---|---|")
    for ds_dir in sorted(d for d in args.runs.iterdir() if (d / args.row).is_dir()):  # grid25, ring8
        runs = sorted(r for r in (ds_dir / args.row).glob("seed*") if finished(r))
        if not runs:
            continue
        print(row(ds_dir.name, runs, "", "as drawn"))
        print(row(ds_dir.name, runs, JACOBIAN, "kept by the Jacobian threshold"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
