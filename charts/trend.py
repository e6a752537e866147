"""Charts as PNG images, drawn with the standard library only (zlib for the PNG encoding, a 5x7
bitmap font for labels): a report needs bars, lines and a few numbers, not a plotting stack.

`trend_chart` draws the monthly trend: incidents per month as bars (top panel) and MTTA / MTTR
medians in minutes as lines (bottom panel). Deterministic: the same figures give the same bytes.
"""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from typing import Sequence

WHITE = (255, 255, 255)
INK = (51, 51, 51)
GRID = (226, 226, 226)
BAR = (98, 100, 167)       # Teams purple
MTTA = (230, 126, 34)
MTTR = (41, 128, 185)

# 5x7 glyphs, 7 rows of 5 columns ("#" = ink). Labels are drawn in capitals.
_FONT = {
    "0": (" ### ", "#   #", "#  ##", "# # #", "##  #", "#   #", " ### "),
    "1": ("  #  ", " ##  ", "  #  ", "  #  ", "  #  ", "  #  ", " ### "),
    "2": (" ### ", "#   #", "    #", "   # ", "  #  ", " #   ", "#####"),
    "3": ("#####", "   # ", "  #  ", "   # ", "    #", "#   #", " ### "),
    "4": ("   # ", "  ## ", " # # ", "#  # ", "#####", "   # ", "   # "),
    "5": ("#####", "#    ", "#### ", "    #", "    #", "#   #", " ### "),
    "6": ("  ## ", " #   ", "#    ", "#### ", "#   #", "#   #", " ### "),
    "7": ("#####", "    #", "   # ", "  #  ", " #   ", " #   ", " #   "),
    "8": (" ### ", "#   #", "#   #", " ### ", "#   #", "#   #", " ### "),
    "9": (" ### ", "#   #", "#   #", " ####", "    #", "   # ", " ##  "),
    "A": (" ### ", "#   #", "#   #", "#####", "#   #", "#   #", "#   #"),
    "B": ("#### ", "#   #", "#   #", "#### ", "#   #", "#   #", "#### "),
    "C": (" ### ", "#   #", "#    ", "#    ", "#    ", "#   #", " ### "),
    "D": ("###  ", "#  # ", "#   #", "#   #", "#   #", "#  # ", "###  "),
    "E": ("#####", "#    ", "#    ", "#### ", "#    ", "#    ", "#####"),
    "F": ("#####", "#    ", "#    ", "#### ", "#    ", "#    ", "#    "),
    "G": (" ### ", "#   #", "#    ", "# ###", "#   #", "#   #", " ####"),
    "H": ("#   #", "#   #", "#   #", "#####", "#   #", "#   #", "#   #"),
    "I": (" ### ", "  #  ", "  #  ", "  #  ", "  #  ", "  #  ", " ### "),
    "J": ("  ###", "   # ", "   # ", "   # ", "   # ", "#  # ", " ##  "),
    "K": ("#   #", "#  # ", "# #  ", "##   ", "# #  ", "#  # ", "#   #"),
    "L": ("#    ", "#    ", "#    ", "#    ", "#    ", "#    ", "#####"),
    "M": ("#   #", "## ##", "# # #", "# # #", "#   #", "#   #", "#   #"),
    "N": ("#   #", "#   #", "##  #", "# # #", "#  ##", "#   #", "#   #"),
    "O": (" ### ", "#   #", "#   #", "#   #", "#   #", "#   #", " ### "),
    "P": ("#### ", "#   #", "#   #", "#### ", "#    ", "#    ", "#    "),
    "Q": (" ### ", "#   #", "#   #", "#   #", "# # #", "#  # ", " ## #"),
    "R": ("#### ", "#   #", "#   #", "#### ", "# #  ", "#  # ", "#   #"),
    "S": (" ####", "#    ", "#    ", " ### ", "    #", "    #", "#### "),
    "T": ("#####", "  #  ", "  #  ", "  #  ", "  #  ", "  #  ", "  #  "),
    "U": ("#   #", "#   #", "#   #", "#   #", "#   #", "#   #", " ### "),
    "V": ("#   #", "#   #", "#   #", "#   #", "#   #", " # # ", "  #  "),
    "W": ("#   #", "#   #", "#   #", "# # #", "# # #", "# # #", " # # "),
    "X": ("#   #", "#   #", " # # ", "  #  ", " # # ", "#   #", "#   #"),
    "Y": ("#   #", "#   #", " # # ", "  #  ", "  #  ", "  #  ", "  #  "),
    "Z": ("#####", "    #", "   # ", "  #  ", " #   ", "#    ", "#####"),
    "-": ("     ", "     ", "     ", "#####", "     ", "     ", "     "),
    ".": ("     ", "     ", "     ", "     ", "     ", " ##  ", " ##  "),
    ":": ("     ", " ##  ", " ##  ", "     ", " ##  ", " ##  ", "     "),
    "/": ("    #", "    #", "   # ", "  #  ", " #   ", "#    ", "#    "),
    "$": ("  #  ", " ####", "# #  ", " ### ", "  # #", "#### ", "  #  "),
    "%": ("##   ", "##  #", "   # ", "  #  ", " #   ", "#  ##", "   ##"),
    "(": ("   # ", "  #  ", " #   ", " #   ", " #   ", "  #  ", "   # "),
    ")": (" #   ", "  #  ", "   # ", "   # ", "   # ", "  #  ", " #   "),
    "'": ("  #  ", "  #  ", " #   ", "     ", "     ", "     ", "     "),
    ",": ("     ", "     ", "     ", "     ", " ##  ", "  #  ", " #   "),
    "+": ("     ", "  #  ", "  #  ", "#####", "  #  ", "  #  ", "     "),
    " ": ("     ",) * 7,
}
GLYPH_W, GLYPH_H = 5, 7


