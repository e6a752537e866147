"""`.env.example` and the settings code (app.py) cannot drift: the file lists exactly the
variables app.py reads, each with a one-line meaning, and the values it sets are the defaults."""
from __future__ import annotations

import ast
import re

import yaml

import app
from tests.conftest import CATALOG, REPO

EXAMPLE = REPO / ".env.example"
LINE = re.compile(r"^(# )?([A-Za-z_][A-Za-z0-9_]*)=(.*)$")
READERS = {"get", "number", "names", "schedule"}  # settings_from_env's helpers


def variables_in_code() -> set[str]:
    tree = ast.parse((REPO / "app.py").read_text())
    found = {node.args[0].value for node in ast.walk(tree)
             if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
             and node.func.id in READERS and node.args
             and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)}
    found |= set(app.BOT_FRAMEWORK_ENDPOINTS)
    beats = yaml.safe_load(CATALOG.read_text()).get("heartbeats") or []
    return found | {b["token_env"] for b in beats if b.get("token_env")}


def example_lines() -> list[tuple[int, bool, str, str]]:
    """(line number, commented out, name, value) of each variable line."""
    out = []
    for number, line in enumerate(EXAMPLE.read_text().splitlines(), 1):
        match = LINE.match(line)
        if match:
            out.append((number, bool(match.group(1)), match.group(2), match.group(3)))
    return out


def test_the_example_lists_exactly_the_variables_app_py_reads():
    listed = [name for _, _, name, _ in example_lines()]
    assert len(listed) == len(set(listed)), "a variable is listed twice"
    code = variables_in_code()
    assert sorted(code - set(listed)) == [], "read by app.py, missing from .env.example"
    assert sorted(set(listed) - code) == [], "in .env.example, never read by app.py"


def test_every_variable_has_a_one_line_meaning_above_it():
    lines = EXAMPLE.read_text().splitlines()
    for number, _, name, _ in example_lines():
        above = lines[number - 2]
        assert above.startswith("# ") and not LINE.match(above) and len(above) > 8, name


def test_the_values_it_sets_are_the_defaults():
    values = {name: value for _, commented, name, value in example_lines() if not commented}
    assert app.settings_from_env(values) == app.settings_from_env({})
