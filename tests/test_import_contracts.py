"""The import graph runs one way: the import-linter contracts in ``pyproject.toml`` hold, a module
that breaks one fails ``lint-imports`` (shown on a copy of the project with an offending module
added), and no import circle joins the project's modules (grimp's graph, lazy imports included)."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("dashboard", "workers", "models", "pages")
LINT_IMPORTS = str(Path(sys.executable).with_name("lint-imports"))


def _lint_imports(cwd: Path, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [LINT_IMPORTS, "--no-cache"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_the_project_keeps_its_import_contracts():
    result = _lint_imports(ROOT)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "BROKEN" not in result.stdout
    assert "6 kept, 0 broken" in result.stdout


@pytest.fixture(scope="module")
def project_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's packages and ``pyproject.toml`` in a temporary folder, found before the
    installed (editable) ones through ``PYTHONPATH``."""
    copy = tmp_path_factory.mktemp("project")
    for package in PACKAGES:
        shutil.copytree(ROOT / package, copy / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    return copy


@pytest.mark.parametrize(
    ("module", "source", "contract"),
    [
        (
            "dashboard/services/offender.py",
            "from pages.admin import users  # noqa: F401\n",
            "Layers: pages, the REST API and jobs use services, services use models BROKEN",
        ),
        (
            "dashboard/services/offender.py",
            "from workers import jobs  # noqa: F401\n",
            "Services and models import neither Dash, Flask nor jobs BROKEN",
        ),
        (
            "dashboard/services/offender.py",
            "from flask import request  # noqa: F401\n",
            "Services and models import neither Dash, Flask nor jobs BROKEN",
        ),
        (
            "models/offender.py",
            "import dash  # noqa: F401\n",
            "Services and models import neither Dash, Flask nor jobs BROKEN",
        ),
        (
            "workers/offender.py",
            "from pages import realtime  # noqa: F401\n",
            "Jobs never import pages BROKEN",
        ),
        (
            "dashboard/api/offender.py",
            "from workers import jobs  # noqa: F401\n",
            "The REST API imports neither pages nor jobs BROKEN",
        ),
        (
            "dashboard/services/offender.py",
            "from dashboard.services import days  # noqa: F401\n\n\ndef back() -> None:\n    pass\n",
            None,  # the control: a service importing a service breaks nothing
        ),
    ],
    ids=[
        "service-imports-page",
        "service-imports-job",
        "service-imports-flask",
        "model-imports-dash",
        "job-imports-page",
        "api-imports-job",
        "service-imports-service",
    ],
)
def test_a_module_that_reaches_the_wrong_way_fails_lint_imports(project_copy, module, source, contract):
    offender = project_copy / module
    offender.write_text(source)
    env = {**os.environ, "PYTHONPATH": str(project_copy)}
    try:
        result = _lint_imports(project_copy, env)
    finally:
        offender.unlink()

    if contract is None:
        assert result.returncode == 0, result.stdout + result.stderr
    else:
        assert result.returncode == 1, result.stdout + result.stderr
        assert contract in result.stdout
        assert module.removesuffix(".py").replace("/", ".") in result.stdout


def import_circles(graph: grimp.ImportGraph, ignored: Iterable[tuple[str, str]] = ()) -> list[list[str]]:
    """The graph's strongly connected components of more than one module (Tarjan), ``ignored``
    imports (importer, imported) left out."""
    skip = set(ignored)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in graph.find_modules_directly_imported_by(module):
            if (module, imported) in skip:
                continue
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return circles


def test_no_contract_leaves_an_import_out():
    """No contract ignores an import (``ignore_imports``): a circle or a wrong-way import is fixed,
    not listed as an exception."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]

    assert [c["name"] for c in config["contracts"] if c.get("ignore_imports")] == []


def test_no_import_circle_joins_the_project_s_modules():
    graph = grimp.build_graph(*PACKAGES, cache_dir=None)

    assert import_circles(graph) == []


def test_the_circle_finder_finds_a_circle_across_packages(tmp_path, monkeypatch):
    """A circle that crosses packages (which ``acyclic_siblings`` does not see between two root
    packages) is found, and leaving out one of its imports breaks it."""
    files = {
        "alpha/__init__.py": "from alpha import a\n",
        "alpha/a.py": "from beta import b\n",
        "beta/__init__.py": "",
        "beta/b.py": "from gamma import c\n",
        "gamma/__init__.py": "",
        "gamma/c.py": "import alpha\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(text)
    monkeypatch.syspath_prepend(str(tmp_path))
    graph = grimp.build_graph("alpha", "beta", "gamma", cache_dir=None)

    assert import_circles(graph) == [["alpha", "alpha.a", "beta.b", "gamma.c"]]
    assert import_circles(graph, [("gamma.c", "alpha")]) == []


LONG_MODULE_LINES = 600
LONG_MODULE_REASON = "Why this module is long:"


def long_modules_without_a_reason(root: Path, packages: Iterable[str]) -> list[str]:
    """Modules over ``LONG_MODULE_LINES`` lines whose docstring does not say why they are one module."""
    found = []
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            source = path.read_text()
            if source.count("\n") <= LONG_MODULE_LINES:
                continue
            docstring = ast.get_docstring(ast.parse(source)) or ""
            if LONG_MODULE_REASON not in docstring:
                found.append(str(path.relative_to(root)))
    return found


def test_a_module_over_600_lines_says_why_at_its_top():
    assert long_modules_without_a_reason(ROOT, PACKAGES) == []


def test_a_long_module_without_a_reason_is_found(tmp_path):
    (tmp_path / "pkg").mkdir()
    body = "x = 1\n" * LONG_MODULE_LINES
    (tmp_path / "pkg" / "short.py").write_text('"""Short."""\n')
    (tmp_path / "pkg" / "silent.py").write_text('"""Long, and silent about it."""\n' + body)
    (tmp_path / "pkg" / "explained.py").write_text(
        f'"""Long.\n\n{LONG_MODULE_REASON} one state machine."""\n' + body
    )

    assert long_modules_without_a_reason(tmp_path, ["pkg"]) == ["pkg/silent.py"]
