"""End-to-end harness: bot + Microsoft 365 Agents Playground + headless Chromium, all in a loopback-only netns.

Outside view (what tests use)::

    from tests.e2e.harness import ServiceSpec, PlaygroundConfig, run_scenario, require_prerequisites

    require_prerequisites()                       # loud pytest.skip if chromium / node_modules are missing
    result = run_scenario(
        steps=[{"action": "send", "chat": "Incidents", "text": "hello"},
               {"action": "wait_card", "contains": "Incident INC-1"},
               {"action": "click", "card": "Incident INC-1", "button": "Acknowledge"}],
        bot=ServiceSpec(name="bot", argv=[sys.executable, "app.py"], env={"PORT": "{bot_port}"}),
    )
    result.assert_ok()                            # AssertionError naming the failed step + screenshot + log tails

How it works: run_scenario() writes a job file and re-runs this module (``python harness.py _inside job.json``)
inside ``unshare -n`` (a fresh network namespace where only ``lo`` exists and is brought up). In there the
supervisor starts the extra services, the bot, the Playground (config written from PlaygroundConfig), waits for
each to be ready, runs ``node driver.mjs`` with the steps, and stops everything it started. Logs, screenshots and
result JSON land in the artifacts folder (default ``test-artifacts/e2e/<name>/``).

Only the standard library (+ PyYAML if present) is used so that the module also runs as a plain script.
"""

from __future__ import annotations

import ctypes
import dataclasses
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

