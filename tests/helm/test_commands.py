"""The command lines the image and the chart run are real ``givfleet`` commands and options (compared with the
CLI's command tree, so renaming a command or an option breaks this test, not a deployment)."""

from __future__ import annotations

import pytest

from tests.helm import chart


def test_the_checker_notices_what_the_cli_does_not_have() -> None:
    assert chart.command_problems(["serve"]) == ["givfleet has no sub-command 'serve'"]
    assert chart.command_problems(["migrate"]) == ["givfleet migrate needs a sub-command"]
    assert chart.command_problems(["api", "--workers", "4"]) == ["givfleet api has no option --workers"]
    assert chart.command_problems(["simulator", "--seed"]) == ["givfleet simulator --seed needs a value"]
    assert chart.command_problems(["migrate", "upgrade", "head"]) == []


def test_the_image_runs_givfleet_and_its_default_command_exists() -> None:
    command = chart.dockerfile_command()
    assert command[0] == "givfleet"
    assert command[1:] == ["api"]
    assert chart.command_problems(command[1:]) == []


@pytest.mark.parametrize(("template", "container"), list(chart.containers()),
                         ids=lambda value: value if isinstance(value, str) else value["name"])
def test_every_container_of_the_chart_runs_a_real_givfleet_command(template: str, container: dict[str, object]
                                                                  ) -> None:
    assert "command" not in container  # the image's entry point (givfleet) runs
    args = container["args"]
    assert isinstance(args, list)
    assert chart.command_problems(args) == []


@pytest.mark.parametrize("command", chart.notes_commands(), ids=" ".join)
def test_the_commands_notes_txt_tells_the_reader_to_run_exist(command: list[str]) -> None:
    assert command[0] == "givfleet"
    assert chart.command_problems(command[1:]) == []


def test_the_build_context_admits_exactly_what_the_dockerfile_copies() -> None:
    """.dockerignore is an allow-list: a file the build copies must be admitted, and nothing else is (no .env,
    no local key files or embedded databases reach the image)."""
    patterns = [line for line in (chart.ROOT / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    assert patterns[0] == "*"  # everything is ignored unless admitted below
    admitted = {pattern[1:].rstrip("/") for pattern in patterns if pattern.startswith("!")}
    copied = set()
    for line in (chart.ROOT / "Dockerfile").read_text().splitlines():
        words = line.split()
        if words[:1] == ["COPY"] and not any(word.startswith("--from") for word in words):
            copied |= {source.rstrip("/") for source in words[1:-1]}
    assert copied == admitted
    assert all((chart.ROOT / path).exists() for path in copied)


def test_the_image_runs_as_a_non_root_user_and_never_generates_a_key() -> None:
    dockerfile = (chart.ROOT / "Dockerfile").read_text()
    runtime = dockerfile.split(" AS runtime", 1)[1]  # the final stage
    (user,) = [line.split()[1] for line in runtime.splitlines() if line.startswith("USER ")]
    uid = runtime.split("ARG UID=", 1)[1].split()[0]
    assert user in {f"{uid}:{uid}", "${UID}:${UID}"}
    assert int(uid) > 0
    assert chart.values()["podSecurityContext"]["runAsUser"] == int(uid)  # the chart runs it as that user
    assert "GIVFLEET_SECURITY__GENERATE_KEY_FILE=false" in runtime
    assert "GIVFLEET_HOME=/var/lib/givfleet" in runtime