def _glyph(ch: str) -> tuple[str, ...]:
    return _FONT.get(ch.upper(), _FONT[" "])


class Canvas:
    def __init__(self, width: int, height: int, background=WHITE):
        self.w, self.h = width, height
        self.px = bytearray(bytes(background) * (width * height))

    def rect(self, x0: int, y0: int, x1: int, y1: int, color) -> None:
        x0, x1 = max(0, min(x0, x1)), min(self.w, max(x0, x1))
        y0, y1 = max(0, min(y0, y1)), min(self.h, max(y0, y1))
        row = bytes(color) * (x1 - x0)
        for y in range(y0, y1):
            i = (y * self.w + x0) * 3
            self.px[i:i + len(row)] = row

    def line(self, x0: int, y0: int, x1: int, y1: int, color, width: int = 1) -> None:
        dx, dy = abs(x1 - x0), -abs(y1 - y0)
        sx, sy = (1 if x0 < x1 else -1), (1 if y0 < y1 else -1)
        err = dx + dy
        half = width // 2
        while True:
            self.rect(x0 - half, y0 - half, x0 - half + width, y0 - half + width, color)
            if x0 == x1 and y0 == y1:
                return
            e2 = 2 * err
            if e2 >= dy:
                err += dy
                x0 += sx
            if e2 <= dx:
                err += dx
                y0 += sy

    def text(self, x: int, y: int, s: str, color=INK, scale: int = 1) -> None:
        for n, ch in enumerate(s):
            rows = _glyph(ch)
            for gy in range(GLYPH_H):
                for gx in range(GLYPH_W):
                    if rows[gy][gx] == "#":
                        ox = x + n * (GLYPH_W + 1) * scale + gx * scale
                        self.rect(ox, y + gy * scale, ox + scale, y + gy * scale + scale, color)

    def png(self) -> bytes:
        raw = b"".join(b"\x00" + bytes(self.px[y * self.w * 3:(y + 1) * self.w * 3])
                       for y in range(self.h))

        def chunk(kind: bytes, data: bytes) -> bytes:
            return (struct.pack(">I", len(data)) + kind + data
                    + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
        header = struct.pack(">IIBBBBB", self.w, self.h, 8, 2, 0, 0, 0)
        return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def text_width(s: str, scale: int = 1) -> int:
    return len(s) * (GLYPH_W + 1) * scale - scale


@dataclass(frozen=True)
class TrendBar:
    label: str                    # "Mar 25"
    count: int
    mtta_minutes: float | None
    mttr_minutes: float | None


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10000, 20000,
                 50000, 100000, 200000, 500000, 1000000):
        if value <= step * 4:
            return step * 4
    return value * 1.1


