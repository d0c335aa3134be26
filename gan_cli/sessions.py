"""``sessions.jsonl``: one line per gan-train session of a run, for gan-report's wall and CPU time.

A run may take several sessions (stopped, then resumed in its directory). Each session that ends
through the loop's own ``finally`` (finished, stopped by a signal, diverged, failed while
training) appends one JSON object to ``RUN_DIR/sessions.jsonl``::

    {"started": "2026-12-07T08:20:52+00:00", "ended": "...", "wall_s": 4.6, "cpu_s": 3.9,
     "first_step": 0, "last_step": 12, "exit_code": 0}

``wall_s`` and ``cpu_s`` are measured from the start of the loop's reporting (after the data and
the networks are built) to its end, in the process that writes ``metrics.jsonl`` (rank 0 under
DDP: the other ranks' CPU time is not counted). A session killed outright (SIGKILL, a power cut)
leaves no line; gan-report then says so. Written by rank 0 only, never read by training.
"""

from __future__ import annotations

import datetime
import json
import time
from pathlib import Path

SESSIONS_NAME = "sessions.jsonl"


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


class SessionClock:
    """Wall and CPU time of one session, appended to ``sessions.jsonl`` by :meth:`close`.

    Args:
        run_dir: the run directory.
        first_step: the step the session starts from (0, or the resumed checkpoint's).
    """

    def __init__(self, run_dir: Path, first_step: int) -> None:
        self.path = Path(run_dir) / SESSIONS_NAME
        self.first_step = first_step
        self.last_step = first_step
        self.started = _now()
        self._wall0, self._cpu0 = time.perf_counter(), time.process_time()

    def close(self, exit_code: int) -> None:
        """Append this session's line; a file that cannot be written is skipped (the times are
        a report's convenience, never a reason to fail a run)."""
        record = {"started": self.started, "ended": _now(),
                  "wall_s": round(time.perf_counter() - self._wall0, 3),
                  "cpu_s": round(time.process_time() - self._cpu0, 3),
                  "first_step": self.first_step, "last_step": self.last_step,
                  "exit_code": exit_code}
        try:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")
        except OSError:
            pass
