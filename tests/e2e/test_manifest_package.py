"""Teams app manifest + package: schema-valid against the official schema from @microsoft/app-manifest (offline),
package zip layout, icon sizes/colours, command-list limits. Not an e2e test: needs node + tests/e2e/node_modules
only (skips loudly without them)."""

from __future__ import annotations

import json
import re
import struct
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import pytest

from tests.e2e.harness import E2E_DIR, NODE_MODULES, REPO_ROOT, require_prerequisites

MANIFEST_DIR = REPO_ROOT / "manifest"
MANIFEST = MANIFEST_DIR / "manifest.json"
PLACEHOLDER = "00000000-0000-0000-0000-000000000000"
TEST_APP_ID = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"
COMMANDS = [
    "incident declare", "incident ack", "incident resolve", "incident close", "incident level", "incident assign",
    "incident note", "incident list", "incident show", "incident subscribe", "incident link", "incident unlink",
    "incident rca", "incident retry", "incident oncall", "incident report", "incident stats", "incident search",
    "incident help",
]


@pytest.fixture(autouse=True)
def _prereqs():
    require_prerequisites(chromium=False, netns=False)


def _validate(*paths: Path) -> dict:
    proc = subprocess.run(
        ["node", str(E2E_DIR / "validate_manifest.mjs"), *map(str, paths)],
        cwd=E2E_DIR, capture_output=True, text=True, timeout=120,
    )
    assert proc.stdout, proc.stderr
    return json.loads(proc.stdout)


def _schema(version: str) -> dict:
    path = NODE_MODULES / "@microsoft/app-manifest/build/json-schemas/teams" / f"v{version}" / "MicrosoftTeams.schema.json"
    return json.loads(path.read_text())


