"""Reading the Helm chart and the Dockerfile without the ``helm`` binary: the values, the templates with their
actions replaced by placeholders, and the ``givfleet`` command lines they run."""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer.main
import yaml

from service.cli import app

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "givfleet"
TEMPLATES = CHART / "templates"
PLACEHOLDER = "placeholder"

_ACTION = re.compile(r"{{.*?}}", re.DOTALL)
_VALUES_PATH = re.compile(r"\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)")


def values() -> dict[str, Any]:
    """The chart's default values."""
    loaded: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text())
    return loaded


def merged(defaults: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """``overrides`` deep-merged over ``defaults``, as helm merges a values file over values.yaml."""
    result = dict(defaults)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merged(result[key], value)
        else:
            result[key] = value
    return result


def schema() -> dict[str, Any]:
    """The chart's values schema."""
    loaded: dict[str, Any] = json.loads((CHART / "values.schema.json").read_text())
    return loaded


def manifest_templates() -> list[Path]:
    """The templates that render to manifests (not the helpers or NOTES.txt)."""
    return sorted(TEMPLATES.glob("*.yaml"))


def all_templates() -> list[Path]:
    """Every file of templates/, helpers and NOTES.txt included."""
    return sorted(path for path in TEMPLATES.iterdir() if path.is_file())


def with_placeholders(template: str) -> str:
    """``template`` with each line that is only template actions dropped (control flow, includes that expand to
    whole blocks) and every other action replaced by a placeholder scalar."""
    kept = []
    for line in _ACTION.sub("\0", template).splitlines():
        if "\0" in line and not line.replace("\0", "").strip():
            continue
        kept.append(line.replace("\0", PLACEHOLDER))
    return "\n".join(kept) + "\n"


def documents(path: Path) -> list[dict[str, Any]]:
    """The YAML documents of a manifest template, actions replaced by placeholders (empty documents dropped)."""
    return [document for document in yaml.safe_load_all(with_placeholders(path.read_text())) if document]


def defined(name: str) -> Any:
    """The YAML a named template of ``_helpers.tpl`` produces, actions replaced by placeholders."""
    helpers = (TEMPLATES / "_helpers.tpl").read_text()
    body = helpers.split(f'{{{{- define "{name}" -}}}}', 1)[1].split("{{- end -}}", 1)[0]
    return yaml.safe_load(with_placeholders(body))


def values_paths(text: str) -> set[tuple[str, ...]]:
    """Every ``.Values.a.b`` path a template uses, as ("a", "b")."""
    return {tuple(match.group(1).lstrip(".").split(".")) for match in _VALUES_PATH.finditer(text)}


def resolve(tree: Any, path: tuple[str, ...]) -> bool:
    """Whether ``path`` names a key of the nested mapping ``tree``."""
    for part in path:
        if not isinstance(tree, dict) or part not in tree:
            return False
        tree = tree[part]
    return True


def containers() -> Iterator[tuple[str, dict[str, Any]]]:
    """(template file name, container) for every container of every workload template."""
    for path in manifest_templates():
        for document in documents(path):
            spec = document.get("spec") or {}
            pod = ((spec.get("template") or {}).get("spec")) or {}
            for container in pod.get("containers") or []:
                yield path.name, container


def dockerfile_command() -> list[str]:
    """The image's default command line: ENTRYPOINT followed by CMD (both in exec form)."""
    instructions = {}
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        keyword, _, rest = line.partition(" ")
        if keyword in {"ENTRYPOINT", "CMD"}:
            instructions[keyword] = json.loads(rest)
    return [*instructions["ENTRYPOINT"], *instructions["CMD"]]


def notes_commands() -> list[list[str]]:
    """The ``givfleet ...`` command lines NOTES.txt tells the reader to run (after ``--`` of kubectl exec)."""
    commands = []
    for line in (TEMPLATES / "NOTES.txt").read_text().splitlines():
        if "-- givfleet " in line:
            commands.append(shlex.split(with_placeholders(line.split("-- ", 1)[1]).strip()))
    return commands


def command_problems(argv: list[str]) -> list[str]:
    """What is wrong with ``argv`` (arguments of ``givfleet``) measured against the CLI's command tree (typer's
    click commands): unknown sub-commands, unknown options, options missing their value, a group left without a
    sub-command."""
    command: Any = typer.main.get_command(app)
    words = list(argv)
    path = "givfleet"
    while hasattr(command, "commands"):  # a group
        if not words:
            return [f"{path} needs a sub-command"]
        name = words.pop(0)
        if name not in command.commands:
            return [f"{path} has no sub-command {name!r}"]
        command, path = command.commands[name], f"{path} {name}"
    options = {opt: param for param in command.params if param.param_type_name == "option"
               for opt in (*param.opts, *param.secondary_opts)}
    problems = []
    while words:
        word = words.pop(0)
        if not word.startswith("-"):
            continue  # a positional argument or a placeholder
        option = options.get(word.split("=", 1)[0])
        if option is None:
            problems.append(f"{path} has no option {word}")
        elif not option.is_flag and "=" not in word and (not words or words.pop(0).startswith("--")):
            problems.append(f"{path} {word} needs a value")
    return problems
