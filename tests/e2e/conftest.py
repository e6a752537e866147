"""Fixtures for the e2e tests (tests/e2e). The harness itself lives in harness.py."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from tests.e2e.harness import ARTIFACTS_ROOT, E2E_DIR, ServiceSpec


@pytest.fixture
def e2e_artifacts(request: pytest.FixtureRequest) -> Path:
    """Per-test artifacts folder: test-artifacts/e2e/<test name>/ (screenshots, logs, result JSON)."""
    return ARTIFACTS_ROOT / re.sub(r"[^A-Za-z0-9._-]+", "_", request.node.name).strip("_")


@pytest.fixture
def probe_bot() -> ServiceSpec:
    """The throwaway probe bot (tests/e2e/probe_bot.py) as a ServiceSpec for run_scenario()."""
    return ServiceSpec(name="bot", argv=[sys.executable, str(E2E_DIR / "probe_bot.py"), "--port", "{bot_port}"])


def pytest_terminal_summary(terminalreporter, exitstatus, config):  # noqa: ARG001 - pytest hook signature
    """Repeat missing-prerequisite skips in a red banner at the end of the run (skips must not go unnoticed)."""
    from tests.e2e.harness import SKIP_REASONS

    if SKIP_REASONS:
        terminalreporter.section("E2E TESTS SKIPPED", sep="!", red=True, bold=True)
        for reason in SKIP_REASONS:
            terminalreporter.write_line(reason, red=True, bold=True)
