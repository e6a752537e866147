"""Generate the Teams app icons with the standard library only (zlib + struct PNG writer).

    python manifest/make_icons.py           # (re)write manifest/color.png and manifest/outline.png
    python manifest/make_icons.py --check   # exit 1 if the committed PNGs differ from what this script draws

* color.png   192x192, full colour: warm red-to-orange background, white bell with a flame-coloured clapper.
* outline.png 32x32, white bell on a transparent background (Teams requirement: only white + transparency).

Output is deterministic (no timestamps / metadata), so the PNGs can be committed and checked.
"""

from __future__ import annotations

import argparse
import struct
import sys
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent

RGBA = tuple[int, int, int, int]


def png_bytes(width: int, height: int, pixels: list[list[RGBA]]) -> bytes:
    """Encode 8-bit RGBA pixels (rows of (r, g, b, a)) as a PNG (filter 0 on every row)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + bytes(c for px in row for c in px) for row in pixels)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)  # 8-bit RGBA, no interlace
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


# ---- bell geometry in a unit square (0..1, y down); each function says whether a point is inside ----------


def _in_bell(x: float, y: float) -> bool:
    cx = 0.5
    # knob on top
    if (x - cx) ** 2 + (y - 0.17) ** 2 <= 0.045**2:
        return True
    # dome: upper half of a circle
    if y <= 0.40 and (x - cx) ** 2 + (y - 0.40) ** 2 <= 0.215**2:
        return True
    # body: flares from half-width 0.215 at y=0.40 to 0.33 at y=0.70 (slightly concave sides)
    if 0.40 <= y <= 0.70:
        t = (y - 0.40) / 0.30
        half = 0.215 + (0.33 - 0.215) * (t**1.6)
        if abs(x - cx) <= half:
            return True
    # rim: rounded bar
    if 0.68 <= y <= 0.76 and abs(x - cx) <= 0.36:
        return True
    if (x - (cx - 0.36)) ** 2 + (y - 0.72) ** 2 <= 0.04**2 or (x - (cx + 0.36)) ** 2 + (y - 0.72) ** 2 <= 0.04**2:
        return True
    return False


def _in_clapper(x: float, y: float) -> bool:
    return (x - 0.5) ** 2 + (y - 0.83) ** 2 <= 0.075**2


def _coverage(fn, x0: float, y0: float, step: float, n: int = 4) -> float:
    hits = 0
    for i in range(n):
        for j in range(n):
            if fn(x0 + (i + 0.5) * step / n, y0 + (j + 0.5) * step / n):
                hits += 1
    return hits / (n * n)


def _mix(a: tuple[float, ...], b: tuple[float, ...], t: float) -> tuple[float, ...]:
    return tuple(p + (q - p) * t for p, q in zip(a, b))


def draw_color(size: int = 192) -> list[list[RGBA]]:
    top, bottom = (217, 56, 30), (245, 124, 32)  # #D9381E -> #F57C20
    white = (255, 255, 255)
    clapper = (255, 214, 64)
    margin = 0.17  # the symbol sits inside the central ~120 px "safe" area
    rows = []
    for py in range(size):
        row = []
        for px in range(size):
            bg = _mix(top, bottom, py / (size - 1))
            # map pixel into the bell's unit square (with margin)
            step = 1.0 / (size * (1 - 2 * margin))
            ux = (px / size - margin) / (1 - 2 * margin)
            uy = (py / size - margin) / (1 - 2 * margin)
            c_bell = _coverage(_in_bell, ux, uy, step)
            c_clap = _coverage(_in_clapper, ux, uy, step)
            col = _mix(bg, white, c_bell)
            col = _mix(col, clapper, c_clap)
            row.append((*(int(round(v)) for v in col), 255))
        rows.append(row)
    return rows


def draw_outline(size: int = 32) -> list[list[RGBA]]:
    margin = 0.06
    rows = []
    for py in range(size):
        row = []
        for px in range(size):
            step = 1.0 / (size * (1 - 2 * margin))
            ux = (px / size - margin) / (1 - 2 * margin)
            uy = (py / size - margin) / (1 - 2 * margin)
            cov = max(_coverage(_in_bell, ux, uy, step), _coverage(_in_clapper, ux, uy, step))
            alpha = int(round(255 * cov))
            row.append((255, 255, 255, alpha) if alpha else (0, 0, 0, 0))
        rows.append(row)
    return rows


def render() -> dict[str, bytes]:
    return {"color.png": png_bytes(192, 192, draw_color()), "outline.png": png_bytes(32, 32, draw_outline())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the committed files instead of writing")
    parser.add_argument("--out-dir", default=str(HERE))
    args = parser.parse_args(argv)
    out_dir = Path(args.out_dir)
    status = 0
    for name, data in render().items():
        path = out_dir / name
        if args.check:
            if not path.exists() or path.read_bytes() != data:
                print(f"{path} is missing or differs from make_icons.py output; run: python manifest/make_icons.py")
                status = 1
        else:
            path.write_bytes(data)
            print(f"wrote {path} ({len(data)} bytes)")
    return status


if __name__ == "__main__":
    sys.exit(main())
