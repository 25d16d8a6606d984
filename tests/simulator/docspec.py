"""Read the upstream documentation into checkable expectations (endpoints, badges, example shapes).

Nothing here looks at the simulator: every expectation comes from ``givenergy-cloud-api-v1.txt`` and
``givenergy-legacy-api.txt``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ACCOUNT_TYPES = ("customer", "engineer", "company", "distributor")


@dataclass
class Endpoint:
    """One documented v1 endpoint."""

    title: str
    method: str
    path: str
    scopes: tuple[str, ...]
    account_type: str
    plus: bool
    only: bool
    approved: bool
    custom_limit: tuple[int, int] | None
    paginated: bool
    example: Any
    text: str = field(repr=False, default="")

    @property
    def key(self) -> str:
        """Title, disambiguated by scope where two endpoints share one (EV and inverter ``Get Data Points``)."""
        return f"{self.title} [{self.scopes[0]}]" if self.title == "Get Data Points" else self.title


def _clean_json(lines: list[str]) -> Any:
    text = "\n".join(line for line in lines if line.strip() != "...")
    text = re.sub(r",(\s*[}\]])", r"\1", text)
    return json.loads(text)


_TYPE_SAMPLES: dict[str, Any] = {"datetime": "", "string": "", "integer": 0, "object": {}, "boolean": True}


def _from_response_fields(lines: list[str]) -> Any:
    """Build an example shape from a ``Response Fields`` list (name, type, description triples)."""
    shape: dict[str, Any] = {}
    names = [(lines[i], lines[i + 1]) for i in range(0, len(lines) - 1) if re.fullmatch(r"data(\[\]\.\w+)?", lines[i])]
    item: dict[str, Any] = {}
    for name, kind in names:
        if name == "data":
            continue
        item[name.split(".", 1)[1]] = _TYPE_SAMPLES.get(kind)
    shape["data"] = [item]
    return shape


def parse_v1(path: Path) -> list[Endpoint]:
    """Every endpoint section of the v1 documentation."""
    lines = path.read_text(encoding="utf-8").splitlines()
    starts = [
        i
        for i in range(len(lines) - 1)
        if lines[i + 1].startswith("requires authentication") and "|" not in lines[i + 1]
    ]
    endpoints = []
    for number, start in enumerate(starts):
        end = starts[number + 1] if number + 1 < len(starts) else len(lines)
        endpoints.append(_endpoint(lines[start], lines[start + 1 : end]))
    return endpoints


def _endpoint(title: str, body: list[str]) -> Endpoint:
    request_at = body.index("Example request:")
    badges = " ".join(body[:request_at])
    account = re.search(r"account type: (\w+)(\+| only)?", badges)
    scopes = re.search(r"scopes?: ([\w:\-]+(?:, [\w:\-]+)*)", badges)
    limit = re.search(r"rate limited: (\d+),(\d+)", badges)
    curl = next(line for line in body if line.startswith("curl --request"))
    method = curl.split()[2]
    url_line = next(line for line in body[request_at:] if "https://api.givenergy.cloud/v1/" in line)
    url = re.search(r"https://api\.givenergy\.cloud/v1(/[^\"' ?]*)(\?[^\"' ]*)?", url_line)
    if url is None or account is None or scopes is None:
        raise ValueError(f"cannot read the badges or URL of {title!r}")
    example_at = next(i for i, line in enumerate(body) if line.startswith("Example response ("))
    example_end = next(
        i for i in range(example_at + 1, len(body)) if body[i].startswith(("Received response", "Example response ("))
    )
    block = body[example_at + 1 : example_end]
    try:
        example = _clean_json(block)
    except json.JSONDecodeError:
        fields_at = body.index("Response Fields")
        example = _from_response_fields(body[fields_at + 1 :])
    return Endpoint(
        title=title,
        method=method,
        path=url.group(1),
        scopes=tuple(scope.strip() for scope in scopes.group(1).split(",")),
        account_type=account.group(1),
        plus=account.group(2) == "+",
        only=account.group(2) == " only",
        approved="approved users only" in badges,
        custom_limit=(int(limit.group(1)), int(limit.group(2))) if limit else None,
        paginated=bool(url.group(2) and "page=" in url.group(2)),
        example=example,
        text="\n".join(body),
    )


def pagination_example(path: Path) -> Any:
    """The example of the documentation's Pagination section (``links`` and ``meta``)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    start = lines.index("Pagination", lines.index("Data Types"))
    opening = next(i for i in range(start, len(lines)) if lines[i] == "{")
    closing = max(i for i in range(opening, lines.index("Rate Limiting", opening)) if lines[i] == "}")
    return _clean_json(lines[opening : closing + 1])


