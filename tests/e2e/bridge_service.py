"""Firebell with meeting bridges in an e2e scenario: the Graph stand-in (tests/fakes/graph.py) runs as a service
inside the namespace, knows the e2e catalog's people and the Playground users as Graph users, and lets the app make
meetings on Alex Wilber's behalf (an application access policy granted to him); Firebell starts with Graph and
FIREBELL_MEETING_ORGANIZER pointed at it.

    from tests.e2e.bridge_service import bridge_bot, graph_service

    run_scenario(steps, bot=bridge_bot(), services=[graph_service()], ...)

The stand-in picks a free port and writes the settings Firebell needs to ``{artifacts_dir}/graph.json``; the bot
(``bridge_service.py firebell``) reads them and becomes ``firebell_service.py serve``.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `tests.e2e` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.e2e.firebell_service import PLAYGROUND_USERS, firebell_env
from tests.e2e.harness import DEFAULT_CURRENT_USER, ServiceSpec

ORGANIZER = DEFAULT_CURRENT_USER.email
HERE = Path(__file__).resolve()


def graph_service() -> ServiceSpec:
    return ServiceSpec(name="graph", argv=["{python}", str(HERE), "graph", "{artifacts_dir}"],
                       ready_log=r"graph ready", ready_timeout=30)


def bridge_bot() -> ServiceSpec:
    """Firebell (as firebell_service.firebell_bot()) with Graph and a meeting organizer."""
    return ServiceSpec(name="firebell", argv=["{python}", str(HERE), "firebell", "{artifacts_dir}"],
                       env=firebell_env(), ready_http="{bot_url}/readyz", ready_log=r"Firebell ready",
                       ready_timeout=60)


async def serve_graph(artifacts_dir: Path) -> None:
    from incidents.catalog import load_catalog
    from tests.e2e.firebell_service import CATALOG
    from tests.fakes.graph import FakeGraph

    graph = FakeGraph()
    await graph.start()
    people = {p.email: p.name for p in load_catalog(CATALOG).people.values()}
    people.update({u.email: u.name for u in PLAYGROUND_USERS})
    for email, name in people.items():
        user = graph.add_user(name, upn=email)
        if email == ORGANIZER:
            graph.grant_meeting_policy(user)
    settings = {"GRAPH_CLIENT_ID": graph.client_id, "GRAPH_CLIENT_SECRET": graph.client_secret,
                "GRAPH_TENANT_ID": graph.tenant_id, **graph.env(), "FIREBELL_MEETING_ORGANIZER": ORGANIZER}
    (artifacts_dir / "graph.json").write_text(json.dumps(settings))
    print(f"graph ready on {graph.base_url}", flush=True)
    try:
        while True:
            await asyncio.sleep(3600)
    finally:
        await graph.stop()


def firebell(artifacts_dir: Path) -> None:
    """Become ``firebell_service.py serve`` with the stand-in's settings in the environment."""
    os.environ.update(json.loads((artifacts_dir / "graph.json").read_text()))
    script = HERE.parent / "firebell_service.py"
    os.execv(sys.executable, [sys.executable, str(script), "serve"])


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "graph":
        asyncio.run(serve_graph(Path(argv[1])))
        return 0
    if len(argv) == 2 and argv[0] == "firebell" and os.environ.get("FIREBELL_CONFIG"):
        firebell(Path(argv[1]))
    print("usage: python tests/e2e/bridge_service.py graph ARTIFACTS_DIR\n"
          "       FIREBELL_CONFIG=... python tests/e2e/bridge_service.py firebell ARTIFACTS_DIR", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
