"""Input checked by a pydantic model (settings, command options) is refused in one line naming the environment
variable or option and what it expects: no traceback, no pydantic wording."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from service import cli
from service.settings import get_settings
from service.simulator import server

PYDANTIC = ("validation error", "Input should", "String should", "Field required", "errors.pydantic.dev")


@pytest.fixture(autouse=True)
def fresh_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    monkeypatch.chdir(tmp_path)  # no developer .env file
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.mark.parametrize(("variables", "line"), [
    ({"GIVFLEET_API__PORT": "abc", "GIVFLEET_SIMULATOR__ENABLED": "maybe"},
     "error: GIVFLEET_SIMULATOR__ENABLED: expected true or false; GIVFLEET_API__PORT: expected a whole number"),
    ({"GIVFLEET_SECURITY__ENCRYPTION_KEYS": "k1=abc"},
     "error: GIVFLEET_SECURITY__ENCRYPTION_KEYS: not valid JSON (Expecting value: line 1 column 1 (char 0))"),
    ({"GIVFLEET_API": "{bad"},
     "error: GIVFLEET_API: not valid JSON (Expecting property name enclosed in double quotes: line 1 column 2 "
     "(char 1))"),
    ({"GIVFLEET_NOTIFICATIONS": '{"smtp_port": 25}', "GIVFLEET_NOTIFICATIONS__WEBHOOK_ALLOWED_NETWORKS": "[x"},
     "error: GIVFLEET_NOTIFICATIONS__WEBHOOK_ALLOWED_NETWORKS: not valid JSON (Expecting value: line 1 column 2 "
     "(char 1))"),
    ({"GIVFLEET_LOG__LEVEL": "LOUD"},
     "error: GIVFLEET_LOG__LEVEL: expected 'DEBUG', 'INFO', 'WARNING' (or 'WARN'), 'ERROR' or 'CRITICAL' "
     "(or 'FATAL'), in any case"),
    ({"GIVFLEET_API__PORT": "99999", "GIVFLEET_SIMULATOR__PORT": "0"},
     "error: GIVFLEET_SIMULATOR__PORT: expected at least 1; GIVFLEET_API__PORT: expected at most 65535"),
    ({"GIVFLEET_SIMULATOR__CLOCK_SPEED": "1e300"}, "error: GIVFLEET_SIMULATOR__CLOCK_SPEED: expected at most 10000.0"),
])
def test_a_setting_that_is_not_valid_names_its_variable(monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str],
                                                         variables: dict[str, str], line: str) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(sys, "argv", ["givfleet", "doctor"])
    with pytest.raises(SystemExit) as stopped:
        cli.main()
    assert stopped.value.code == 2
    assert capsys.readouterr().err.splitlines() == [line]


def test_a_setting_in_the_env_file_that_is_not_json_names_its_variable_and_the_file(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / ".env").write_text("GIVFLEET_SECURITY__ENCRYPTION_KEYS=k1=abc\n")
    monkeypatch.setattr(sys, "argv", ["givfleet", "doctor"])
    with pytest.raises(SystemExit) as stopped:
        cli.main()
    assert stopped.value.code == 2
    assert capsys.readouterr().err.splitlines() == [
        "error: GIVFLEET_SECURITY__ENCRYPTION_KEYS in .env: not valid JSON (Expecting value: line 1 column 1 (char 0))"]


@pytest.mark.parametrize(("options", "line"), [
    (["--straggler-days", "-1"], "error: --straggler-days: expected at least 0"),
    (["--name", ""], "error: --name: must not be empty"),
    (["--arm-min", "500", "--arm-max", "400"], "error: the watch: --arm-min must not exceed --arm-max"),
    (["--arm-min", "500", "--arm-max", "400", "--target", "455"],
     "error: the watch: --arm-min must not exceed --arm-max"),
])
def test_firmware_watch_options_are_named(options: list[str], line: str) -> None:
    result = CliRunner().invoke(cli.app, ["firmware-watch", "create", "--tenant", "acme", "--name", "rollout",
                                          "--model", "GIV-HY5.0", "--target", "600", *options])
    assert result.exit_code == 1
    assert result.output.splitlines() == [line]
    assert not [words for words in PYDANTIC if words in result.output]


@pytest.mark.parametrize("option", [["--fleet-size", "-1"], ["--fleet-size", "0"]])
def test_a_simulator_option_out_of_range_is_a_usage_error_not_a_traceback(option: list[str]) -> None:
    result = CliRunner().invoke(cli.app, ["simulator", *option])

    assert result.exit_code == 2, result.output
    assert option[0] in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


@pytest.mark.parametrize("command", [["up"], ["api"], ["simulator"]])
@pytest.mark.parametrize("port", ["0", "99999"])
def test_a_port_out_of_range_is_a_usage_error_before_anything_starts(monkeypatch: pytest.MonkeyPatch,
                                                                     tmp_path: Path, command: list[str],
                                                                     port: str) -> None:
    monkeypatch.setenv("GIVFLEET_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GIVFLEET_DATABASE_URL", "postgresql://givfleet@127.0.0.1:1/none")  # never reached
    monkeypatch.setenv("GIVFLEET_REDIS_URL", "redis://127.0.0.1:1/0")
    served: list[object] = []
    monkeypatch.setattr(server, "run", lambda *args, **kwargs: served.append(args))
    result = CliRunner().invoke(cli.app, [*command, "--port", port])

    assert result.exit_code == 2, result.output
    assert "Invalid value for '--port'" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert not (tmp_path / "home").exists(), "nothing may start before the options are checked"
    assert served == []


KEY = "MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE="  # base64 of 32 bytes
SHORT_KEY = "c2hvcnQta2V5LW1hdGVyaWFs"  # base64 of 18 bytes


@pytest.mark.parametrize(("variables", "line"), [
    ({"GIVFLEET_SECURITY__ENCRYPTION_KEYS": '{"a": "not base64 at all!"}'},
     "error: GIVFLEET_SECURITY__ENCRYPTION_KEYS: key 'a' is not valid base64"),
    ({"GIVFLEET_SECURITY__ENCRYPTION_KEYS": f'{{"a": "{KEY}", "b": "{SHORT_KEY}"}}'},
     "error: GIVFLEET_SECURITY__ENCRYPTION_KEYS: key 'b' must be base64 of 32 random bytes, not of 18"),
    ({"GIVFLEET_SECURITY__ENCRYPTION_KEYS": f'{{"a": "{KEY}"}}', "GIVFLEET_SECURITY__ACTIVE_KEY_ID": "b"},
     "error: GIVFLEET_SECURITY__ACTIVE_KEY_ID: 'b' is not a key id of GIVFLEET_SECURITY__ENCRYPTION_KEYS "
     "(it has 'a')"),
    ({"GIVFLEET_SECURITY__ENCRYPTION_KEYS": f'{{"a": "{KEY}", "b": 5}}'},
     "error: GIVFLEET_SECURITY__ENCRYPTION_KEYS (b): expected a valid string"),
])
def test_a_malformed_encryption_key_stops_every_command_without_showing_a_key(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], variables: dict[str, str],
        line: str) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(sys, "argv", ["givfleet", "tenant", "list"])
    with pytest.raises(SystemExit) as stopped:
        cli.main()
    assert stopped.value.code == 2
    seen = capsys.readouterr()
    assert seen.err.splitlines() == [line]
    assert not [key for key in (KEY, SHORT_KEY, "not base64 at all!") if key in seen.out + seen.err]