def parse_legacy(path: Path) -> dict[str, dict[str, Any]]:
    """Legacy endpoints: path -> documented return keys with example values (``modules`` nested)."""
    text = path.read_text(encoding="utf-8")
    sections = re.split(r"POST - (\S+)", text)
    result: dict[str, dict[str, Any]] = {}
    for name, body in zip(sections[1::2], sections[2::2], strict=True):
        returned = body.split("Return", 1)[1] if "Return" in body else ""
        fields: dict[str, Any] = {}
        module: dict[str, Any] = {}
        in_modules = False
        for key, raw in re.findall(r"\"(\w+)\":\s*(\"[^\"]*\"|-?[\d.]+|true|false|\[\{)", returned):
            if raw == "[{":
                in_modules = True
                continue
            value = json.loads(raw)
            (module if in_modules else fields)[key] = value
        if module:
            fields["modules"] = [module]
        result.setdefault(name, {}).update(fields)
    return result


def shape_errors(expected: Any, actual: Any, where: str = "$", loose: frozenset[str] = frozenset()) -> list[str]:
    """Differences between a documented example and an answer: missing keys and wrong types.

    ``null`` in the documentation accepts anything; ints and floats are both numbers; paths in ``loose``
    accept any scalar (documented mixed types, such as setting values).
    """
    if where in loose:
        return [] if not isinstance(actual, dict | list) else [f"{where}: expected a scalar"]
    if expected is None:
        return []
    if isinstance(expected, dict):
        return _object_errors(expected, actual, where, loose)
    if isinstance(expected, list):
        return _array_errors(expected, actual, where, loose)
    return _scalar_errors(expected, actual, where)


def _object_errors(expected: dict[str, Any], actual: Any, where: str, loose: frozenset[str]) -> list[str]:
    if not isinstance(actual, dict):
        return [f"{where}: expected an object, got {type(actual).__name__}"]
    errors = []
    for key, value in expected.items():
        if key not in actual:
            errors.append(f"{where}.{key}: missing")
        else:
            errors += shape_errors(value, actual[key], f"{where}.{key}", loose)
    return errors


def _array_errors(expected: list[Any], actual: Any, where: str, loose: frozenset[str]) -> list[str]:
    if not isinstance(actual, list):
        return [f"{where}: expected an array, got {type(actual).__name__}"]
    if not expected:
        return []
    template = expected[0]
    if isinstance(template, dict):  # documented items may differ: merge them (null anywhere = nullable)
        merged: dict[str, Any] = {}
        for item in expected:
            for key, value in item.items():
                merged[key] = None if value is None or merged.get(key, value) is None else merged.get(key, value)
        template = merged
    errors = []
    for index, item in enumerate(actual):
        errors += shape_errors(template, item, f"{where}[{index}]", loose)
    return errors


def _scalar_errors(expected: Any, actual: Any, where: str) -> list[str]:
    if isinstance(expected, bool):
        return [] if isinstance(actual, bool) else [f"{where}: expected boolean, got {actual!r}"]
    if isinstance(expected, int | float):
        ok = isinstance(actual, int | float) and not isinstance(actual, bool)
        return [] if ok else [f"{where}: expected a number, got {actual!r}"]
    if isinstance(expected, str):
        return [] if isinstance(actual, str) else [f"{where}: expected a string, got {actual!r}"]
    return []
