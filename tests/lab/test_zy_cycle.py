"""The README's main job, end to end on the default lab: `netops cycle` with every step's outcome.

It shares the session's lab (already up: the cycle's `lab up` must change nothing; rebuilt first if an
earlier test hardened it, so the cycle's hardening has something to do) and runs late
(pytest orders files by name), but it does not rely on that: afterwards it puts the lab back as the
session found it (the cycle provisions links, hardens servers and starts the monitoring stack), so
the lab tests pass in any order.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import netops, rebuild_lab

pytestmark = pytest.mark.lab

REPORTS = {"zones", "audit-before", "logs", "audit", "monitor-status", "serve-status", "map-check", "dr-status", "catalogue"}


@pytest.fixture
def fresh_lab_after(lab):
    yield
    rebuild_lab(lab)


def test_the_main_job_runs_every_step(lab, fresh, fresh_lab_after, tmp_path):
    out, state = tmp_path / "out", tmp_path / "backup-state"
    r = netops("cycle", "--json", "--out", str(out), env={"NETOPS_BACKUP_STATE": str(state)}, timeout=3000)
    rep = json.loads(r.stdout)
    steps = {s["key"]: s for s in rep["steps"]}
    failed = {k: (s["rc"], s["error"]) for k, s in steps.items() if s["rc"] and not (k in REPORTS and s["rc"] == 1)}
    assert r.returncode == rep["rc"] == 0 and not failed, (failed, r.stderr[-3000:])
    assert not any(s["skipped"] for s in rep["steps"])
    # every step of the README's list ran, in its order
    assert [k for k in steps if not k.startswith("provision-")] == [
        "validate", "lab", "status", "reach", "spof", "check", "draw", "reach-after", "prepare", "collect",
        "audit-before", "harden", "harden-devices", "zones-apply", "zones", "logs", "audit", "monitor-generate", "monitor-up", "monitor-status",
        "serve", "serve-status", "map-check", "map", "dr-setup", "seed", "dr-status", "backup", "verify", "catalogue", "drill", "failover"]
    assert sorted(k for k in steps if k.startswith("provision-")) == ["provision-longgang"]
    # what the steps report is what they did
    assert steps["lab"]["result"]["changed"] is False  # the session's lab, reused
    assert all(row["ok"] for row in steps["reach-after"]["result"]["rows"])
    # the boundary firewalls hold the policy's rules, and the network does what the policy says
    assert {r["device"]: r["result"] for r in steps["zones-apply"]["result"]["devices"]} == {"gd-fw1": "applied", "sc-gap1": "applied"}
    zones = steps["zones"]["result"]
    assert steps["zones"]["rc"] == 0 and zones["ok"] is True and zones["dynamic"]["ok"] is True, zones["dynamic"]
    assert {p["expect"] for p in zones["dynamic"]["probes"]} == {"pass", "block"}
    assert steps["provision-longgang"]["result"]["result"] == "applied"
    assert steps["collect"]["result"]["ok"] is True
    hardened = steps["harden-devices"]["result"]["devices"]
    assert len(hardened) == 18 and {r["result"] for r in hardened.values()} <= {"applied", "no_change"}, hardened
    # the log store came up: every log host has heard from its senders
    stores = steps["logs"]["result"]["log_hosts"]
    assert stores and all(h["status"] == "ok" and any(s["last_message"] for s in h["sources"]) for h in stores), stores
    after, before = steps["audit"]["result"]["summary"]["verdicts"], steps["audit-before"]["result"]["summary"]["verdicts"]
    assert after["符合"] > before["符合"]
    assert steps["drill"]["result"]["passed"] is True
    # the province data centre lost: the DR standby took over with nothing lost, every county rerouted to it
    dc = steps["failover"]["result"]
    assert dc["passed"] is True and dc["rpo_transactions"] == 0 and dc["rpo_seconds"] == 0, dc
    assert sorted(dc["per_county"]) == ["baoan", "huadu", "longgang", "panyu"] and dc["rto_network_seconds"] <= 15, dc
    assert dc["dr_level"]["level"] == 5, dc["dr_level"]
    # the province databases stream to their DR sites, and two counties' MariaDB to their province, through the
    # hardened firewalls, caught up after the seed
    pairs = steps["dr-status"]["result"]["pairs"]
    assert sorted((p["standby"], p["service"]) for p in pairs) == [("gd-db1", "mariadb"), ("gd-dr-db1", "postgresql"),
                                                                  ("sc-db1", "mariadb"), ("sc-dr-db1", "postgresql")]
    assert all(p["ok"] and p["lag_seconds"] < 1 for p in pairs), pairs
    assert all(a["ok"] for a in steps["dr-status"]["result"]["archives"]), steps["dr-status"]["result"]["archives"]
    # the operations service runs on the province's monitor host, its status the service's own document
    assert {"archive", "audit"} <= {j["job"] for j in steps["serve-status"]["result"]["jobs"]}, steps["serve-status"]
    for f in ("topology.html", "audit.html", "audit.json", "monitoring/ministry/prometheus.yml", "inventory/network.yml"):
        assert (out / f).is_file(), f
    # the lab's credentials reached the steps without being printed or written into any artefact
    env = json.loads(netops("lab", "env", "--json", check=True).stdout)
    secrets = [v for k, v in env.items() if k not in ("ANSIBLE_SSH_COMMON_ARGS", "NETOPS_SSH_KEY")]
    secrets += [ln for ln in Path(env["NETOPS_SSH_KEY"]).read_text().splitlines() if len(ln) > 40]  # the key itself
    assert len(secrets) >= 5
    artefacts = [f for d in (out, state) for f in d.rglob("*") if f.is_file() and ".git" not in f.parts]
    assert len(artefacts) > 20
    for text, where in [(r.stdout + r.stderr, "the cycle's output"), *((f.read_bytes().decode(errors="replace"), f)
                                                                      for f in artefacts)]:
        assert not [s for s in secrets if s in text], where
