"""Serve a simulator over HTTP with uvicorn (``givfleet simulator``; ``givfleet up`` embeds one of its own, see
:mod:`service.demo`)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TextIO

import uvicorn

from service.simulator.config import SimulatorConfig
from service.simulator.core import Simulator

TOKEN_ORDER = (
    "company",
    "customer",
    "engineer",
    "distributor",
    "sub_contractor",
    "viewer",
    "other_company",
    "company_unapproved",
    "company_readonly",
    "no_subscription",
)


def write_tokens(sim: Simulator, path: Path) -> None:
    """Write ``{"company": "...", "customer": "...", ...}`` to ``path`` (parent directories created), readable by
    its owner only (mode 0600, also when the file existed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", encoding="utf-8") as out:
        os.fchmod(out.fileno(), 0o600)
        out.write(json.dumps(sim.tokens, indent=2) + "\n")


def describe(sim: Simulator, host: str, port: int, out: TextIO) -> None:
    """Print where the simulator listens, the tokens per account type and legacy credentials."""
    base = f"http://{host}:{port}"
    summary = sim.truth.summary()
    out.write(f"GivEnergy Cloud simulator: {summary['devices']} inverters, seed {sim.config.seed}\n")
    out.write(f"  v1 API:      {base}/v1\n  legacy API:  {base}/GivManage/api\n  side door:   {base}/_simulator\n")
    out.write("Tokens (Authorization: Bearer <token>):\n")
    names = [name for name in TOKEN_ORDER if name in sim.tokens]
    names += [name for name in sim.tokens if name not in names]
    for name in names:
        out.write(f"  {name:<20} {sim.tokens[name]}\n")
    customer = sim.truth.account_of_token("customer")
    out.write(f"Legacy portal login: account={customer.username} password={customer.password}\n")
    out.flush()


def build(config: SimulatorConfig, tokens_file: Path | None = None) -> Simulator:
    """Create the simulator and write its tokens to ``tokens_file`` if given."""
    sim = Simulator(config)
    if tokens_file is not None:
        write_tokens(sim, tokens_file)
    return sim


def run(
    config: SimulatorConfig,
    host: str = "127.0.0.1",
    port: int = 8081,
    tokens_file: Path | None = None,
    out: TextIO | None = None,
    log_level: str = "warning",
) -> None:
    """Generate a fleet and serve it until interrupted (blocking).

    Args:
        config: Simulator configuration.
        host: Bind address.
        port: Bind port.
        tokens_file: Where to write the tokens as a JSON object (optional).
        out: Where to print the banner with the tokens (stdout by default).
        log_level: uvicorn log level.
    """
    sim = build(config, tokens_file)
    describe(sim, host, port, out or sys.stdout)
    uvicorn.run(sim.app, host=host, port=port, log_level=log_level, lifespan="on")


def server(config: SimulatorConfig, host: str = "127.0.0.1", port: int = 8081) -> tuple[Simulator, uvicorn.Server]:
    """A new simulator and a configured ``uvicorn.Server`` (not started) serving it, to run in a thread or a task.

    Start it with ``await server.serve()`` or ``threading.Thread(target=server.run)``; stop it by setting
    ``server.should_exit = True``.
    """
    sim = Simulator(config)
    uv_config = uvicorn.Config(sim.app, host=host, port=port, log_level="warning", lifespan="on")
    return sim, uvicorn.Server(uv_config)

