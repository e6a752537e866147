"""The trend chart draws names in any script: the title band of a chart for "Zahlungsverkehr"
or "決済" has ink where the text is, and (with a CJK font) real glyphs, not boxes."""
from __future__ import annotations

import io

import numpy as np
import pytest
from matplotlib.image import imread

from charts.fonts import has_cjk
from charts.trend import TITLE_BAND, TrendBar, trend_chart

POINTS = [TrendBar("Okt 26", 4, 3.5, 42.0), TrendBar("Nov 26", 9, None, 65.0),
          TrendBar("12月", 2, 1.0, None)]


def title_ink(png: bytes) -> np.ndarray:
    """Where the title band is not white: the pixels the text covers."""
    pixels = imread(io.BytesIO(png))[:TITLE_BAND, :, :3]
    return (pixels < 0.6).any(axis=2)


@pytest.mark.parametrize("team", ["Zahlungsverkehr", "決済"])
def test_a_non_latin_team_name_is_drawn(team):
    png = trend_chart(POINTS, title=team)
    assert png.startswith(b"\x89PNG")
    ink = title_ink(png)
    assert ink.sum() > 40, f"title band of {team!r} is blank"
    assert ink[:, :24].sum() > 0  # the text starts at the left margin


def test_cjk_glyphs_are_real_characters_not_boxes():
    if not has_cjk():
        pytest.skip("NO CJK FONT: apt-get install fonts-noto-cjk (.ci/run does)")
    # Missing glyphs are drawn as identical boxes, whatever the characters: two different
    # names then give the same pixels.
    assert not np.array_equal(title_ink(trend_chart(POINTS, title="決済")),
                              title_ink(trend_chart(POINTS, title="済決")))
    assert not np.array_equal(title_ink(trend_chart(POINTS, title="決済")),
                              title_ink(trend_chart(POINTS, title="□□")))


def test_the_same_figures_give_the_same_bytes_and_an_empty_trend_draws():
    assert trend_chart(POINTS, title="Checkout") == trend_chart(POINTS, title="Checkout")
    assert trend_chart([], title="Nothing yet").startswith(b"\x89PNG")
