"""report.html and training.html as a person sees them: headless Chromium (Debian's `chromium`,
installed by `make browser`, which `make install` and CI run) opens each page from disk, the test
takes a screenshot, finds no console error, counts the rows, clicks a column to sort and drags the
slider. Skipped, with the reason, where Chromium is absent."""

from __future__ import annotations

import struct
import time
from pathlib import Path

import pytest

from gan_cli.report.command import main
from gan_cli.report.pages import write_training_page
from tests.browser import CHROMIUM, Browser
from tests.test_report import make_run, three_runs

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium (Debian's chromium "
                                                         "package: make browser)")


def png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", head[16:24])


def column_of(browser: Browser, title: str) -> int:
    titles = browser.evaluate("Array.from(document.querySelectorAll('#runs thead th'), t => t.textContent)")
    return titles.index(title)


def cells(browser: Browser, column: int) -> list[str]:
    return browser.evaluate(f"Array.from(document.querySelectorAll('#runs tbody tr'), "
                            f"r => r.cells[{column}].textContent)")


@pytest.mark.slow
def test_report_page_rows_sorting_and_pictures(tmp_path: Path, capsys):
    three_runs(tmp_path / "sweep")
    assert main([str(tmp_path / "sweep")]) == 0
    capsys.readouterr()
    with Browser() as browser:
        browser.open(tmp_path / "sweep" / "report.html")
        shot = browser.screenshot(tmp_path / "report.png")
        assert browser.errors == []
        assert browser.evaluate("document.querySelectorAll('#runs tbody tr').length") == 3
        # every embedded figure decoded: 5 curves and 2 runs' samples (the third has none)
        sizes = browser.evaluate("Array.from(document.images, i => i.naturalWidth)")
        assert len(sizes) == 7 and min(sizes) > 0
        col = column_of(browser, "reverse_kl best ↓ (step)")
        run = column_of(browser, "run")
        assert cells(browser, col) == ["0.2 @ 200", "0.1 @ 200", "1.5 @ 100"]  # the runs' order
        browser.click(*browser.center_of(f"#runs thead th:nth-child({col + 1})"))
        assert cells(browser, col) == ["0.1 @ 200", "0.2 @ 200", "1.5 @ 100"]  # by the value
        assert cells(browser, run)[0] == "loss=lsgan optimizer.lr_d=0.0002"
        browser.click(*browser.center_of(f"#runs thead th:nth-child({col + 1})"))  # reversed
        assert cells(browser, col) == ["1.5 @ 100", "0.2 @ 200", "0.1 @ 200"]
        modes = column_of(browser, "modes_captured best ↑ (step)")  # higher is better: first
        browser.click(*browser.center_of(f"#runs thead th:nth-child({modes + 1})"))
        assert cells(browser, modes) == ["8 @ 200", "6 @ 100", "3 @ 100"]
        # by the seconds under the text (as text "1m30s" < "1s"); the empty cell last
        wall = column_of(browser, "wall")
        browser.click(*browser.center_of(f"#runs thead th:nth-child({wall + 1})"))
        assert cells(browser, wall) == ["1s", "1m30s", ""]
        assert browser.errors == []
    width, height = png_size(shot)
    assert width <= 1400 < height  # the whole page, below the fold too; no wider than the window


@pytest.mark.slow
def test_training_page_plays_and_its_slider_moves_the_frame_and_the_marker(tmp_path: Path):
    records = [{"step": s, "loss_d": 1.0 / s, "loss_g": s / 100.0, "modes_captured": s // 50}
               for s in (50, 100, 150, 200, 250, 300)]
    run = make_run(tmp_path / "run", [], records=records, samples=(100, 200, 300))
    write_training_page(run)
    with Browser() as browser:
        browser.open(run / "training.html")
        shot = browser.screenshot(tmp_path / "training.png")
        assert browser.errors == []
        step = "document.getElementById('step').textContent"
        frame = "document.getElementById('frame').getAttribute('src')"
        markers = "Array.from(document.querySelectorAll('line.marker'), m => m.getAttribute('data-step'))"
        assert browser.evaluate(step) == "step 300 (frame 3 of 3)"  # it opens at the last frame
        assert browser.evaluate("document.getElementById('frame').naturalWidth") > 0
        assert browser.evaluate(markers) == ["300", "300"]  # losses, modes_captured
        # drag the slider's thumb from its right end to its left end
        left, top, width, height = browser.evaluate(
            "(() => { const r = document.getElementById('slider').getBoundingClientRect();"
            " return [r.left, r.top, r.width, r.height]; })()")
        y = top + height / 2
        browser.drag((left + width - 4, y), (left + 2, y))
        assert browser.evaluate(step) == "step 100 (frame 1 of 3)"
        assert browser.evaluate(frame) == "samples/step_00000100.png"
        assert browser.evaluate(markers) == ["100", "100"]
        values = browser.evaluate("document.getElementById('values').textContent")
        assert "loss_d=0.0100 (step 100)" in values and "modes_captured=2.00 (step 100)" in values
        # a marker sits at its step's place on the axis: step 100 of 0..300, the axis from x=50
        # to x=320 of the 330-pixel chart
        x1 = browser.evaluate("parseFloat(document.querySelector('line.marker').getAttribute('x1'))")
        assert x1 == pytest.approx(50 + (330 - 50 - 10) * 100 / 300, abs=0.01)
        browser.click(*browser.center_of("#play"))  # play: the frames advance by themselves
        deadline = time.monotonic() + 10
        while browser.evaluate(step).startswith("step 100") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert browser.evaluate(step) != "step 100 (frame 1 of 3)"
        assert browser.evaluate("document.getElementById('play').textContent") == "Pause"
        browser.click(*browser.center_of("#play"))
        assert browser.evaluate("document.getElementById('play').textContent") == "Play"
        assert browser.errors == []
    assert png_size(shot)[0] == 1400