E2E_DIR = Path(__file__).resolve().parent
REPO_ROOT = E2E_DIR.parent.parent
NODE_MODULES = E2E_DIR / "node_modules"
PLAYGROUND_CLI = NODE_MODULES / "@microsoft" / "m365agentsplayground" / "cli.js"
DRIVER = E2E_DIR / "driver.mjs"
RENDER_CARDS = E2E_DIR / "render_cards.mjs"
CHROMIUM = Path(os.environ.get("FIREBELL_E2E_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS_ROOT = Path(os.environ.get("FIREBELL_E2E_ARTIFACTS", str(REPO_ROOT / "test-artifacts" / "e2e")))

DEFAULT_BOT_PORT = 3978
DEFAULT_PLAYGROUND_PORT = 56150

# ---------------------------------------------------------------------------------------------------------------
# prerequisites / skipping


def missing_prerequisites(*, chromium: bool = True, node_modules: bool = True, netns: bool = True) -> list[str]:
    """Human-readable list of what is missing to run the e2e tools (empty list: all good)."""
    missing = []
    if chromium and not (CHROMIUM.exists() and os.access(CHROMIUM, os.X_OK)):
        missing.append(f"Chromium not found at {CHROMIUM} (apt-get install -y chromium, or set FIREBELL_E2E_CHROMIUM)")
    if shutil.which("node") is None:
        missing.append("node not on PATH (Node 20+)")
    if node_modules:
        for sub in ("playwright-core", "@microsoft/m365agentsplayground", "adaptivecards", "adaptivecards-designer",
                    "@microsoft/app-manifest", "ajv-draft-04", "ajv-formats"):
            if not (NODE_MODULES / sub).is_dir():
                missing.append(f"{NODE_MODULES / sub} missing (run: cd tests/e2e && npm ci)")
                break
    for tool in ("unshare", "ip") if netns else ():
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            missing.append(f"'{tool}' not found (util-linux / iproute2)")
    return missing


SKIP_REASONS: list[str] = []  # collected for the loud banner in conftest.py's pytest_terminal_summary


def require_prerequisites(**kwargs: bool) -> None:
    """pytest.skip LOUDLY (reason + banner on stderr + end-of-run banner) when e2e prerequisites are missing."""
    missing = missing_prerequisites(**kwargs)
    if not missing:
        return
    import pytest  # local import: the module must stay importable as a plain script

    reason = "E2E PREREQUISITES MISSING -> test SKIPPED: " + "; ".join(missing)
    if reason not in SKIP_REASONS:
        SKIP_REASONS.append(reason)
    bar = "!" * 100
    print(f"\n{bar}\n{reason}\n{bar}\n", file=sys.stderr, flush=True)
    pytest.skip(reason)


# ---------------------------------------------------------------------------------------------------------------
# network namespace

_NETNS_BOOT = r"""
ip link set lo up || { echo "harness: cannot bring up lo in the new network namespace" >&2; exit 97; }
for _ in $(seq 1 100); do ip -6 addr show dev lo 2>/dev/null | grep -q '::1' && break; sleep 0.05; done
exec "$@"
"""


def network_interfaces() -> list[str]:
    """Names of the network interfaces of this process's network namespace (from /proc/self/net/dev)."""
    try:
        lines = Path("/proc/self/net/dev").read_text().splitlines()[2:]
    except OSError:
        return []
    return [line.split(":", 1)[0].strip() for line in lines if ":" in line]


def in_private_netns() -> bool:
    """True when this process sits in a loopback-only network namespace (only ``lo``), as made by unshare -n."""
    return network_interfaces() == ["lo"]


def _assert_isolated(what: str) -> None:
    if not in_private_netns() and os.environ.get("FIREBELL_E2E_ALLOW_HOST_NETWORK") != "1":
        raise RuntimeError(
            f"refusing to start {what} in the host network namespace; use run_in_loopback_namespace() / run_scenario()"
        )


def netns_argv(argv: Sequence[str]) -> list[str]:
    """argv that runs ``argv`` in a new loopback-only network namespace (lo up, ::1 present)."""
    unshare = ["unshare", "-n"] if os.geteuid() == 0 else ["unshare", "-r", "-n"]
    return [*unshare, "--", "bash", "-c", _NETNS_BOOT, "netns", *map(str, argv)]


def run_in_loopback_namespace(
    argv: Sequence[str],
    *,
    cwd: str | os.PathLike | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    capture_output: bool = False,
    grace: float = 15.0,
) -> subprocess.CompletedProcess:
    """Run ``argv`` in a fresh network namespace that only has ``lo`` (127.0.0.1 and ::1).

    On timeout the process gets SIGTERM, then SIGKILL after ``grace`` seconds, and TimeoutExpired is raised.
    """
    full_env = {**os.environ, **(env or {})}
    kwargs: dict[str, Any] = {"cwd": cwd, "env": full_env, "start_new_session": True}
    if capture_output:
        kwargs.update(stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc = subprocess.Popen(netns_argv(argv), **kwargs)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _terminate_group(proc, grace)
        raise
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _terminate_group(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """SIGTERM the process group led by ``proc`` (a process we started), then SIGKILL it after ``grace`` s."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)


def _become_subreaper() -> None:
    """Orphans of our children (e.g. Chromium helpers) get reparented to us instead of pid 1, so we can end them."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(36, 1)  # PR_SET_CHILD_SUBREAPER
    except OSError:
        pass


def _descendants(pid: int) -> list[int]:
    out: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tasks:
        try:
            kids = Path(f"/proc/{pid}/task/{tid}/children").read_text().split()
        except OSError:
            continue
        for kid in map(int, kids):
            out.append(kid)
            out.extend(_descendants(kid))
    return out


def _end_leftovers(grace: float = 3.0) -> None:
    """SIGTERM, then SIGKILL, whatever still runs below this process (only processes we started), and reap them."""
    me = os.getpid()
    pids = _descendants(me)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            try:
                while os.waitpid(-1, os.WNOHANG)[0] > 0:
                    pass
            except ChildProcessError:
                pass
            pids = _descendants(me)
            if not pids:
                return
            time.sleep(0.1)


def _run_reaped(argv: Sequence[str]) -> int:
    """Run argv (stdio inherited) as a subreaper; end and reap anything it leaves behind."""
    _become_subreaper()
    proc = subprocess.Popen(list(argv))
    try:
        return proc.wait()
    finally:
        _end_leftovers()


def _die_with_parent() -> None:  # preexec_fn: child gets SIGKILL if the supervisor dies
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


# ---------------------------------------------------------------------------------------------------------------
# Playground configuration (.m365agentsplayground.yml, schema version 0.1.1)


@dataclasses.dataclass(frozen=True)
class PlaygroundUser:
    """One user of the Playground tenant. ``id`` is the Bot Framework channel account id (activity.from.id)."""

    id: str
    name: str
    email: str
    aad_object_id: str
    given_name: str
    surname: str
    user_principal_name: str | None = None

    def to_config(self) -> dict:
        return {
            "id": self.id,
            "name": self.name,
            "userPrincipleName": self.user_principal_name or self.email,  # sic: the Playground schema's spelling
            "aadObjectId": self.aad_object_id,
            "givenName": self.given_name,
            "surname": self.surname,
            "email": self.email,
        }


def _user(n: int, given: str, surname: str) -> PlaygroundUser:
    return PlaygroundUser(
        id=f"user-id-{n}",
        name=f"{given} {surname}",
        email=f"{given.lower()}.{surname.lower()}@example.com",
        aad_object_id=f"00000000-0000-0000-0000-0000000000{20 + n:02d}",
        given_name=given,
        surname=surname,
    )


DEFAULT_CURRENT_USER = _user(0, "Alex", "Wilber")
DEFAULT_USERS = (
    _user(1, "Megan", "Bowen"),
    _user(2, "Adele", "Vance"),
    _user(3, "Isaiah", "Langer"),
    _user(4, "Patti", "Fernandez"),
    _user(5, "Lynne", "Robbins"),
)


@dataclasses.dataclass
class PlaygroundConfig:
    """Everything the Playground pretends about Teams. Hard rules of Playground 0.2.x (else it never connects):
    exactly 5 ``users`` besides ``current_user``, one team, at most one channel besides General, bot name <= 42.

    The UI always acts as ``current_user``; a driver step can act as another of these users with ``as_user``.
    """

    tenant_id: str = "11111111-2222-3333-4444-555555555555"
    bot_id: str = "00000000-0000-0000-0000-00000000b0b0"
    bot_name: str = "Firebell"
    current_user: PlaygroundUser = DEFAULT_CURRENT_USER
    users: tuple[PlaygroundUser, ...] = DEFAULT_USERS
    personal_chat_id: str = "a:firebell-personal-chat"
    group_chat_id: str = "19:firebell-group-chat@thread.v2"
    group_chat_name: str = "Group Chat"
    team_id: str = "19:firebell-sre-general@thread.tacv2"  # == conversation id of the General channel
    team_name: str = "SRE Team"
    team_aad_group_id: str = "00000000-0000-0000-0000-00000000a0a0"
    channel_id: str | None = "19:firebell-incidents@thread.tacv2"
    channel_name: str | None = "Incidents"

    def all_users(self) -> list[PlaygroundUser]:
        return [self.current_user, *self.users]

    def validate(self) -> None:
        problems = []
        if len(self.users) != 5:
            problems.append(f"users must have exactly 5 entries (has {len(self.users)})")
        if len(self.bot_name) > 42:
            problems.append("bot_name longer than 42 characters")
        if (self.channel_id is None) != (self.channel_name is None):
            problems.append("channel_id and channel_name go together")
        ids = [u.id for u in self.all_users()]
        if len(set(ids)) != len(ids):
            problems.append("user ids must be unique")
        if problems:
            raise ValueError("invalid PlaygroundConfig: " + "; ".join(problems))

    def to_dict(self) -> dict:
        self.validate()
        return {
            "version": "0.1.1",
            "tenantId": self.tenant_id,
            "bot": {"id": self.bot_id, "name": self.bot_name},
            "currentUser": self.current_user.to_config(),
            "users": [u.to_config() for u in self.users],
            "personalChat": {"id": self.personal_chat_id},
            "groupChat": {"id": self.group_chat_id, "name": self.group_chat_name},
            "team": {
                "id": self.team_id,
                "name": self.team_name,
                "aadGroupId": self.team_aad_group_id,
                "channels": [{"id": self.channel_id, "name": self.channel_name}] if self.channel_id else [],
            },
        }

    def to_yaml(self) -> str:
        data = self.to_dict()
        try:
            import yaml  # PyYAML (in requirements.txt)

            return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
        except ImportError:  # JSON is valid YAML 1.2
            return json.dumps(data, indent=2)

    def write(self, directory: str | os.PathLike) -> Path:
        path = Path(directory) / ".m365agentsplayground.yml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_yaml(), encoding="utf-8")
        return path

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "PlaygroundConfig":
        kw = dict(data)
        kw["current_user"] = PlaygroundUser(**kw["current_user"])
        kw["users"] = tuple(PlaygroundUser(**u) for u in kw["users"])
        return cls(**kw)


# ---------------------------------------------------------------------------------------------------------------
# processes inside the namespace


@dataclasses.dataclass
class ServiceSpec:
    """A process to run inside the namespace (the bot, or a fake it needs).

    ``argv``/``env`` values may contain ``{bot_port}``, ``{bot_url}``, ``{playground_port}``, ``{playground_url}``,
    ``{connector_url}``, ``{artifacts_dir}``, ``{python}`` (this interpreter); relative paths are relative to the
    repository root (the default ``cwd``). Readiness: ``ready_tcp`` port accepting connections, ``ready_http``
    URL answering anything (any status), ``ready_log`` regex seen in its output; none of them: started = ready.
    For the bot, ``ready_tcp`` defaults to the bot port.
    """

    name: str
    argv: Sequence[str]
    env: Mapping[str, str] | None = None
    cwd: str | None = None
    ready_tcp: int | None = None
    ready_http: str | None = None
    ready_log: str | None = None
    ready_timeout: float = 60.0


def _fill(value: str, mapping: Mapping[str, Any]) -> str:
    for key, val in mapping.items():
        value = value.replace("{" + key + "}", str(val))
    return value


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _tcp_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


class ManagedProcess:
    """A child process (own process group, dies with the supervisor) whose output goes to ``<log_dir>/<name>.log``."""

    def __init__(self, spec: ServiceSpec, log_dir: Path, mapping: Mapping[str, Any]):
        self.spec = spec
        self.mapping = dict(mapping)
        self.log_path = Path(log_dir) / f"{spec.name}.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        _assert_isolated(f"service {self.spec.name!r}")
        argv = [_fill(str(a), self.mapping) for a in self.spec.argv]
        env = {**os.environ, **{k: _fill(str(v), self.mapping) for k, v in (self.spec.env or {}).items()}}
        env.setdefault("PYTHONUNBUFFERED", "1")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        log.write(f"$ {' '.join(argv)}\n".encode())
        log.flush()
        self.proc = subprocess.Popen(
            argv,
            cwd=self.spec.cwd or str(REPO_ROOT),
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        log.close()

    def wait_ready(self) -> None:
        spec = self.spec
        deadline = time.monotonic() + spec.ready_timeout
        pattern = re.compile(spec.ready_log) if spec.ready_log else None
        http = _fill(spec.ready_http, self.mapping) if spec.ready_http else None
        while True:
            if self.proc is None or self.proc.poll() is not None:
                code = None if self.proc is None else self.proc.returncode
                raise RuntimeError(f"{spec.name} exited early (rc={code}); log tail:\n{_tail(self.log_path)}")
            ready = True
            if spec.ready_tcp and not _tcp_open(int(spec.ready_tcp)):
                ready = False
            if ready and http:
                try:
                    urllib.request.urlopen(http, timeout=2).close()
                except urllib.error.HTTPError:
                    pass  # it answered: up
                except (urllib.error.URLError, OSError):
                    ready = False
            if ready and pattern and not pattern.search(self.log_path.read_text(errors="replace")):
                ready = False
            if ready:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{spec.name} not ready after {spec.ready_timeout}s; log tail:\n{_tail(self.log_path)}")
            time.sleep(0.2)

    def stop(self, grace: float = 8.0) -> None:
        if self.proc is not None:
            _terminate_group(self.proc, grace)


class Playground:
    """The Microsoft 365 Agents Playground CLI (``agentsplayground start``), inside the namespace.

    Quirks handled here: it reads ``.m365agentsplayground.yml`` from its working directory; its errors (e.g. a
    config that breaks the schema) only go to its log file (``./devTools/m365agentsplayground.log`` by default,
    here pinned with M365_AGENTS_PLAYGROUND_LOGFILE); it prints ``Listening on N`` (N may differ from the port
    asked for when that one is taken) and only then validates the config.
    """

    def __init__(
        self,
        config: PlaygroundConfig,
        workdir: str | os.PathLike,
        *,
        bot_endpoint: str,
        port: int = DEFAULT_PLAYGROUND_PORT,
        channel_id: str = "msteams",
        extra_args: Sequence[str] = (),
    ):
        self.config = config
        self.workdir = Path(workdir)
        self.bot_endpoint = bot_endpoint
        self.requested_port = port
        self.channel_id = channel_id
        self.extra_args = list(extra_args)
        self.port: int | None = None
        self.proc: subprocess.Popen | None = None
        self.stdout_path = self.workdir / "playground.out"
        self.log_path = self.workdir / "m365agentsplayground.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def connector_url(self) -> str:
        """serviceUrl the Playground puts in activities (note: ``localhost``, not 127.0.0.1)."""
        return f"http://localhost:{self.port}/_connector"

    def start(self, timeout: float = 60.0) -> str:
        _assert_isolated("the Playground")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config.write(self.workdir)
        env = {
            **os.environ,
            "TEAMSAPPTESTER_BROWSER": "none",
            "M365_AGENTS_PLAYGROUND_LOGFILE": str(self.log_path),
        }
        argv = [
            shutil.which("node") or "node", str(PLAYGROUND_CLI), "start",
            "-e", self.bot_endpoint, "-p", str(self.requested_port), "-c", self.channel_id,
            "--disable-telemetry", *self.extra_args,
        ]
        with open(self.stdout_path, "wb") as out:
            self.proc = subprocess.Popen(
                argv, cwd=self.workdir, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, preexec_fn=_die_with_parent,
            )
        deadline = time.monotonic() + timeout
        while self.port is None:
            m = re.search(r"Listening on (\d+)", self.stdout_path.read_text(errors="replace"))
            if m:
                self.port = int(m.group(1))
                break
            self._check_alive()
            if time.monotonic() > deadline:
                raise TimeoutError(f"Playground did not print 'Listening on N' in {timeout}s\n{self.diagnostics()}")
            time.sleep(0.1)
        # 'Listening' comes before the config is parsed; a bad config makes it exit a moment later.
        while True:
            self._check_alive()
            try:
                with urllib.request.urlopen(f"{self.url}/_internal/v1/config", timeout=2) as r:
                    if r.status == 200 and json.load(r).get("config"):
                        break
            except (urllib.error.URLError, OSError, ValueError):
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"Playground config endpoint not ready in {timeout}s\n{self.diagnostics()}")
            time.sleep(0.2)
        time.sleep(0.5)
        self._check_alive()
        return self.url

    def _check_alive(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            raise RuntimeError(f"Playground exited (rc={self.proc and self.proc.returncode})\n{self.diagnostics()}")

    def diagnostics(self) -> str:
        return (
            f"--- {self.stdout_path} ---\n{_tail(self.stdout_path)}\n"
            f"--- {self.log_path} (Playground log: errors only show up here) ---\n{_tail(self.log_path, 60)}"
        )

    def stop(self, grace: float = 8.0) -> None:
        if self.proc is not None:
            _terminate_group(self.proc, grace)


# ---------------------------------------------------------------------------------------------------------------
# scenario API (outside the namespace)


@dataclasses.dataclass
class ScenarioResult:
    ok: bool
    steps: list[dict]
    failed_step: dict | None
    error: str | None
    artifacts_dir: Path
    logs: dict[str, str]
    returncode: int
    raw: dict

    def step(self, key: int | str) -> dict:
        """A step's result by 1-based index or by name (the ``name`` given in the step, else its action)."""
        for s in self.steps:
            if s["index"] == key or s["name"] == key:
                return s
        raise KeyError(key)

    def describe_failure(self) -> str:
        lines = []
        if self.failed_step:
            fs = self.failed_step
            lines.append(f"e2e step {fs['index']} {fs['name']!r} ({fs['action']}) FAILED: {fs['error']}")
            lines.append(f"screenshot: {fs.get('screenshot')}")
        if self.error:
            lines.append(f"error: {self.error}")
        lines.append(f"artifacts: {self.artifacts_dir}")
        for name, path in self.logs.items():
            tail = _tail(Path(path), 25)
            if tail:
                lines.append(f"--- {name}: {path} (tail) ---\n{tail}")
        return "\n".join(lines)

    def assert_ok(self) -> "ScenarioResult":
        if not self.ok:
            raise AssertionError(self.describe_failure())
        return self


def default_artifacts_dir(name: str) -> Path:
    return ARTIFACTS_ROOT / re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_")


def run_scenario(
    steps: Sequence[Mapping[str, Any]],
    *,
    bot: ServiceSpec,
    services: Iterable[ServiceSpec] = (),
    config: PlaygroundConfig | None = None,
    artifacts_dir: str | os.PathLike | None = None,
    name: str = "scenario",
    bot_port: int = DEFAULT_BOT_PORT,
    bot_path: str = "/api/messages",
    playground_port: int = DEFAULT_PLAYGROUND_PORT,
    timeout: float = 600.0,
    default_timeout_ms: int = 20000,
    screenshot_each: bool = True,
    keep_log_panel: bool = False,
    extra_vars: Mapping[str, Any] | None = None,
) -> ScenarioResult:
    """Run ``steps`` (see README "Scenario steps") against ``bot`` in the Playground; never raises on step
    failure (use ``.assert_ok()``), raises only on harness misuse. The namespace is fresh, so fixed ports are
    fine: nothing else listens there."""
    config = config or PlaygroundConfig()
    config.validate()
    art = Path(artifacts_dir) if artifacts_dir else default_artifacts_dir(name)
    if art.exists() and any(art.iterdir()):
        if not (art / "job.json").exists():
            raise ValueError(f"artifacts_dir {art} is not empty and is not a previous scenario's folder")
        shutil.rmtree(art)
    art.mkdir(parents=True, exist_ok=True)
    bot_spec = dataclasses.replace(bot, ready_tcp=bot.ready_tcp or bot_port)
    job = {
        "artifacts_dir": str(art),
        "config": dataclasses.asdict(config),
        "bot": dataclasses.asdict(bot_spec),
        "services": [dataclasses.asdict(s) for s in services],
        "bot_port": bot_port,
        "bot_path": bot_path,
        "playground_port": playground_port,
        "timeout": timeout,
        "default_timeout_ms": default_timeout_ms,
        "screenshot_each": screenshot_each,
        "keep_log_panel": keep_log_panel,
        "extra_vars": dict(extra_vars or {}),
        "steps": [dict(s) for s in steps],
    }
    job_path = art / "job.json"
    job_path.write_text(json.dumps(job, indent=2))
    try:
        proc = run_in_loopback_namespace(
            [sys.executable, str(Path(__file__).resolve()), "_inside", str(job_path)],
            cwd=REPO_ROOT,
            timeout=timeout + 60,
            capture_output=True,
        )
        rc, out, err = proc.returncode, proc.stdout, proc.stderr
    except subprocess.TimeoutExpired as exc:
        rc, out, err = -1, str(exc.stdout or ""), f"harness: scenario timed out after {timeout + 60}s"
    (art / "logs").mkdir(exist_ok=True)
    (art / "logs" / "supervisor.log").write_text(f"{out or ''}\n--- stderr ---\n{err or ''}")
    raw: dict = {}
    if (art / "result.json").exists():
        raw = json.loads((art / "result.json").read_text())
    supervisor = json.loads((art / "supervisor.json").read_text()) if (art / "supervisor.json").exists() else {}
    logs = {p.name: str(p) for p in sorted((art / "logs").glob("*")) if p.is_file()}
    for extra in ("playground/m365agentsplayground.log", "playground/playground.out"):
        if (art / extra).exists():
            logs[extra] = str(art / extra)
    error = raw.get("error") or supervisor.get("error")
    if not raw and not error:
        error = f"no result (rc={rc}); supervisor stderr tail:\n{(err or '')[-3000:]}"
    return ScenarioResult(
        ok=bool(raw.get("ok")) and not supervisor.get("error") and rc == 0,
        steps=raw.get("steps", []),
        failed_step=raw.get("failed_step"),
        error=error,
        artifacts_dir=art,
        logs=logs,
        returncode=rc,
        raw=raw,
    )


# ---------------------------------------------------------------------------------------------------------------
# card renderer check (C)


def render_cards(
    cards: Mapping[str, Any],
    artifacts_dir: str | os.PathLike | None = None,
    *,
    host_config: str = "light",
    timeout: float = 300.0,
) -> dict:
    """Parse (schema 1.5), validate and render each Adaptive Card with Microsoft's ``adaptivecards`` SDK and the
    Teams host config, in headless Chromium inside a loopback-only namespace; screenshots go to
    ``<artifacts>/cards/<name>.png``. Returns the JSON report (see render_cards.mjs): ``{"ok": bool, "cards":
    {name: {"ok", "errors": [...], "warnings": [...], "screenshot", "size_bytes", ...}}}``.
    """
    art = Path(artifacts_dir) if artifacts_dir else ARTIFACTS_ROOT / "cards-check"
    art.mkdir(parents=True, exist_ok=True)
    cards_path = art / "cards-input.json"
    cards_path.write_text(json.dumps(cards, indent=2, ensure_ascii=False))
    report_path = art / "cards-report.json"
    if report_path.exists():
        report_path.unlink()
    proc = run_in_loopback_namespace(
        [sys.executable, str(Path(__file__).resolve()), "_run", shutil.which("node") or "node", str(RENDER_CARDS),
         str(cards_path), str(art / "cards"), str(report_path), "--host-config", host_config],
        cwd=E2E_DIR,
        timeout=timeout,
        capture_output=True,
    )
    if not report_path.exists():
        raise RuntimeError(f"render_cards.mjs produced no report (rc={proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return json.loads(report_path.read_text())


# as_user on `send` steps: the Playground sends a typed message to the bot as its current user whatever the web
# client says (only invokes take the client's `from`). The relay sits between the Playground and the bot and, when
# the driver arms it for one step, rewrites `from` of the next message activity to that user.


class AsUserRelay:
    """Forward every request to the bot unchanged, except: ``POST /_e2e/as_user`` {id, name, aadObjectId, text}
    arms it, ``DELETE`` disarms it, ``GET`` says whether it is still armed; while armed, the next ``type: message``
    activity whose text contains ``text`` is sent as that user (and the relay disarms)."""

    CONTROL = "/_e2e/as_user"

    def __init__(self, bot_base: str):
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.bot_base = bot_base.rstrip("/")
        self.armed: dict | None = None
        self.rewritten: list[dict] = []
        self._lock = threading.Lock()
        relay = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet: the Playground and bot logs say enough
                pass

            def _forward(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if self.path == relay.CONTROL:
                    with relay._lock:
                        if self.command == "GET":  # {"armed": bool}: false once the message went through
                            out = json.dumps({"armed": relay.armed is not None}).encode()
                            self.send_response(200)
                            self.send_header("Content-Type", "application/json")
                            self.send_header("Content-Length", str(len(out)))
                            self.end_headers()
                            self.wfile.write(out)
                            return
                        relay.armed = json.loads(body) if self.command == "POST" else None
                    self.send_response(204)
                    self.end_headers()
                    return
                body = relay.rewrite(body)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                req = urllib.request.Request(relay.bot_base + self.path, data=body if body else None,
                                             headers=headers, method=self.command)
                try:
                    with urllib.request.urlopen(req, timeout=60) as resp:
                        status, out, out_headers = resp.status, resp.read(), resp.headers
                except urllib.error.HTTPError as err:
                    status, out, out_headers = err.code, err.read(), err.headers
                except OSError as err:
                    status, out, out_headers = 502, str(err).encode(), {}
                self.send_response(status)
                for k, v in out_headers.items():
                    if k.lower() not in ("content-length", "transfer-encoding", "connection", "date", "server"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, name="as-user-relay", daemon=True)

    def rewrite(self, body: bytes) -> bytes:
        with self._lock:
            user = self.armed
            if not user or not body:
                return body
            try:
                activity = json.loads(body)
            except ValueError:
                return body
            if not isinstance(activity, dict) or activity.get("type") != "message" \
                    or user.get("text", "") not in str(activity.get("text") or ""):
                return body
            self.armed = None  # one message per step
        activity["from"] = {**(activity.get("from") or {}), "id": user["id"], "name": user["name"],
                            "aadObjectId": user.get("aadObjectId")}
        self.rewritten.append({"text": activity.get("text"), "from": activity["from"]})
        return json.dumps(activity).encode()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# ---------------------------------------------------------------------------------------------------------------
# supervisor (inside the namespace)


def _inside(job_path: str) -> int:
    job = json.loads(Path(job_path).read_text())
    art = Path(job["artifacts_dir"])
    logs = art / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + float(job["timeout"])
    config = PlaygroundConfig.from_dict(job["config"])
    bot_port = int(job["bot_port"])
    pg_port = int(job["playground_port"])
    mapping = {
        "bot_port": bot_port,
        "bot_url": f"http://127.0.0.1:{bot_port}",
        "playground_port": pg_port,
        "playground_url": f"http://127.0.0.1:{pg_port}",
        "connector_url": f"http://localhost:{pg_port}/_connector",
        "artifacts_dir": str(art),
        "python": sys.executable,
        **job.get("extra_vars", {}),
    }
    started: list[Any] = []
    supervisor: dict[str, Any] = {"error": None}

    def on_term(signum, _frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)
    _become_subreaper()
    rc = 2
    try:
        for svc in [*job["services"], job["bot"]]:
            proc = ManagedProcess(ServiceSpec(**svc), logs, mapping)
            started.append(proc)
            proc.start()
            proc.wait_ready()
        relay = AsUserRelay(f"http://127.0.0.1:{bot_port}")
        relay.start()
        started.append(relay)
        pg = Playground(config, art / "playground", bot_endpoint=f"{relay.url}{job['bot_path']}", port=pg_port)
        started.append(pg)
        pg.start()
        mapping.update(playground_port=pg.port, playground_url=pg.url, connector_url=pg.connector_url)
        driver_job = {
            "playground_url": pg.url,
            "as_user_url": relay.url + AsUserRelay.CONTROL,
            "bot_name": config.bot_name,
            "team_name": config.team_name,
            "users": [u.to_config() for u in config.all_users()],
            "artifacts_dir": str(art),
            "result_path": str(art / "result.json"),
            "default_timeout_ms": job["default_timeout_ms"],
            "screenshot_each": job["screenshot_each"],
            "keep_log_panel": job["keep_log_panel"],
            "vars": {k: v for k, v in mapping.items() if isinstance(v, (str, int, float))},
            "steps": job["steps"],
        }
        driver_job_path = art / "driver-job.json"
        driver_job_path.write_text(json.dumps(driver_job, indent=2))
        remaining = max(10.0, deadline - time.monotonic())
        with open(logs / "driver.log", "wb") as dlog:
            driver = subprocess.Popen(
                [shutil.which("node") or "node", str(DRIVER), str(driver_job_path)], cwd=E2E_DIR,
                stdout=dlog, stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=_die_with_parent,
            )
            started.append(driver)
            try:
                rc = driver.wait(timeout=remaining)
            except subprocess.TimeoutExpired:
                supervisor["error"] = f"scenario timed out after {job['timeout']}s (driver killed)"
                rc = 3
    except BaseException as exc:  # noqa: BLE001 - report everything, then clean up
        supervisor["error"] = f"{type(exc).__name__}: {exc}"
        rc = 2
    finally:
        for item in reversed(started):
            try:
                if isinstance(item, subprocess.Popen):
                    _terminate_group(item, 5)
                else:
                    item.stop()
            except Exception as exc:  # noqa: BLE001
                print(f"harness: stop failed: {exc!r}", file=sys.stderr)
        _end_leftovers()
        (art / "supervisor.json").write_text(json.dumps(supervisor, indent=2))
    return rc


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "_inside":
        return _inside(argv[1])
    if argv and argv[0] == "_run":
        return _run_reaped(argv[1:])
    parser = argparse.ArgumentParser(description="Run an e2e scenario JSON file against a bot in the Playground.")
    parser.add_argument("scenario", help='JSON file: {"steps": [...], "bot": {"argv": [...], "env": {...}}}')
    parser.add_argument("--artifacts", default=None)
    args = parser.parse_args(argv)
    spec = json.loads(Path(args.scenario).read_text())
    missing = missing_prerequisites()
    if missing:
        print("missing prerequisites:\n  " + "\n  ".join(missing), file=sys.stderr)
        return 2
    bot = ServiceSpec(name="bot", **spec["bot"])
    services = [ServiceSpec(**s) for s in spec.get("services", [])]
    result = run_scenario(
        spec["steps"], bot=bot, services=services, artifacts_dir=args.artifacts,
        name=Path(args.scenario).stem, **spec.get("options", {}),
    )
    for s in result.steps:
        print(f"{'ok  ' if s['ok'] else 'FAIL'} {s['index']:>2} {s['name']:<30} {s['ms']:>6} ms  {s.get('error') or ''}")
    print(("PASSED" if result.ok else "FAILED\n" + result.describe_failure()) + f"\nartifacts: {result.artifacts_dir}")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
