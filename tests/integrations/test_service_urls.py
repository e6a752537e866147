"""Which serviceUrls Firebell may call: loopback only without an app id; with one, the hosts
of FIREBELL_SERVICE_URL_HOSTS (Microsoft's by default) over https."""
import pytest

from integrations.service_urls import ServiceUrlPolicy, is_loopback_host, parse_hosts

ANONYMOUS = ServiceUrlPolicy(anonymous=True)
MICROSOFT = ServiceUrlPolicy(anonymous=False)


@pytest.mark.parametrize("url", [
    "https://smba.trafficmanager.net/amer/", "https://smba.trafficmanager.net/emea/",
    "https://smba.trafficmanager.net/teams/", "https://smba.infra.gcc.teams.microsoft.com/teams",
    "https://smba.infra.gov.teams.microsoft.us/teams",
    "https://smba.infra.dod.teams.microsoft.us/teams", "https://directline.botframework.com/",
    "https://europe.webchat.botframework.com/", "https://webchat.botframework.azure.us/",
    "https://SMBA.trafficmanager.net./amer/",
])
def test_microsofts_connectors_are_allowed_with_an_app_id(url):
    assert _allows(MICROSOFT, url)
    assert not _allows(ANONYMOUS, url)


@pytest.mark.parametrize("url, why", [
    ("http://smba.trafficmanager.net/amer/", "not https"),
    ("https://evil.example/", "not in FIREBELL_SERVICE_URL_HOSTS"),
    ("https://evilbotframework.com/", "not in FIREBELL_SERVICE_URL_HOSTS"),
    ("https://botframework.com.evil.example/", "not in FIREBELL_SERVICE_URL_HOSTS"),
    ("https://smba.trafficmanager.net@evil.example/", "credentials"),
    ("https://evil.example\\@smba.trafficmanager.net/", "backslash"),
    ("https://u:p@smba.trafficmanager.net/", "credentials"),
    ("https://127.0.0.1:3978/", "not in FIREBELL_SERVICE_URL_HOSTS"),
    ("ftp://smba.trafficmanager.net/", "not an http(s) URL"),
    ("https://smba.trafficmanager.net:99999/", "not a URL"),
    ("", "not an http(s) URL"),
    (None, "not an http(s) URL"),
])
def test_anything_else_is_refused_with_a_reason(url, why):
    assert why in MICROSOFT.refusal(url)


@pytest.mark.parametrize("url, allowed", [
    ("http://localhost:56150/_connector", True), ("http://127.0.0.1:4000/", True),
    ("https://127.8.0.1/", True), ("http://[::1]:4000/", True),
    ("http://203.0.113.5/", False), ("http://10.0.0.4/", False),
    ("http://localhost.evil.example/", False), ("http://0.0.0.0:4000/", False),
    ("https://smba.trafficmanager.net/amer/", False),
])
def test_anonymous_mode_calls_loopback_only(url, allowed):
    assert _allows(ANONYMOUS, url) is allowed


def test_a_listed_loopback_host_may_use_http():
    local = ServiceUrlPolicy(anonymous=False, hosts=parse_hosts("127.0.0.1, *.botframework.com"))
    assert _allows(local, "http://127.0.0.1:4000/") and _allows(local, "https://127.0.0.1:4000/")
    assert not _allows(local, "http://localhost:4000/")  # not listed
    assert not _allows(local, "https://smba.trafficmanager.net/amer/")


@pytest.mark.parametrize("raw", ["https://smba.trafficmanager.net/amer", "*", "*.", "a b",
                                 "smba.trafficmanager.net/amer"])
def test_the_host_list_takes_host_names_only(raw):
    with pytest.raises(ValueError, match="not a host name"):
        parse_hosts(raw)


def test_loopback_hosts_are_literal():
    assert all(map(is_loopback_host, ["127.0.0.1", "localhost", "::1", "[::1]", "LOCALHOST"]))
    assert not any(map(is_loopback_host, ["0.0.0.0", "::", "", None, "example.com"]))


def _allows(policy, url):
    return policy.refusal(url) is None
