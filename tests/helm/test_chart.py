"""The Helm chart, checked without the ``helm`` binary (``helm/check.sh`` renders and validates it where helm
is installed): values against the schema, every values path the templates use, YAML shape, and the settings
a platform engineer relies on (probes, hooks, security context, no generated keys)."""

from __future__ import annotations

import copy
import re
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.helm import chart
from tests.test_readme import environment_variables


def _validator() -> jsonschema.Draft7Validator:
    schema = chart.schema()
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def _errors(values: dict[str, Any]) -> list[str]:
    return [error.message for error in _validator().iter_errors(values)]


def test_the_default_values_validate_against_the_schema() -> None:
    assert _errors(chart.values()) == []


@pytest.mark.parametrize("values_file", sorted((chart.CHART / "ci").glob("*-values.yaml")), ids=lambda path: path.name)
def test_the_example_values_files_validate(values_file: Path) -> None:
    """The files helm/check.sh renders with (and the README points to)."""
    assert _errors(chart.merged(chart.values(), yaml.safe_load(values_file.read_text()))) == []


def test_the_readme_values_example_validates() -> None:
    readme = (chart.ROOT / "README.md").read_text()
    section = readme.split("## Run on Kubernetes", 1)[1].split("\n## ", 1)[0]
    (example,) = [block for block in re.findall(r"```yaml\n(.*?)```", section, re.DOTALL)
                  if block.startswith("# values-prod.yaml")]
    values = chart.merged(chart.values(), yaml.safe_load(example))
    assert values["secrets"]["existingSecret"]
    assert _errors(values) == []


def _changed(path: str, value: Any) -> dict[str, Any]:
    values = copy.deepcopy(chart.values())
    *parents, last = path.split(".")
    node = values
    for part in parents:
        node = node[part]
    node[last] = value
    return values


@pytest.mark.parametrize(("path", "value"), [
    ("workers.bulk.queues", ["bulk", "everything"]),  # no such queue
    ("workers.bulk.queues", []),
    ("workers.bulk.replicas", "two"),
    ("config", {"GIVFLEET_DATABASE_URL": "postgresql://u:p@db/givfleet"}),  # a secret among plain settings
    ("config", {"GIVFLEET_SECURITY__GENERATE_KEY_FILE": "true"}),  # pods must never invent a key
    ("config", {"LOG_LEVEL": "INFO"}),  # not a givfleet setting
    ("secrets.encryptionKeys", {"k1": "not base64 of 32 bytes"}),
    ("secrets.databaseUrl", "mysql://db/givfleet"),
    ("api.podDisruptionBudget", {"enabled": True, "minAvailable": 1, "maxUnavailable": 1}),
    ("api.db", {"poolSize": 0, "maxOverflow": 5}),
    ("image.pullPolicy", "Sometimes"),
    ("simulator.clockSpeed", 0),
    ("no_such_value", True),  # a typo in a values file is an error, not silently ignored
])
def test_the_schema_refuses_wrong_values(path: str, value: Any) -> None:
    assert _errors(_changed(path, value)) != []


def test_chart_app_version_is_the_package_version() -> None:
    project = tomllib.loads((chart.ROOT / "pyproject.toml").read_text())["project"]
    chart_yaml = yaml.safe_load((chart.CHART / "Chart.yaml").read_text())
    assert chart_yaml["apiVersion"] == "v2"
    assert chart_yaml["appVersion"] == project["version"]


@pytest.mark.parametrize("template", chart.all_templates(), ids=lambda path: path.name)
def test_every_values_path_a_template_uses_exists_in_values_yaml(template: Path) -> None:
    values = chart.values()
    missing = [".".join(path) for path in chart.values_paths(template.read_text()) if not chart.resolve(values, path)]
    assert missing == []


def test_worker_group_fields_the_templates_use_exist_in_every_group() -> None:
    used = set()
    for template in chart.all_templates():
        used |= set(re.findall(r"\$group\.([A-Za-z]+)", template.read_text()))
    assert used  # the templates do read worker groups
    for name, group in chart.values()["workers"].items():
        assert used - set(group) == set(), name


