"""``veil agent deploy`` (and ``client.deploy(check=check_agent)``) check an agent before
sending anything: not a .js/.py file, a syntax error or a failing ``init`` is one typed,
one-line error, and no transaction leaves (the network here has no node at all)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from veilnet.cli.agent import agent as agent_cli
from veilnet.sandbox import check_agent
from veilnet.sdk import AgentInvalid, Client

AGENTS = {
    "notes.txt": "hello",
    "syntax.js": "export function init(a) { return 1 +; }\n",
    "syntax.py": "def init(a)\n    return 1\n",
    "throws.js": 'export function init(a) { if (!a.start) throw new Error("start is required"); }\n',
    "throws.py": 'def init(a):\n    raise ValueError("start is required")\n',
    "forbidden.py": "import os\ndef init(a):\n    pass\n",
}


@pytest.fixture
def network(tmp_path: Path) -> Path:
    doc = {
        "chain_id": 7,
        "rpc_url": "http://127.0.0.1:1",  # nothing listens: any transaction would fail loudly
        "contracts": {"Registry": "0x" + "11" * 20, "Bus": "0x" + "22" * 20},
        "clusters": ["0x" + "33" * 32],
    }
    path = tmp_path / "network.json"
    path.write_text(json.dumps(doc))
    for name, source in AGENTS.items():
        (tmp_path / name).write_text(source)
    return path


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("notes.txt", "agent files end in .js or .py"),
        ("syntax.js", "does not compile"),
        ("syntax.py", "does not compile"),
        ("throws.js", "init fails: sandbox_agent_error"),
        ("throws.py", "init fails: sandbox_agent_error"),
        ("forbidden.py", "import of 'os' is not allowed"),
    ],
)
def test_a_bad_agent_is_refused_before_anything_is_sent(
    network: Path, name: str, expected: str
) -> None:
    with (
        Client.connect(network, wallet="0x" + "44" * 32) as client,
        pytest.raises(AgentInvalid) as info,
    ):
        client.deploy(network.parent / name, init={}, check=check_agent)
    assert expected in info.value.message and info.value.code == "sdk_agent_invalid"
    shown = CliRunner().invoke(
        agent_cli,
        [
            "deploy",
            str(network.parent / name),
            "--network",
            str(network),
            "--key",
            "0x" + "44" * 32,
        ],
    )
    assert shown.exit_code != 0
    assert "Traceback" not in shown.output


def test_an_init_that_calls_another_agent_is_left_to_the_chain() -> None:
    """The local check has no other agents: it cannot decide such an init, so it passes it."""
    source = b"export function init(a) { call('0x' + '11'.repeat(32), {}); }\n"
    assert check_agent("js", source, {}) is None
    assert check_agent("js", b"export function init(a) { throw new Error('x'); }", {}) == (
        "sandbox_agent_error",
        "init fails: sandbox_agent_error: agent threw Error: x",
    )
