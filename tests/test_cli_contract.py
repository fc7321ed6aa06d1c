"""The error contract at the front door: every verb's failure, under --json, is exactly one envelope
{ok: false, code, error, problems} on stdout with the documented exit status, and one line on stderr."""
from __future__ import annotations

import argparse
import json

import pytest

from jinbao_netops.backup.restic import Repo
from jinbao_netops.cli import build_parser, main

NOWHERE = "/nonexistent/inventory"


def verbs() -> list[tuple[str, ...]]:
    """Every `netops NOUN [VERB]` the parser knows."""
    out = []

    def walk(parser, path):
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs or not subs[0].required:  # a noun that runs on its own as well as with its verbs (audit)
            out.append(tuple(path))
        for name, sub in (subs[0].choices.items() if subs else ()):
            walk(sub, [*path, name])

    walk(build_parser(), [])
    return out


# one failure of each verb's own, with the status the README documents (2 bad input or usage,
# 3 partial, 4 the command itself failed)
FAILURES = {
    ("inventory", "validate"): (["-i", NOWHERE], 2, "no such inventory"),
    ("inventory", "show"): (["nope"], 2, "site 'nope': no such site"),
    ("inventory", "graph"): (["nope"], 2, "site 'nope': no such site"),
    ("inventory", "generate"): (["--out", "{file}"], 2, "{file}"),
    ("inventory", "reconcile"): (["--scope", "nope"], 2, "--scope 'nope'"),
    ("lab", "up"): (["-i", NOWHERE], 2, "no such inventory"),
    ("lab", "down"): (["--lab", "Bad Name"], 2, "lab name 'Bad Name'"),
    ("lab", "status"): (["--lab", "Bad Name"], 2, "lab name 'Bad Name'"),
    ("lab", "exec"): (["gd-r1", "--", "true"], 2, "lab 'jinbao' is not up"),
    ("lab", "reach"): ([], 2, "lab 'jinbao' is not up"),
    ("lab", "env"): ([], 2, "lab 'jinbao' is not up"),
    ("lab", "seed"): ([], 2, "lab 'jinbao' is not up"),
    ("lab", "image"): (["--bogus"], 2, "unrecognized arguments: --bogus"),
    ("topology", "path"): (["nope"], 2, "nope"),
    ("topology", "spof"): (["-i", NOWHERE], 2, "no such inventory"),
    ("topology", "impact"): (["--fail", "nope"], 2, "nope"),
    ("topology", "check"): (["-i", NOWHERE], 2, "no such inventory"),
    ("topology", "draw"): (["--scope", "nope"], 2, "nope"),
    ("cycle",): (["-i", NOWHERE, "--out", "{dir}"], 2, "no such inventory"),
    ("backup", "run"): (["--scope", "nope"], 2, "nope"),
    ("backup", "status"): (["-i", NOWHERE], 2, "no such inventory"),
    ("backup", "verify"): ([], 2, "nothing to verify"),
    ("backup", "restore"): (["nope", "--to", "gd-db1"], 2, "'nope': not in the backup catalogue"),
    ("dr", "setup"): (["--scope", "huadu"], 2, "no standby in scope 'huadu'"),
    ("dr", "status"): (["-i", NOWHERE], 2, "no such inventory"),
    ("dr", "pitr"): (["sc-db1", "--to", "2026-01-01T00:00:00+08:00", "--out", "{dir}/x.sql"], 2, "its log is not archived"),
    ("drill", "run"): (["nope"], 2, "scenario 'nope'"),
    ("drill", "list"): (["-i", NOWHERE], 2, "no such inventory"),
    ("link", "provision"): (["nope"], 2, "nope"),
    ("harden", "devices"): (["--scope", "nope"], 2, "--scope 'nope'"),
    ("link", "decommission"): (["nope"], 2, "link 'nope': unknown link"),
    ("drift",): (["--scope", "nope"], 2, "--scope 'nope'"),
    ("audit",): (["--scope", "atlantis"], 2, "'atlantis'"),
    ("logs", "status"): (["--scope", "atlantis"], 2, "'atlantis'"),
    ("logs", "search"): (["--grep", "x", "--since", "yesterday"], 2, "--since: 'yesterday'"),
    ("logs", "verify"): (["-i", NOWHERE], 2, "no such inventory"),
    ("audit", "trend"): (["--history", NOWHERE], 2, "no such directory"),
    ("collect", "once"): (["--scope", "nope"], 2, "scope 'nope'"),
    ("collect", "serve"): (["--scope", "nope"], 2, "scope 'nope'"),
    ("collect", "traps"): (["--scope", "nope", "--alertmanager", "http://127.0.0.1:9"], 2, "scope 'nope'"),
    ("collect", "prepare-lab"): ([], 2, "lab 'jinbao' is not up"),
    ("monitor", "generate"): (["-i", NOWHERE, "--out", "{dir}"], 2, "no such inventory"),
    ("monitor", "up"): ([], 2, "lab 'jinbao' is not up"),
    ("monitor", "down"): (["-i", NOWHERE], 2, "no such inventory"),
    ("monitor", "status"): (["-i", NOWHERE], 2, "no such inventory"),
    ("monitor", "web"): (["--listen", "nowhere"], 2, "--listen 'nowhere'"),
    ("monitor", "silence", "list"): (["-i", NOWHERE], 2, "no such inventory"),
    ("monitor", "silence", "add"): (["--device", "nope", "--comment", "c"], 2, "device 'nope': not in the inventory"),
    ("monitor", "silence", "expire"): (["nope"], 2, "silence 'nope': not a silence id"),
    ("serve", "run"): (["--scope", "nope", "--state", "{dir}"], 2, "nope"),
    ("serve", "status"): (["--schedule", "{file}"], 2, "not a serve schedule"),
    ("serve", "run-now"): (["nope"], 2, "no such job"),
    ("zones", "check"): (["--scope", "nope"], 2, "--scope 'nope'"),
    ("zones", "rules"): (["gd-r1"], 2, "device 'gd-r1': a router, not a boundary device"),
    ("zones", "apply"): (["gd-r1", "--changes", "{dir}/c"], 2, "device 'gd-r1': a router, not a boundary device"),
}


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No lab, no backups, no monitoring on record: each verb meets its preconditions unmet."""
    # the backup stores were never backed up to: a repository that `backup verify` looks for is not there
    monkeypatch.setattr(Repo, "on_store", classmethod(lambda cls, access, sid: cls(sid, str(tmp_path / "restic" / sid), "")))
    monkeypatch.setenv("NETOPS_LAB_DIR", str(tmp_path / "labs"))
    monkeypatch.setenv("NETOPS_BACKUP_STATE", str(tmp_path / "backup"))
    monkeypatch.setenv("NETOPS_RUN_DIR", str(tmp_path / "run"))
    monkeypatch.delenv("NETOPS_INVENTORY", raising=False)
    (tmp_path / "file").write_text("x")
    return tmp_path


def run(capsys, argv: list[str]) -> tuple[int, str, str]:
    code = main(argv)
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def test_every_verb_has_a_failure_case():
    assert sorted(FAILURES) == sorted(verbs())


@pytest.mark.parametrize("where", ["after the verb", "before the noun"])
@pytest.mark.parametrize("verb", sorted(FAILURES), ids=" ".join)
def test_failure_under_json_is_one_envelope(verb, where, isolated, capsys):
    extra, code, text = FAILURES[verb]
    fill = {"file": str(isolated / "file"), "dir": str(isolated / "out")}
    args = [a.format(**fill) for a in extra]
    argv = [*verb, "--json", *args] if where == "after the verb" else ["--json", *verb, *args]
    rc, out, err = run(capsys, argv)
    env = json.loads(out)  # exactly one JSON document on stdout
    assert rc == code == env["code"], (argv, out, err)
    assert env["ok"] is False and set(env) == {"ok", "code", "error", "problems"}
    assert text.format(**fill) in env["error"] + "\n".join(env["problems"])
    assert err.strip() and "Traceback" not in err


@pytest.mark.parametrize("verb", sorted(FAILURES), ids=" ".join)
def test_usage_error_of_every_verb(verb, isolated, capsys):
    rc, out, err = run(capsys, [*verb, "--json", "--no-such-option"])
    env = json.loads(out)
    assert rc == 2 == env["code"] and ("--no-such-option" in env["error"] or "arguments are required" in env["error"])
    assert err.count("\n") == 1 and f"see netops {' '.join(verb)} --help" in err


def test_global_options_before_the_noun(capsys):
    rc, out, _ = run(capsys, ["--json", "-i", NOWHERE, "inventory", "validate"])
    assert rc == 2 and "no such inventory" in json.loads(out)["error"]
    rc, out, _ = run(capsys, ["-i", "tests/fixtures/lab-mini", "inventory", "validate", "--json"])
    assert rc == 0 and json.loads(out)["ok"] is True


def test_generate_answers_json_given_before_the_noun(tmp_path, capsys):
    """`netops --json inventory generate` prints its document, not the text line (the verb once had a --json of
    its own that overwrote the global one)."""
    rc, out, _ = run(capsys, ["--json", "inventory", "generate", "--out", str(tmp_path / "inv"), "--provinces", "1"])
    doc = json.loads(out)
    assert rc == 0 and doc["ok"] is True and doc["out"] == str(tmp_path / "inv") and doc["provinces"] == 1
    assert doc["files"] == len(list((tmp_path / "inv").iterdir()))


def test_a_lab_whose_node_is_not_running_is_the_command_failing(isolated, capsys):
    """The lab is on record but its node process is gone: exit 4, the suite's own work failed."""
    lab = isolated / "labs" / "jinbao"
    lab.mkdir(parents=True)
    (lab / "state.json").write_text(json.dumps({"nodes": {"gd-r1": {"ns": "jb.jinbao.gd-r1", "mgmt": "10.254.44.11/16",
                                                                     "machine": "jinbao-gd-r1", "pid": None}}}))
    rc, out, err = run(capsys, ["lab", "exec", "--json", "gd-r1", "--", "true"])
    assert rc == 4 and json.loads(out) == {"ok": False, "code": 4, "error": "node 'gd-r1' is not running", "problems": []}


def test_version_and_exit_codes_in_help(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.startswith("netops (jinbao-netops) ")
    with pytest.raises(SystemExit):
        main(["backup", "run", "--help"])
    assert "4 the command itself failed" in capsys.readouterr().out
