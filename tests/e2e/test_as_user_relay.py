"""AsUserRelay (tests/e2e/harness.py): what makes `as_user` work on `send` steps. The Playground sends a typed
message to the bot as its current user; the relay between them rewrites that one message's sender. Plain
loopback HTTP, no browser: not an e2e test."""
import json
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.e2e.harness import AsUserRelay

MEGAN = {"id": "user-id-1", "name": "Megan Bowen", "aadObjectId": "aad-megan"}


@pytest.fixture
def bot():
    seen = []

    class Bot(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            seen.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            out = b'{"ok": true}'
            self.send_response(201)
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Bot)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()
    server.server_close()


def _call(url, method="POST", doc=None):
    data = json.dumps(doc).encode() if doc is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        body = resp.read()
        return resp.status, json.loads(body) if body else None


def test_the_armed_relay_sends_one_matching_message_as_the_user(bot):
    bot_url, seen = bot
    relay = AsUserRelay(bot_url)
    relay.start()
    try:
        alex = {"id": "user-id-0", "name": "Alex Wilber", "aadObjectId": "aad-alex"}
        control = relay.url + AsUserRelay.CONTROL
        assert _call(control, "POST", {**MEGAN, "text": "incident note INC-1 hi"})[0] == 204
        assert _call(control, "GET") == (200, {"armed": True})
        # an invoke, and a message with other text, pass unchanged
        _call(relay.url + "/api/messages", doc={"type": "invoke", "from": alex})
        _call(relay.url + "/api/messages", doc={"type": "message", "text": "incident list", "from": alex})
        status, body = _call(relay.url + "/api/messages",
                             doc={"type": "message", "text": "<at>Firebell</at> incident note INC-1 hi", "from": alex})
        assert (status, body) == (201, {"ok": True})  # the bot's answer comes back as it was
        assert [a["from"]["name"] for a in seen] == ["Alex Wilber", "Alex Wilber", "Megan Bowen"]
        assert seen[-1]["from"] == {**MEGAN}
        assert _call(control, "GET") == (200, {"armed": False})  # one message per step
        _call(relay.url + "/api/messages", doc={"type": "message", "text": "incident note INC-1 hi", "from": alex})
        assert seen[-1]["from"]["name"] == "Alex Wilber"
    finally:
        relay.stop()
