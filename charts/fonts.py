"""Fonts for charts: DejaVu Sans (shipped with matplotlib) for Latin, Greek and Cyrillic, then a
CJK font when the system has one (Debian: fonts-noto-cjk), so "決済" is drawn, not boxes.
Without a CJK font charts still render; such names come out as empty boxes, and the log says
which package is missing, once."""
from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path

from matplotlib import font_manager

log = logging.getLogger("firebell.charts")
CJK_FAMILIES = ("Noto Sans CJK JP", "Noto Sans CJK SC", "Noto Sans CJK TC", "Noto Sans CJK KR",
                "Noto Sans CJK", "Droid Sans Fallback", "WenQuanYi Zen Hei")
SYSTEM_FONT_DIRS = (Path("/usr/share/fonts"), Path("/usr/local/share/fonts"))


@lru_cache(maxsize=1)
def families() -> tuple[str, ...]:
    """The font families charts ask for, in fallback order."""
    _register_system_cjk_fonts()
    known = {f.name for f in font_manager.fontManager.ttflist}
    cjk = [name for name in CJK_FAMILIES if name in known][:1]
    if not cjk:
        log.warning("no CJK font found (Debian: apt-get install fonts-noto-cjk): chart labels "
                    "in Chinese, Japanese or Korean show as boxes")
    return ("DejaVu Sans", *cjk)


def has_cjk() -> bool:
    return len(families()) > 1


def _register_system_cjk_fonts() -> None:
    """matplotlib caches its font list on first use: a CJK font installed since then is not in
    it, so add the files themselves."""
    known = {f.fname for f in font_manager.fontManager.ttflist}
    for folder in SYSTEM_FONT_DIRS:
        if not folder.is_dir():
            continue
        for path in sorted(folder.rglob("*CJK*")):
            if path.suffix.lower() in (".ttc", ".otf", ".ttf") and str(path) not in known:
                try:
                    font_manager.fontManager.addfont(str(path))
                except (OSError, RuntimeError, ValueError):
                    log.warning("could not load font %s", path)
