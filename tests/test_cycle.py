"""`netops cycle`'s steps as the cycle runs them: every step's command line parses with the CLI, the operations
service's two steps (the playbook, then `serve status` on the first province's monitor node), and a step run on
a node giving, under --json, the node's own JSON document (a fake lab node runs the command here)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from jinbao_netops.cli import build_parser
from jinbao_netops.cycle import REPORT, SUITE, Run, Step, steps
from jinbao_netops.inventory import DEFAULT_INVENTORY, load
from jinbao_netops.output import Out


@pytest.fixture(scope="module")
def cycle_steps(tmp_path_factory):
    return {s.key: s for s in steps(load(DEFAULT_INVENTORY), tmp_path_factory.mktemp("out"))}


def test_every_netops_step_parses_as_the_cycle_passes_it(cycle_steps):
    parser = build_parser()
    for s in cycle_steps.values():
        if not s.argv[0].startswith("!"):
            args = parser.parse_args(["-i", "/inv", "--json", *s.argv])
            assert args.json and args.inventory == "/inv", s.key


def test_the_service_steps_install_it_then_report_its_status_on_the_first_monitor(cycle_steps):
    serve, status = cycle_steps["serve"], cycle_steps["serve-status"]
    assert serve.argv[:4] == ["!ansible-playbook", "-i", str(SUITE / "inventory/jinbao.yml"), "playbooks/serve.yml"]
    assert json.loads(serve.argv[serve.argv.index("-e") + 1]) == {"netops_serve_python": sys.executable,
                                                                  "netops_serve_inventory": str(DEFAULT_INVENTORY)}
    assert (status.argv, status.on, status.kind, status.needs) == (["serve", "status"], "gd-mon1", REPORT, ("serve",))
    assert list(cycle_steps).index("serve") == list(cycle_steps).index("monitor-up") + 2


class FakeNode:
    """A lab node that runs the command on this machine, with the service's state where the test put it."""
    ran: list = []

    def __init__(self, env):
        self.env = env

    def exec(self, cmd, timeout):
        FakeNode.ran.append(cmd)
        return subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=timeout)

    def command(self, cmd):
        FakeNode.ran.append(cmd)
        return cmd


@pytest.fixture
def fake_lab(monkeypatch, tmp_path):
    import os

    from jinbao_netops.lab import commands

    env = {**os.environ, "NETOPS_SERVE_STATE": str(tmp_path / "state"), "NETOPS_INVENTORY": ""}
    monkeypatch.setattr(commands, "_lab", lambda args, inv=None: type("L", (), {"node": lambda self, n: FakeNode(env)})())
    FakeNode.ran = []
    return FakeNode


def test_a_step_on_a_node_under_json_gives_the_node_verbs_own_document(fake_lab, cycle_steps):
    rc, doc, error = Run(DEFAULT_INVENTORY, Out(json_mode=True)).step(cycle_steps["serve-status"])
    assert fake_lab.ran == [[sys.executable, "-m", "jinbao_netops.cli", "--json", "serve", "status"]]
    # no run yet: every job of the default schedule listed, none failed
    assert (rc, error) == (0, None) and doc["ok"] is True
    assert [j["job"] for j in doc["jobs"]] == ["archive", "drift", "reconcile", "audit", "verify", "logs"]


def test_a_step_on_a_node_that_prints_no_document_fails_naming_the_node(fake_lab):
    step = Step("x", "x", ["--version"], REPORT, on="gd-mon1")
    rc, data, error = Run(DEFAULT_INVENTORY, Out(json_mode=True)).step(step)
    assert rc == 4 and error.startswith("gd-mon1: no JSON document from `netops --version  (@ gd-mon1)`"), error
    assert data["rc"] == 0 and data["stdout"].strip()


def test_a_step_on_a_node_in_text_mode_shows_the_verb_as_the_node_prints_it(fake_lab, cycle_steps):
    rc, data, error = Run(DEFAULT_INVENTORY, Out()).step(cycle_steps["serve-status"])
    assert (rc, data, error) == (0, None, None)
    assert fake_lab.ran == [[sys.executable, "-m", "jinbao_netops.cli", "serve", "status"]]
