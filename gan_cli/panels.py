"""Figures laid out with fixed margins in inches, never measured by ``fig.tight_layout()``, which
draws the whole figure once more only to measure its texts: curves.png (gan_cli/curves.py) and the
2D sample figure (gan_cli/data/toy.py) are redrawn at every sample step of a run. No torch, so that
the torch-free modules that draw figures can use it."""

from __future__ import annotations


def place_panels(fig, rows: int, cols: int, *, left: float, right: float, top: float, bottom: float,
                 gap_w: float, gap_h: float = 0.0) -> None:
    """Place the rows x cols panels of ``fig`` with fixed margins and gaps between panels, all in
    inches."""
    width_in, height_in = fig.get_size_inches()
    panel_w = (width_in - left - right - (cols - 1) * gap_w) / cols
    panel_h = (height_in - top - bottom - (rows - 1) * gap_h) / rows
    fig.subplots_adjust(left=left / width_in, right=1 - right / width_in, bottom=bottom / height_in,
                        top=1 - top / height_in, wspace=gap_w / panel_w, hspace=gap_h / panel_h)