@pytest.mark.parametrize("template", chart.manifest_templates(), ids=lambda path: path.name)
def test_every_template_is_yaml_of_kubernetes_objects(template: Path) -> None:
    documents = chart.documents(template)
    assert documents
    for document in documents:
        assert {"apiVersion", "kind", "metadata"} <= set(document)


def _objects() -> dict[tuple[str, str], dict[str, Any]]:
    """Manifests by (template file, kind)."""
    return {(path.name, document["kind"]): document
            for path in chart.manifest_templates() for document in chart.documents(path)}


def test_api_probes_liveness_on_healthz_and_readiness_on_readyz() -> None:
    (container,) = _objects()[("api-deployment.yaml", "Deployment")]["spec"]["template"]["spec"]["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"


def test_migrations_run_as_a_pre_install_and_pre_upgrade_hook() -> None:
    job = _objects()[("migrations-job.yaml", "Job")]
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["migrate", "upgrade"]
    # The chart-made Secret the Job reads must exist first: it is a hook of a lower weight.
    secret = _objects()[("secret.yaml", "Secret")]["metadata"]["annotations"]
    assert secret["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert int(secret["helm.sh/hook-weight"]) < int(job["metadata"]["annotations"]["helm.sh/hook-weight"])


def test_every_container_is_locked_down_and_writes_only_to_volumes() -> None:
    values = chart.values()
    assert values["securityContext"]["readOnlyRootFilesystem"] is True
    assert values["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert values["securityContext"]["allowPrivilegeEscalation"] is False
    assert values["podSecurityContext"]["runAsNonRoot"] is True
    mounts = {mount["name"]: mount["mountPath"] for mount in chart.defined("givfleet.volumeMounts")}
    assert mounts == {"home": "/var/lib/givfleet", "tmp": "/tmp"}  # noqa: S108 - an emptyDir
    assert {volume["name"] for volume in chart.defined("givfleet.volumes") if "emptyDir" in volume} == set(mounts)
    seen = set()
    for name, container in chart.containers():
        seen.add(name)
        text = (chart.TEMPLATES / name).read_text()
        assert "securityContext" in container, name
        assert re.search(r"securityContext:\n\s*{{- toYaml \$?\.Values\.securityContext ", text), name
        assert re.search(r"volumeMounts:\n\s*{{- include \"givfleet.volumeMounts\" ", text), name
    assert seen == {"api-deployment.yaml", "worker-deployments.yaml", "migrations-job.yaml", "simulator.yaml"}


def test_secret_settings_come_from_the_secret_and_key_generation_is_off() -> None:
    env = chart.defined("givfleet.secretEnv")
    assert {entry["name"]: entry["valueFrom"]["secretKeyRef"]["key"] for entry in env} == {
        "GIVFLEET_DATABASE_URL": "database-url",
        "GIVFLEET_REDIS_URL": "redis-url",
        "GIVFLEET_SECURITY__ENCRYPTION_KEYS": "encryption-keys",
    }
    helpers = (chart.TEMPLATES / "_helpers.tpl").read_text()
    assert 'set $settings "GIVFLEET_SECURITY__GENERATE_KEY_FILE" "false"' in helpers
    assert '{{- fail "givfleet: set secrets.existingSecret' in helpers


def test_default_values_run_one_worker_deployment_per_queue_group_covering_every_queue() -> None:
    groups = {name: group["queues"] for name, group in chart.values()["workers"].items() if group["enabled"]}
    assert groups == {"control-monitor": ["control", "monitor"], "bulk": ["bulk"], "notify": ["notify"]}
    served = {queue for queues in groups.values() for queue in queues}
    assert served == set(chart.schema()["definitions"]["queue"]["enum"])


def test_the_simulator_is_off_by_default() -> None:
    assert chart.values()["simulator"]["enabled"] is False


def test_every_setting_the_chart_sets_is_a_givfleet_setting() -> None:
    """A misspelt GIVFLEET_ variable is ignored by the app: the chart must only set real ones."""
    known = set(environment_variables())
    texts = [path.read_text() for path in chart.all_templates()]
    named = {name for text in texts for name in re.findall(r"\b(GIVFLEET_[A-Z0-9_]+)\b", text)}
    named |= set(chart.values()["config"])
    assert len(named) > 10
    assert sorted(named - known) == []
