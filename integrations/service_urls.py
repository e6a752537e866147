"""Which Bot Connector `serviceUrl`s Firebell may call.

Every Teams activity names the URL its replies go to, and Firebell stores it with the
conversation for the outbox's later card posts and roster reads. Whoever can get an activity
in could name any URL: an internal address to probe, or a server of theirs that answers roster
reads with a forged roster. So one policy, built in app.py, guards both outbound paths: the
activity is refused before its turn runs (bot/adapter.py), and the TeamsConnector refuses calls
to stored references that point elsewhere.

- Anonymous mode (no MicrosoftAppId, the Playground): loopback only. No token proves where an
  activity came from, so nothing may leave the machine.
- With an app id: botbuilder has already checked that the serviceUrl matches the token's
  claim; on top of that, only the hosts of FIREBELL_SERVICE_URL_HOSTS, and only over https
  (a loopback host in the list may use http: a local stand-in, or a tunnel's end).
"""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

# Microsoft's Bot Connector hosts:
# - Teams, public cloud: https://smba.trafficmanager.net/<region>/ (amer, emea, apac, in, teams...:
#   one host, regional paths). Government clouds, from "Send proactive messages" in the Teams
#   platform docs (learn.microsoft.com/microsoftteams/platform/bots/how-to/conversations/
#   send-proactive-messages): GCC https://smba.infra.gcc.teams.microsoft.com/teams,
#   GCC High https://smba.infra.gov.teams.microsoft.us/teams,
#   DoD https://smba.infra.dod.teams.microsoft.us/teams
#   (the same four as the Agents SDK's TeamsServiceEndpoints).
# - Bot Framework channels (Direct Line, Web Chat, the Emulator's cloud channels ...):
#   <channel>.botframework.com, and <channel>.botframework.azure.us in Azure Government
#   (botbuilder's GovernmentConstants name api.botframework.azure.us for the same cloud).
DEFAULT_SERVICE_URL_HOSTS = (
    "smba.trafficmanager.net",
    "*.teams.microsoft.com",
    "*.teams.microsoft.us",
    "*.botframework.com",
    "*.botframework.azure.us",
)

_HOST_NAME = re.compile(r"^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$")


def is_loopback_host(host: str | None) -> bool:
    """A literal loopback address or `localhost`. Names are never resolved: a DNS answer is not
    something a caller controls less than the activity itself."""
    host = (host or "").strip().lower().rstrip(".").strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_hosts(raw: str) -> tuple[str, ...]:
    """FIREBELL_SERVICE_URL_HOSTS: comma-separated host names or `*.suffix`; ValueError names
    the entry that is neither (a URL, a bare `*`)."""
    hosts = []
    for entry in (x.strip().lower().rstrip(".") for x in raw.split(",")):
        if not entry:
            continue
        if not (_HOST_NAME.match(entry) or is_loopback_host(entry)):
            raise ValueError(f"{entry!r} is not a host name; write e.g. smba.trafficmanager.net "
                             "or *.botframework.com")
        hosts.append(entry)
    return tuple(hosts)


@dataclass(frozen=True)
class ServiceUrlPolicy:
    anonymous: bool
    hosts: tuple[str, ...] = DEFAULT_SERVICE_URL_HOSTS

    def refusal(self, url: str | None) -> str | None:
        """Why Firebell must not call `url` (None: it may)."""
        try:
            parts = urlsplit(url or "")
            host = (parts.hostname or "").rstrip(".")
            parts.port  # noqa: B018 - raises ValueError on a malformed port
        except ValueError:
            return f"serviceUrl {url!r:.100} is not a URL"
        if parts.scheme not in ("http", "https") or not host:
            return f"serviceUrl {url!r:.100} is not an http(s) URL"
        if "@" in parts.netloc or "\\" in url:
            # Clients disagree on where such a host ends; no Bot Connector URL has them.
            return f"serviceUrl {url!r:.100} has credentials or a backslash in it"
        loopback = is_loopback_host(host)
        if self.anonymous:
            return None if loopback else (
                f"serviceUrl host {host} is not loopback, and without MicrosoftAppId Firebell "
                "calls no other")
        if not self._listed(host):
            return f"serviceUrl host {host} is not in FIREBELL_SERVICE_URL_HOSTS"
        if parts.scheme != "https" and not loopback:
            return f"serviceUrl {url!r:.100} is not https"
        return None

    def _listed(self, host: str) -> bool:
        host = host.lower()
        for entry in self.hosts:
            if entry.startswith("*."):
                if host.endswith(entry[1:]):
                    return True
            elif host == entry:
                return True
        return False
