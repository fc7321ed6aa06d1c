"""The security zones on the default lab (issue 16): each province's 外网 segment (the 12333 portal) sits behind
its boundary firewall, a Linux node whose nftables rules `zones apply` renders from the zone policy. Before
the push the firewall forwards everything and the probe matrix shows it; after, every allowed flow gets
through and the forbidden sample does not; a wrong rule added by hand is caught; a push whose verification
fails (a broken template) is rolled back to exactly what the device held; a second push changes nothing."""
from __future__ import annotations

import json

import pytest

from jinbao_netops.topology import zones

from .conftest import netops

pytestmark = pytest.mark.lab

FW = "gd-fw1"
TABLE = ["nft", "list", "table", "inet", "netops_zones"]


def run(lab, *args, changes):
    p = netops("--json", "zones", *args, "--changes", str(changes), env=lab["env"])
    return p.returncode, json.loads(p.stdout), p.stderr


def holds(lab) -> str:
    p = netops("lab", "exec", FW, "--", "sh", "-c", "nft list table inet netops_zones 2>/dev/null || true", env=lab["env"])
    return p.stdout


def test_rules_pushed_from_the_policy_make_the_network_do_what_it_says(lab, tmp_path):
    changes = tmp_path / "changes"
    # no table yet on a fresh lab, or one left by an earlier run of the suite: start from none
    netops("lab", "exec", FW, "--", "sh", "-c", "nft delete table inet netops_zones 2>/dev/null || true", env=lab["env"])
    rc, doc, err = run(lab, "check", "--probe", "--scope", "guangdong", changes=changes)
    assert rc == 1 and doc["dynamic"]["ok"] is False, err            # an open firewall: forbidden flows get through
    leaks = [p for p in doc["dynamic"]["probes"] if not p["ok"]]
    assert leaks and all(p["expect"] == "block" and p["outcome"] in ("open", "refused", "reply") for p in leaks)

    rc, doc, err = run(lab, "apply", FW, changes=changes)
    assert rc == 0, (err, doc)
    (res,) = doc["devices"]
    assert res["result"] == "applied" and all(v["ok"] for v in res["verification"])
    assert '+\t\tiifname "eth1" oifname "eth0" ip saddr 10.44.3.10 ip daddr { 10.44.0.10, 10.44.1.11 } tcp dport 5432 ' \
           'ct state new accept comment "gd-12333-query"' in res["diff"], res["diff"]  # the table was new: all of it added
    assert "policy drop" in holds(lab)
    rec = [json.loads(x) for x in (changes / "zones.jsonl").read_text().splitlines()][-1]
    assert rec["device"] == FW and rec["result"] == "applied" and rec["installed"].startswith("table inet netops_zones")
    saved = netops("lab", "exec", FW, "--", "sh", "-c", "stat -c %a /etc/netops/zones.nft; systemctl is-enabled "
                   "netops-zones.service", env=lab["env"])
    assert saved.stdout.split() == ["600", "enabled"], saved

    rc, doc, err = run(lab, "check", "--probe", "--scope", "guangdong", changes=changes)
    assert rc == 0 and doc["ok"] is True and doc["dynamic"]["ok"] is True, err
    probes = doc["dynamic"]["probes"]
    flows = {p["flow"] for p in probes if p["expect"] == "pass"}
    assert flows == {"gd-12333-query", "gd-12333-watch", "gd-12333-ping"}
    assert {(p["from_zone"], p["to_zone"]) for p in probes if p["expect"] == "block"} == {("business", "internet"),
                                                                                        ("internet", "business")}
    # the check is recorded: the audit's evidence
    last = json.loads((changes / "zones-checks.jsonl").read_text().splitlines()[-1])
    assert last["ok"] is True and last["dynamic"] is True and len(last["probes"]) == len(probes)

    # the same policy again: nothing to change
    rc, doc, err = run(lab, "apply", FW, changes=changes)
    assert rc == 0 and doc["devices"][0]["result"] == "no_change", err

    # a wrong rule (the portal may ping the business network) is caught by the probes
    netops("lab", "exec", FW, "--", "nft", "insert", "rule", "inet", "netops_zones", "forward", "ip", "saddr",
           "10.44.3.0/24", "meta", "l4proto", "icmp", "accept", env=lab["env"], check=True)
    rc, doc, err = run(lab, "check", "--probe", "--scope", "guangdong", changes=changes)
    assert rc == 1 and doc["dynamic"]["ok"] is False
    wrong = [(p["source"], p["protocol"], p["outcome"]) for p in doc["dynamic"]["probes"] if not p["ok"]]
    assert wrong and set(wrong) == {("gd-web1", "icmp", "reply")}, wrong


def test_a_push_that_fails_its_verification_is_rolled_back(lab, tmp_path):
    changes = tmp_path / "changes"
    rc, doc, err = run(lab, "apply", FW, changes=changes)  # the policy's rules in place (also after the test above)
    assert rc == 0, err
    before = holds(lab)
    broken = tmp_path / "templates"
    broken.mkdir()
    (broken / "nftables.j2").write_text((zones.TEMPLATES / "nftables.j2").read_text().replace("ct state new accept",
                                                                                            "ct state new drop"))
    p = netops("--json", "zones", "apply", FW, "--changes", str(changes),
               env={**lab["env"], "NETOPS_ZONE_TEMPLATES": str(broken)})
    doc = json.loads(p.stdout)
    (res,) = doc["devices"]
    assert p.returncode == 1 and res["result"] == "rolled_back", p.stderr
    failed = [v["check"] for v in res["verification"] if not v["ok"]]
    assert failed and all(c.startswith("应通 allowed") for c in failed)      # exactly the allowed flows were stopped
    assert res["rollback"] == {"identical": True, "error": ""}
    assert holds(lab) == before
    rec = [json.loads(x) for x in (changes / "zones.jsonl").read_text().splitlines()][-1]
    assert rec["result"] == "rolled_back" and "installed" not in rec
