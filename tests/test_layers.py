"""The layer rules of ARCHITECTURE (an import linter over the package's own source, with ast)."""

from __future__ import annotations

import ast
import functools
import subprocess
import sys
from pathlib import Path

import pytest

SERVICE = Path(__file__).resolve().parents[1] / "service"
DOMAINS = ("tenants", "mirror", "campaigns", "monitoring", "notifications")


def _module(path: Path) -> str:
    parts = path.relative_to(SERVICE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@functools.cache
def trees() -> dict[Path, ast.Module]:
    """Every source file of ``service``, parsed once per test run."""
    return {path: ast.parse(path.read_text(), filename=str(path)) for path in sorted(SERVICE.rglob("*.py"))}


@functools.cache
def imports() -> dict[str, set[str]]:
    """Every module of ``service`` and the modules it imports (at any depth of the file, TYPE_CHECKING too)."""
    found: dict[str, set[str]] = {}
    for path, tree in trees().items():
        names: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
                names.update(f"{node.module}.{alias.name}" for alias in node.names)
        found[_module(path)] = names
    return found


# Parse while the test module is collected, before any test runs: CPython 3.11's ast.parse can fail with
# "AST constructor recursion depth mismatch" once an earlier test in the process has caught a RecursionError.
imports()


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def offenders(importer: str, forbidden: str, *, except_for: tuple[str, ...] = ()) -> list[str]:
    return sorted(f"{module} imports {name}" for module, names in imports().items()
                  if _within(module, importer) and not any(_within(module, allowed) for allowed in except_for)
                  for name in names if _within(name, forbidden))


@pytest.mark.parametrize(("importer", "forbidden"), [
    ("service.gql", "service.api"),  # the two HTTP adapters share service.authn, not each other
    ("service.api", "service.gql"),
    *[(f"service.{domain}", adapter) for domain in DOMAINS
      for adapter in ("service.api", "service.gql", "litestar", "strawberry", "service.cli")],
    *[("service.core", upper) for upper in ("service.tenants", "service.mirror", "service.api", "service.gql",
                                             "service.db", "service.upstream")],
    ("service.simulator", "service.tenants"), ("service.simulator", "service.mirror"),
    ("service.givenergy", "service.tenants"), ("service.givenergy", "service.mirror"),
    # Job declarations and queues know no domain; the worker adapter assembles the domains' jobs, and no domain
    # reaches back into it (a domain declares jobs with service.jobs and defers them, it never builds a worker).
    *[("service.jobs", f"service.{domain}") for domain in DOMAINS],
    *[(f"service.{domain}", "service.worker") for domain in DOMAINS],
    # Reconciliation is pure functions over value types: no ORM.
    ("service.mirror.reconcile", "service.db"),
])
def test_layer_rule(importer: str, forbidden: str) -> None:
    assert offenders(importer, forbidden) == []


def _is_type_checking(node: ast.stmt) -> bool:
    test = node.test if isinstance(node, ast.If) else None
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _load_time_names(body: list[ast.stmt]) -> set[str]:
    """What a module body imports when the module is loaded: its top-level imports, also inside ``if``/``try``
    blocks, but not those under ``if TYPE_CHECKING`` nor inside functions (they run later, if ever)."""
    names: set[str] = set()
    for node in body:
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.If) and not _is_type_checking(node):
            names |= _load_time_names(node.body) | _load_time_names(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody, *(handler.body for handler in node.handlers)):
                names |= _load_time_names(block)
    return names


@functools.cache
def load_time_imports() -> dict[str, set[str]]:
    """Every module of ``service`` and the modules of ``service`` it loads with it, directly or through others
    (an imported module's enclosing packages are loaded too)."""
    known = {_module(path) for path in trees()}
    direct: dict[str, set[str]] = {}
    for path, tree in trees().items():
        modules: set[str] = set()
        for name in _load_time_names(tree.body):
            parts = name.split(".")
            modules.update(".".join(parts[:depth]) for depth in range(1, len(parts) + 1))
        direct[_module(path)] = modules & known
    closure: dict[str, set[str]] = {}
    for module in direct:
        seen: set[str] = set()
        todo = [module]
        while todo:
            for name in direct[todo.pop()] - seen:
                seen.add(name)
                todo.append(name)
        closure[module] = seen
    return closure


@pytest.mark.parametrize("domain", DOMAINS)
def test_job_declarations_load_no_domain_even_indirectly(domain: str) -> None:
    # A direct-import rule misses service.jobs -> service.runtime -> service.upstream -> service.tenants.
    loaded = sorted(f"{module} loads {name}" for module, names in load_time_imports().items()
                    if _within(module, "service.jobs") for name in names if _within(name, f"service.{domain}"))
    assert loaded == []


def test_controllers_do_not_import_each_other() -> None:
    graph = imports()
    controllers = {module for module, names in graph.items()
                   if _within(module, "service.api") and "litestar.Controller" in names}
    assert len(controllers) >= 5
    crossing = sorted(f"{module} imports {name}" for module in controllers for name in graph[module]
                      if any(_within(name, other) for other in controllers - {module}))
    assert crossing == []


def test_the_role_enum_is_not_an_orm_concept() -> None:
    # Domain code and adapters take Role from service.core.roles; the ORM only stores it.
    assert offenders("service", "service.db.models.api_key.Role") == []


def test_the_worker_registry_loads_first_in_a_fresh_interpreter() -> None:
    """The registry loads every domain's jobs; loaded before anything else (as a worker or a script may load it),
    an import cycle between domains would fail on a partially initialised module."""
    loaded = subprocess.run([sys.executable, "-c", "import service.worker.registry"], capture_output=True,
                            text=True, check=False, cwd=SERVICE.parent)
    assert loaded.returncode == 0, loaded.stderr
