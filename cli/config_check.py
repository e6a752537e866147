"""`firebell check-config`: every problem in the environment and the catalog at once, each with
the file and line it comes from, and exit 1 if there is any. Start-up refuses the same things
(app.settings_from_env, incidents.catalog); this finds them all before a deploy does."""
from __future__ import annotations

import os
import re
from pathlib import Path

import yaml

import app
from incidents.catalog import CatalogError, load_catalog

_VARIABLE = re.compile(r"^(?:Refusing to listen on )?([A-Za-z_][A-Za-z0-9_]*)")
_STEP = re.compile(r"\.?([A-Za-z_][\w-]*)|\[(\d+)\]|\s+'[^']*'")
_CALLS = re.compile(r"^service '([^']+)' calls")


def check() -> int:
    app.load_env_file()
    env = dict(os.environ)
    problems = environment_problems(env)
    catalog = (env.get("FIREBELL_CONFIG") or "").strip() or str(app.DEFAULT_CATALOG)
    problems += catalog_problems(Path(catalog))
    for where, text in problems:
        print(f"{where}: {text}")
    if problems:
        print(f"{len(problems)} problem(s)")
        return 1
    print(f"configuration OK (catalog {catalog})")
    return 0


def environment_problems(env: dict[str, str]) -> list[tuple[str, str]]:
    """settings_from_env stops at the first bad variable: drop it and ask again, so every one
    is named."""
    problems: list[tuple[str, str]] = []
    for _ in range(len(env) + 1):
        try:
            app.settings_from_env(env)
            return problems
        except SystemExit as exc:
            message = str(exc.code)
            name = _VARIABLE.match(message)
            variable = name.group(1) if name else ""
            problems.append((env_location(variable), message))
            if variable not in env:
                return problems
            env.pop(variable)
    return problems


def env_location(variable: str) -> str:
    """`.env:LINE` when a .env file sets the variable, else "environment"."""
    for path in dict.fromkeys((app.HERE / ".env", Path.cwd() / ".env")):
        if not variable or not path.is_file():
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if re.match(rf"\s*(export\s+)?{re.escape(variable)}\s*=", line):
                return f"{path}:{number}"
    return f"environment ({variable})" if variable else "environment"


def catalog_problems(path: Path) -> list[tuple[str, str]]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        return [(str(path), f"cannot read the catalog: {exc.strerror or exc}")]
    try:
        root = yaml.compose(text)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else 1
        return [(f"{path}:{line}", f"not valid YAML: {exc.problem or exc}")]
    try:
        load_catalog(path)
        return []
    except CatalogError as exc:
        return [(f"{path}:{line_of(root, problem)}", problem) for problem in exc.problems]


def line_of(root: yaml.Node | None, problem: str) -> int:
    """The line of the deepest node the problem's path (`services[2] 'x'.oncall.primary`,
    `teams.web.email`, `service 'x' calls …`) reaches."""
    if root is None:
        return 1
    node, line = root, root.start_mark.line + 1
    calls = _CALLS.match(problem)
    if calls:
        service = _service_named(root, calls.group(1))
        found = _child(service, "calls", None) if service is not None else None
        return found[1] if found else (service.start_mark.line + 1 if service else line)
    for match in _STEP.finditer(problem.split(": ", 1)[0]):
        key, index = match.group(1), match.group(2)
        if key is None and index is None:
            continue  # the quoted name after an index: `services[2] 'checkout-api'`
        found = _child(node, key, index)
        if found is None:
            break
        node, line = found
    first_word = problem.split(": ", 1)[-1].split(" ", 1)[0]  # "owner_team 'x' is not …"
    found = _child(node, first_word, None)
    return found[1] if found else line


def _child(node: yaml.Node, key: str | None, index: str | None) -> tuple[yaml.Node, int] | None:
    """The child at a key or index, and the line that names it."""
    if index is not None and isinstance(node, yaml.SequenceNode):
        i = int(index)
        return (node.value[i], node.value[i].start_mark.line + 1) if i < len(node.value) else None
    if key is not None and isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if getattr(k, "value", None) == key:
                return v, k.start_mark.line + 1
    return None


def _service_named(root: yaml.Node, name: str) -> yaml.Node | None:
    services = _child(root, "services", None)
    if services is None or not isinstance(services[0], yaml.SequenceNode):
        return None
    for item in services[0].value:
        if isinstance(item, yaml.MappingNode) and any(
                k.value == "name" and getattr(v, "value", None) == name for k, v in item.value):
            return item
    return None
