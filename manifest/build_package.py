"""Build the Teams app package (zip with manifest.json, color.png, outline.png at its root).

    python manifest/build_package.py [--app-id GUID] [--out dist/firebell-teams-app.zip]
                                     [--version 1.2.3] [--base-url https://firebell.acme.com] [--domain host ...]

The committed manifest.json uses the placeholder GUID 00000000-0000-0000-0000-000000000000 for the Teams app
``id``, ``bots[0].botId`` and ``webApplicationInfo`` (``id`` and ``resource`` api://botid-<id>). At build time every
occurrence is replaced by the bot's MicrosoftAppId, taken from ``--app-id``, else the environment variable
MICROSOFT_APP_ID, else MicrosoftAppId. Building with the placeholder is refused.

``--base-url`` replaces https://firebell.example.com (developer website / privacy / terms URLs) and adds its host
to ``validDomains``; ``--domain`` adds more ``validDomains`` entries. The zip is deterministic (fixed timestamps).
Standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import struct
import sys
import zipfile
from pathlib import Path
from urllib.parse import urlparse

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent
PLACEHOLDER_APP_ID = "00000000-0000-0000-0000-000000000000"
PLACEHOLDER_BASE_URL = "https://firebell.example.com"
GUID_RE = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
ICONS = {"color.png": (192, 192), "outline.png": (32, 32)}
ZIP_DATE = (1980, 1, 1, 0, 0, 0)


def png_size(data: bytes) -> tuple[int, int]:
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        raise ValueError("not a PNG file")
    return struct.unpack(">II", data[16:24])


def resolve_app_id(cli_value: str | None) -> str:
    app_id = cli_value or os.environ.get("MICROSOFT_APP_ID") or os.environ.get("MicrosoftAppId") or ""
    app_id = app_id.strip()
    if not app_id:
        raise SystemExit("build_package: no app id: pass --app-id GUID or set MICROSOFT_APP_ID / MicrosoftAppId")
    if not GUID_RE.match(app_id):
        raise SystemExit(f"build_package: app id {app_id!r} is not a GUID")
    if app_id == PLACEHOLDER_APP_ID:
        raise SystemExit("build_package: refusing to build with the placeholder app id")
    return app_id.lower()


def build_manifest(
    app_id: str,
    *,
    version: str | None = None,
    base_url: str | None = None,
    domains: list[str] | tuple[str, ...] = (),
    source: Path = HERE / "manifest.json",
) -> dict:
    text = source.read_text(encoding="utf-8").replace(PLACEHOLDER_APP_ID, app_id)
    if base_url:
        text = text.replace(PLACEHOLDER_BASE_URL, base_url.rstrip("/"))
    manifest = json.loads(text)
    if version:
        manifest["version"] = version
    valid = list(manifest.get("validDomains", []))
    extra = list(domains)
    if base_url:
        extra.insert(0, urlparse(base_url).netloc)
    for d in extra:
        if d and d not in valid:
            valid.append(d)
    manifest["validDomains"] = valid
    return manifest


def build_package(
    app_id: str,
    out: Path,
    *,
    version: str | None = None,
    base_url: str | None = None,
    domains: list[str] | tuple[str, ...] = (),
    icon_dir: Path = HERE,
) -> Path:
    manifest = build_manifest(app_id, version=version, base_url=base_url, domains=domains)
    if PLACEHOLDER_APP_ID in json.dumps(manifest):
        raise SystemExit("build_package: placeholder app id left in the manifest")
    files: dict[str, bytes] = {"manifest.json": (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode()}
    for name, expected in ICONS.items():
        data = (icon_dir / name).read_bytes()
        size = png_size(data)
        if size != expected:
            raise SystemExit(f"build_package: {name} is {size[0]}x{size[1]}, expected {expected[0]}x{expected[1]}")
        files[name] = data
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, data)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the Firebell Teams app package (zip).")
    parser.add_argument("--app-id", help="bot MicrosoftAppId (default: $MICROSOFT_APP_ID or $MicrosoftAppId)")
    parser.add_argument("--out", default=str(REPO_ROOT / "dist" / "firebell-teams-app.zip"),
                        help="zip to write (default: dist/firebell-teams-app.zip); its path is printed")
    parser.add_argument("--version", help="app version (semver) to put in the manifest")
    parser.add_argument("--base-url", help=f"public base URL replacing {PLACEHOLDER_BASE_URL}")
    parser.add_argument("--domain", action="append", default=[], help="extra validDomains entry (repeatable)")
    args = parser.parse_args(argv)
    app_id = resolve_app_id(args.app_id)
    out = build_package(app_id, Path(args.out), version=args.version, base_url=args.base_url, domains=args.domain)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