def _decode_png(data: bytes) -> tuple[int, int, list[bytes]]:
    """Minimal decoder for 8-bit RGBA non-interlaced PNGs (all five filter types); returns rows of RGBA bytes."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width = 8, b"", 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, ctype, _c, _f, interlace = struct.unpack(">IIBBBBB", body)
            assert (depth, ctype, interlace) == (8, 6, 0), "expected 8-bit RGBA, not interlaced"
        elif kind == b"IDAT":
            idat += body
    raw, stride, rows, prev = zlib.decompress(idat), width * 4, [], bytearray(width * 4)
    for y in range(height):
        ftype, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - 4] if i >= 4 else 0
            b = prev[i]
            c = prev[i - 4] if i >= 4 else 0
            if ftype == 1:
                line[i] = (line[i] + a) & 0xFF
            elif ftype == 2:
                line[i] = (line[i] + b) & 0xFF
            elif ftype == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif ftype == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        rows.append(bytes(line))
        prev = line
    return width, height, rows


def test_manifest_is_valid_against_official_schema():
    report = _validate(MANIFEST)
    assert report["ok"], json.dumps(report, indent=2)
    manifest = json.loads(MANIFEST.read_text())
    major, minor = map(int, manifest["manifestVersion"].split("."))
    assert (major, minor) >= (1, 17)
    if manifest["manifestVersion"] != report["newest_schema_version"]:
        print(f"NOTE: @microsoft/app-manifest ships schema v{report['newest_schema_version']}; "
              f"manifest uses v{manifest['manifestVersion']}", file=sys.stderr)
    assert manifest["id"] == PLACEHOLDER
    bot = manifest["bots"][0]
    assert bot["botId"] == PLACEHOLDER and manifest["webApplicationInfo"]["id"] == PLACEHOLDER
    assert sorted(bot["scopes"]) == ["groupChat", "personal", "team"]
    assert bot["supportsFiles"] is False
    # Incident channels are often private or shared; added to a team, Firebell is the bot.
    assert sorted(manifest["supportedChannelTypes"]) == ["privateChannels", "sharedChannels"]
    assert manifest["defaultInstallScope"] == "team"
    assert manifest["defaultGroupCapability"] == {"team": "bot", "groupchat": "bot"}
    assert manifest["icons"] == {"color": "color.png", "outline": "outline.png"}
    assert manifest["validDomains"]


def test_command_lists_within_limits_and_cover_all_commands():
    manifest = json.loads(MANIFEST.read_text())
    schema_bot = _schema(manifest["manifestVersion"])["properties"]["bots"]["items"]["properties"]
    lists_schema = schema_bot["commandLists"]
    max_lists = lists_schema["maxItems"]
    max_commands = lists_schema["items"]["properties"]["commands"]["maxItems"]
    command_schema = lists_schema["items"]["properties"]["commands"]["items"]["properties"]
    lists = manifest["bots"][0]["commandLists"]
    assert len(lists) <= max_lists
    scopes = [s for cl in lists for s in cl["scopes"]]
    assert sorted(scopes) == ["groupChat", "personal", "team"], "one command list per scope"
    seen = set()
    for cl in lists:
        titles = [c["title"] for c in cl["commands"]]
        assert len(titles) <= max_commands, (cl["scopes"], len(titles), max_commands)
        assert len(set(titles)) == len(titles), f"duplicate command in {cl['scopes']}"
        assert set(titles) <= set(COMMANDS), set(titles) - set(COMMANDS)
        assert "incident help" in titles
        for c in cl["commands"]:
            assert len(c["title"]) <= command_schema["title"]["maxLength"]
            assert c.get("description") and len(c["description"]) <= command_schema["description"]["maxLength"]
        seen |= set(titles)
    assert seen == set(COMMANDS), f"commands in no list: {set(COMMANDS) - seen}"


def test_icons_are_generated_and_sized():
    subprocess.run([sys.executable, str(MANIFEST_DIR / "make_icons.py"), "--check"], check=True, timeout=120)
    w, h, rows = _decode_png((MANIFEST_DIR / "color.png").read_bytes())
    assert (w, h) == (192, 192)
    assert all(row[i + 3] == 255 for row in rows for i in range(0, len(row), 4)), "color icon must be opaque"
    w, h, rows = _decode_png((MANIFEST_DIR / "outline.png").read_bytes())
    assert (w, h) == (32, 32)
    pixels = [row[i:i + 4] for row in rows for i in range(0, len(row), 4)]
    assert all(p[3] == 0 or p[:3] == b"\xff\xff\xff" for p in pixels), "outline icon: white on transparent only"
    assert any(p[3] == 0 for p in pixels) and any(p[3] == 255 for p in pixels)


def test_build_package(tmp_path: Path):
    out = tmp_path / "firebell.zip"
    proc = subprocess.run(
        [sys.executable, str(MANIFEST_DIR / "build_package.py"), "--app-id", TEST_APP_ID, "--out", str(out),
         "--version", "2.3.4", "--base-url", "https://firebell.acme.test"],
        capture_output=True, text=True, timeout=120, env={"PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(out)
    with zipfile.ZipFile(out) as zf:
        assert sorted(zf.namelist()) == ["color.png", "manifest.json", "outline.png"]  # all at the zip root
        built = json.loads(zf.read("manifest.json"))
        assert zf.read("color.png") == (MANIFEST_DIR / "color.png").read_bytes()
        assert zf.read("outline.png") == (MANIFEST_DIR / "outline.png").read_bytes()
    assert PLACEHOLDER not in json.dumps(built)
    assert built["id"] == built["bots"][0]["botId"] == built["webApplicationInfo"]["id"] == TEST_APP_ID
    assert built["webApplicationInfo"]["resource"] == f"api://botid-{TEST_APP_ID}"
    assert built["version"] == "2.3.4"
    assert built["developer"]["privacyUrl"] == "https://firebell.acme.test/privacy"
    assert "firebell.acme.test" in built["validDomains"]
    built_path = tmp_path / "manifest.json"
    built_path.write_text(json.dumps(built))
    report = _validate(built_path)
    assert report["ok"], json.dumps(report, indent=2)

    # refuses to build without an app id (and with the placeholder)
    for extra in ([], ["--app-id", PLACEHOLDER], ["--app-id", "not-a-guid"]):
        bad = subprocess.run(
            [sys.executable, str(MANIFEST_DIR / "build_package.py"), "--out", str(tmp_path / "x.zip"), *extra],
            capture_output=True, text=True, timeout=120, env={"PATH": "/usr/bin:/bin"},
        )
        assert bad.returncode != 0 and not (tmp_path / "x.zip").exists()


def test_app_id_from_environment(tmp_path: Path):
    out = tmp_path / "env.zip"
    subprocess.run(
        [sys.executable, str(MANIFEST_DIR / "build_package.py"), "--out", str(out)],
        check=True, capture_output=True, text=True, timeout=120,
        env={"PATH": "/usr/bin:/bin", "MicrosoftAppId": TEST_APP_ID.upper()},
    )
    with zipfile.ZipFile(out) as zf:
        assert json.loads(zf.read("manifest.json"))["bots"][0]["botId"] == TEST_APP_ID


# -- the manifest against the real parser --------------------------------------------------------------------------

EXAMPLE = re.compile(r"(?:Example|or): (incident [^()]+?)\s*(?:\)|$)")


def _manifest_commands() -> list[dict]:
    manifest = json.loads(MANIFEST.read_text())
    return [c for cl in manifest["bots"][0]["commandLists"] for c in cl["commands"]]


def _examples(description: str) -> list[str]:
    return EXAMPLE.findall(description)


def _check_example_args(cmd, catalog) -> list[str]:
    """What Firebell would refuse in an example that parses: unknown levels, teams, services, people, periods."""
    from datetime import datetime, timezone

    from incidents.periods import parse_period

    args, problems = cmd.args, []
    if cmd.verb == "level" and catalog.levels.normalise(args["level"]) is None:
        problems.append(f"level {args['level']!r} is not a level ({', '.join(catalog.levels.levels)})")
    if cmd.verb == "declare":
        if args.get("level") and catalog.levels.normalise(args["level"]) is None:
            problems.append(f"level={args['level']} is not a level")
        if args.get("service") and catalog.service(args["service"]) is None:
            problems.append(f"service={args['service']} is not a service")
    if cmd.verb in ("subscribe", "list") and args.get("team") and args["team"] != "default" \
            and catalog.find_team(args["team"]) is None:
        problems.append(f"{args['team']!r} is not a team")
    if cmd.verb == "oncall":
        word = " ".join(args["words"])
        if word and catalog.find_team(word) is None and catalog.service(word) is None:
            problems.append(f"{word!r} is neither a team nor a service")
    if cmd.verb == "assign":
        who = args["person"]
        if catalog.person(who) is None and not any(p.name.lower() == who.lower() for p in catalog.people.values()):
            problems.append(f"{who!r} is not a catalog person")
    if cmd.verb in ("stats", "report"):
        words = list(args["words"])
        if cmd.verb == "report":
            kind = words.pop(0) if words else "weekly"
            if kind not in ("weekly", "monthly", "week", "month", "history"):
                problems.append(f"report kind {kind!r} is not weekly|monthly|history")
        words = [w for w in words if catalog.find_team(w) is None]
        now = datetime(2025, 3, 14, tzinfo=timezone.utc)
        if len(words) > 1 or (words and parse_period(words[0], now, catalog.timezone) is None):
            problems.append(f"{' '.join(words)!r} is not a team or a period")
    return problems


def test_manifest_commands_parse_with_the_real_parser():
    sys.path.insert(0, str(REPO_ROOT))
    from handlers.commands import COMMANDS, ParseError, parse_command
    from incidents.catalog import load_catalog

    catalog = load_catalog(REPO_ROOT / "config" / "catalog.yaml")
    problems = []
    for c in _manifest_commands():
        title = c["title"]
        word, _, verb = title.partition(" ")
        if word != "incident" or verb not in COMMANDS:
            problems.append(f"{title!r}: not `incident <verb>` with a verb the parser knows")
            continue
        examples = _examples(c["description"])
        if not examples and verb != "help":
            problems.append(f"{title!r}: its description has no `Example: incident {verb} ...`")
        if verb in ("help", "list"):  # typed as is, the title itself is a working command
            examples.append(title)
        for example in examples:
            try:
                cmd = parse_command(example)
            except ParseError as exc:
                problems.append(f"{title!r}: example {example!r} does not parse: {exc}")
                continue
            if cmd.verb != verb:
                problems.append(f"{title!r}: example {example!r} parses as `{cmd.verb}`")
            if set(cmd.args) == {"incident"} and len(example.split()) > 3:
                problems.append(f"{title!r}: example {example!r}: the parser ignores the words after the id")
            problems += [f"{title!r}: example {example!r}: {p}" for p in _check_example_args(cmd, catalog)]
            # Teams sends what is typed after the @mention in channels: the example must work there too
            if parse_command(f"<at>Firebell</at> {example}") != cmd:
                problems.append(f"{title!r}: example {example!r} parses differently after an @mention")
    assert not problems, "\n".join(problems)


def test_every_command_is_on_the_help_card_and_the_manifest_names_only_commands():
    """The help card is generated from the command registry, so every command a person types is
    on it; the manifest's command list (what Teams suggests) names only real commands."""
    sys.path.insert(0, str(REPO_ROOT))
    from handlers.commands import COMMANDS
    from handlers.commands.registry import help_sections

    on_help = {usage.split()[1] for _section, rows in help_sections() for usage, _what in rows}
    typed = {verb for verb, c in COMMANDS.items() if c.in_help}
    assert on_help == typed
    in_manifest = {c["title"].split()[1] for c in _manifest_commands()}
    assert in_manifest <= set(COMMANDS), in_manifest - set(COMMANDS)


def test_build_package_is_documented():
    """`python manifest/build_package.py --help` works, and every option it takes is in manifest/README.md and in
    its own docstring (and nothing documented there is missing from the script)."""
    proc = subprocess.run([sys.executable, str(MANIFEST_DIR / "build_package.py"), "--help"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    options = set(re.findall(r"(--[a-z][a-z-]+)", proc.stdout)) - {"--help"}
    assert options >= {"--app-id", "--out", "--version", "--base-url", "--domain"}
    readme = (MANIFEST_DIR / "README.md").read_text()
    usage = re.search(r"```bash\n(python manifest/build_package\.py.*?)```", readme, re.S)
    assert usage, "manifest/README.md has no ```bash python manifest/build_package.py ...``` block"
    documented = set(re.findall(r"(--[a-z][a-z-]+)", usage.group(1)))
    docstring = (MANIFEST_DIR / "build_package.py").read_text().split('"""')[1]
    assert documented == options, (documented, options)
    assert set(re.findall(r"(--[a-z][a-z-]+)", docstring)) >= options
    for env in ("MICROSOFT_APP_ID", "MicrosoftAppId"):
        assert env in readme and env in proc.stdout
