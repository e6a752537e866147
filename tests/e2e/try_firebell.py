"""Try Firebell by hand in the Microsoft 365 Agents Playground, inside a loopback-only network namespace.

    python tests/e2e/try_firebell.py            # Firebell + Playground (+ a Chromium window when $DISPLAY is set)

It re-runs itself under ``unshare -n`` (only ``lo`` exists in there), starts Firebell exactly as the e2e tests do
(tests/e2e/firebell_service.py: e2e catalog with the Playground's users, fresh SQLite database, no MicrosoftAppId,
PagerDuty secret ``whsec-test-secret``) and the Playground with the e2e tenant (tests/e2e/harness.py
PlaygroundConfig), then reads commands on stdin:

    pd      post the PagerDuty fixture 01-payment-gateway-triggered.json to Firebell's webhook, its times moved to
            now and signed again (so the card's "so far" impact is minutes, not years)
    open    (re)open the Chromium window on the Playground          q / Ctrl-D   stop everything

Options: ``--dir`` (work folder, default test-artifacts/e2e/try; wiped at start), ``--no-browser``,
``--smoke`` (start, check, post the fixture, stop: what tests/e2e/test_firebell_playground.py runs to keep this
script working). Everything it starts stops with it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

if __package__ in (None, ""):  # run as a script
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.e2e.firebell_service import PLAYGROUND_USERS, demo_alert, firebell_bot, wait_roster
from tests.e2e.harness import (ARTIFACTS_ROOT, CHROMIUM, DEFAULT_BOT_PORT, DEFAULT_PLAYGROUND_PORT, ManagedProcess,
                               Playground, PlaygroundConfig, _end_leftovers, _terminate_group, in_private_netns,
                               missing_prerequisites, netns_argv)

FIXTURE = "01-payment-gateway-triggered.json"
CHROMIUM_HELP = """
Chromium is needed: the Playground runs in a loopback-only network namespace, and only a browser started in
there can reach it. To get it:
  Debian / Ubuntu:  sudo apt-get install -y chromium
  Fedora:           sudo dnf install -y chromium
  any other path:   FIREBELL_E2E_CHROMIUM=/path/to/chromium python tests/e2e/try_firebell.py
  emoji on cards:   sudo apt-get install -y fonts-noto-color-emoji   (optional)
Without it, `python tests/e2e/try_firebell.py --smoke` still starts both, checks them and stops."""
CHROMIUM_FLAGS = ["--no-first-run", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-sandbox"]


def post_pagerduty(bot_url: str) -> str:
    body, headers = demo_alert(FIXTURE)  # happening now, signed again
    req = urllib.request.Request(f"{bot_url}/webhooks/pagerduty", data=body, headers=headers, method="POST")
    with urllib.request.urlopen(req, timeout=10) as resp:
        return f"HTTP {resp.status} {resp.read().decode()[:200]}"


def open_browser(url: str, profile: Path) -> subprocess.Popen | None:
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        print("(no $DISPLAY: no browser window; run Chromium in this namespace yourself, or use --smoke)")
        return None
    return subprocess.Popen([str(CHROMIUM), f"--user-data-dir={profile}", *CHROMIUM_FLAGS, url],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def inside(workdir: Path, *, browser: bool, smoke: bool) -> int:
    if workdir.exists():
        shutil.rmtree(workdir)
    (workdir / "logs").mkdir(parents=True)
    bot_url = f"http://127.0.0.1:{DEFAULT_BOT_PORT}"
    mapping = {"bot_port": DEFAULT_BOT_PORT, "bot_url": bot_url, "artifacts_dir": str(workdir),
               "python": sys.executable}
    firebell = ManagedProcess(firebell_bot(), workdir / "logs", mapping)
    playground = Playground(PlaygroundConfig(), workdir / "playground",
                            bot_endpoint=f"{bot_url}/api/messages", port=DEFAULT_PLAYGROUND_PORT)
    window = None
    try:
        firebell.start()
        firebell.wait_ready()
        url = playground.start()
        print(f"Firebell   {bot_url}  (log: {firebell.log_path})\nPlayground {url.replace('127.0.0.1', 'localhost')}"
              f"  (you are Alex Wilber; the team is 'SRE Team', its channels General and Incidents)\n"
              "In the Incidents channel type @ + pick Firebell, then: incident subscribe checkout -> incident declare "
              "checkout is down -> click Acknowledge, Change level, Resolve, RCA. Type 'pd' here to post a PagerDuty "
              "alert (after 'incident subscribe default' in a channel), 'q' to stop.", flush=True)
        if smoke:
            with urllib.request.urlopen(f"{bot_url}/readyz", timeout=5) as r:
                ready = json.load(r)
            with urllib.request.urlopen(f"{url}/_internal/v1/config", timeout=5) as r:
                config = json.load(r)["config"]
            print(f"readyz: {ready}\nplayground users: {[u['name'] for u in config['users']]}")
            print(f"pagerduty: {post_pagerduty(bot_url)}")
            return 0
        if browser:
            window = open_browser(url.replace("127.0.0.1", "localhost"), workdir / "chromium-profile")
        for line in sys.stdin:
            cmd = line.strip().lower()
            if cmd in ("q", "quit", "exit"):
                break
            if cmd == "pd":
                print(post_pagerduty(bot_url), flush=True)
            elif cmd == "open":
                window = open_browser(url.replace("127.0.0.1", "localhost"), workdir / "chromium-profile")
            elif cmd == "who":
                emails = [u.email for u in PLAYGROUND_USERS]
                print("roster synced" if wait_roster(workdir / "firebell.db", emails, timeout=1, quiet=True) == 0
                      else "roster not synced yet (open a chat or channel first)", flush=True)
            elif cmd:
                print("pd | open | who | q", flush=True)
        return 0
    finally:
        for proc in (window,):
            if proc is not None:
                _terminate_group(proc, 3)
        playground.stop()
        firebell.stop()
        _end_leftovers()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Firebell + the Agents Playground by hand, loopback only.")
    parser.add_argument("--dir", default=str(ARTIFACTS_ROOT / "try"))
    parser.add_argument("--no-browser", action="store_true")
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.inside:
        if not in_private_netns():
            print("try_firebell: --inside outside a loopback-only namespace", file=sys.stderr)
            return 2
        return inside(Path(args.dir), browser=not args.no_browser, smoke=args.smoke)
    missing = missing_prerequisites(chromium=not (args.no_browser or args.smoke))
    if missing:
        print("missing prerequisites:\n  " + "\n  ".join(missing), file=sys.stderr)
        if any("Chromium" in m for m in missing):
            print(CHROMIUM_HELP, file=sys.stderr)
        return 2
    argv_inside = [sys.executable, str(Path(__file__).resolve()), "--inside", "--dir", args.dir,
                   *(["--no-browser"] if args.no_browser else []), *(["--smoke"] if args.smoke else [])]
    # Our own Popen (not run_in_loopback_namespace): stdin stays ours and Ctrl-C must end the namespace too.
    proc = subprocess.Popen(netns_argv(argv_inside), cwd=Path(__file__).resolve().parents[2], start_new_session=True)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        _terminate_group(proc, 10)
        return 130


if __name__ == "__main__":
    sys.exit(main())