def _short(n: float) -> str:
    if n >= 10000:
        return f"{n / 1000:.0f}k"
    if n >= 1000:
        return f"{n / 1000:.1f}k"
    return f"{n:.0f}"


def trend_chart(points: Sequence[TrendBar], *, title: str, width: int = 640,
                height: int = 360) -> bytes:
    c = Canvas(width, height)
    scale = 2 if text_width(title, 2) <= width - 24 else 1
    c.text(12, 10, title[:100], INK, scale=scale)
    left, right = 56, width - 16
    top_panel = (44, 170)          # bars
    bottom_panel = (200, height - 40)
    n = max(1, len(points))
    slot = (right - left) / n
    # -- bars: incidents per month
    peak = _nice_max(max((p.count for p in points), default=0))
    _axis(c, left, right, top_panel, peak, "incidents")
    for i, p in enumerate(points):
        h = int((top_panel[1] - top_panel[0]) * (p.count / peak)) if peak else 0
        x0 = int(left + i * slot + slot * 0.2)
        x1 = int(left + (i + 1) * slot - slot * 0.2)
        c.rect(x0, top_panel[1] - h, x1, top_panel[1], BAR)
        label = str(p.count)
        c.text((x0 + x1 - text_width(label)) // 2, top_panel[1] - h - 10, label)
    # -- lines: MTTA and MTTR medians, minutes
    values = [v for p in points for v in (p.mtta_minutes, p.mttr_minutes) if v is not None]
    peak = _nice_max(max(values, default=0))
    _axis(c, left, right, bottom_panel, peak, "minutes (median)")
    for attr, color in (("mtta_minutes", MTTA), ("mttr_minutes", MTTR)):
        prev = None
        for i, p in enumerate(points):
            v = getattr(p, attr)
            if v is None:
                prev = None
                continue
            x = int(left + (i + 0.5) * slot)
            y = int(bottom_panel[1] - (bottom_panel[1] - bottom_panel[0]) * (v / peak))
            c.rect(x - 3, y - 3, x + 4, y + 4, color)
            if prev:
                c.line(prev[0], prev[1], x, y, color, width=2)
            prev = (x, y)
    for i, p in enumerate(points):
        label = p.label[:8]
        c.text(int(left + (i + 0.5) * slot) - text_width(label) // 2, height - 32, label)
    # legend
    lx = width - 200
    c.rect(lx, height - 16, lx + 10, height - 6, MTTA)
    c.text(lx + 14, height - 14, "MTTA")
    c.rect(lx + 60, height - 16, lx + 70, height - 6, MTTR)
    c.text(lx + 74, height - 14, "MTTR")
    return c.png()


def _axis(c: Canvas, left: int, right: int, panel: tuple[int, int], peak: float,
          unit: str) -> None:
    top, bottom = panel
    for k in range(5):
        y = int(bottom - (bottom - top) * k / 4)
        c.rect(left, y, right, y + 1, GRID if k else INK)
        label = _short(peak * k / 4)
        c.text(left - 6 - text_width(label), y - 3, label)
    c.text(left, top - 12, unit, INK)
