"""Every job declared anywhere in the service is one the workers run."""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

import service
from service.jobs.typed import JobSpec
from service.worker.registry import JOBS


def _declared_jobs() -> dict[str, JobSpec[Any]]:
    """Each module-level ``@job`` of the service, by the module that declares it (found by importing them all)."""
    declared: dict[str, JobSpec[Any]] = {}
    for module_info in pkgutil.walk_packages(service.__path__, prefix="service."):
        if module_info.name.endswith(".__main__"):
            continue
        module = importlib.import_module(module_info.name)
        for name, value in vars(module).items():
            if isinstance(value, JobSpec) and value.run.__module__ == module.__name__:
                declared[f"{module.__name__}.{name}"] = value
    return declared


def test_every_declared_job_is_registered_with_the_workers() -> None:
    declared = _declared_jobs()
    registered = {id(spec) for spec in JOBS}

    assert registered <= {id(spec) for spec in declared.values()}  # the walk found every declaration
    assert sorted(where for where, spec in declared.items() if id(spec) not in registered) == []
