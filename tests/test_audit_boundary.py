"""8.1.3.2 a) boundary access control (net-boundary-acl), judged through the audit engine on the zone records
(`netops zones apply`'s pushes, `netops zones check`'s probes) and the boundary's live nftables table — the
table as Debian's nft lists it after loading the rendered rules in a private namespace."""
from __future__ import annotations

import json
import shlex
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from jinbao_netops import inventory
from jinbao_netops.security import boundary, hostchecks, records
from jinbao_netops.security.audit import SERVER_COLLECT, run_audit
from jinbao_netops.security.catalogue import FAIL, MANUAL, NA, PASS, host_params
from jinbao_netops.topology import zones
from jinbao_netops.topology.graph import build

FIX = Path(__file__).parent / "fixtures"
INV = inventory.load(FIX / "zones/inventory.yml")   # gd-gap1: a 网闸 on Debian (nftables); gd-fw1: a USG (VRP)
UNZONED = inventory.load(Path(__file__).parent / "fixtures" / "broken" / "base.yml")  # every device in the 业务专网
NO_BACKUPS = records.from_catalogue({"assets": {}}, [], "backup catalogue test")
NOW = datetime(2026, 12, 10, tzinfo=UTC).timestamp()
NFT = shutil.which("nft") or "/usr/sbin/nft"
RENDERED = zones.render(build(INV), "gd-gap1")[2]
TODAY = zones.digest(RENDERED)


def when(days_ago: float) -> str:
    return datetime.fromtimestamp(NOW - days_ago * 86400, UTC).isoformat(timespec="seconds")


def nft_list(tmp: Path, *scripts: str) -> str:
    """What ``nft list table inet netops_zones`` prints (stderr too, as the collection keeps it) on a node that
    loaded ``scripts`` with ``nft -f``: a new user and network namespace, the host untouched."""
    files = []
    for i, text in enumerate(scripts):
        (tmp / f"{i}.nft").write_text(text, encoding="utf-8")
        files.append(tmp / f"{i}.nft")
    nft = shlex.quote(NFT)
    sh = "".join(f"{nft} -f {shlex.quote(str(f))} && " for f in files) + f"{nft} list table {zones.NFT_TABLE} 2>&1; true"
    r = subprocess.run(["unshare", "--user", "--map-root-user", "--net", "sh", "-c", sh], capture_output=True, text=True,
                       timeout=60, check=True)
    return r.stdout


@pytest.fixture(scope="module")
def live(tmp_path_factory) -> dict[str, str]:
    """The gap gateway's table in each state the tests need."""
    def state(name, *scripts):
        d = tmp_path_factory.mktemp(name)
        return nft_list(d, *scripts)
    return {"pushed": state("pushed", RENDERED),
            # a rule added by hand after the push: the forward chain also lets the portal reach the database
            "edited": state("edited", RENDERED, f"add rule {zones.NFT_TABLE} forward ip saddr 10.44.3.10 accept\n"),
            "accept": state("accept", RENDERED.replace("policy drop;", "policy accept;")),
            "absent": state("absent")}


def push(device: str = "gd-gap1", days_ago: float = 3, sha: str = TODAY, installed: str | None = None,
         result: str = "applied", syntax: str = "nftables") -> dict:
    rec = {"change": f"{when(days_ago)}-zones-{device}", "when": when(days_ago), "who": "zhangsan@ops1", "action": "zones-apply",
           "device": device, "syntax": syntax, "rendered_sha256": sha, "result": result, "ok": result in boundary.HOLDS,
           "verification": [{"check": "table listed 规则表已加载", "ok": True, "evidence": zones.NFT_LIST}]}
    return rec if installed is None else {**rec, "installed": installed}


def probe(source: str, daddr: str, port: int | None, expect: str, outcome: str, boundaries=("gd-gap1",),
          flow: str | None = None, protocol: str = "tcp") -> dict:
    ok = (outcome in ("open", "refused", "reply")) == (expect == "pass")
    return {"boundaries": list(boundaries), "flow": flow, "expect": expect, "source": source, "destination": "gd-db1",
            "daddr": daddr, "protocol": protocol, "port": port, "outcome": outcome, "ok": ok}


GOOD_PROBES = [probe("gd-qz1", "10.44.0.10", 5432, "pass", "open", flow="qz-sync"),
               probe("gd-web1", "10.44.0.10", 5432, "block", "timeout", boundaries=("gd-fw1", "gd-gap1")),
               probe("gd-web1", "10.44.4.10", 8443, "pass", "open", boundaries=("gd-fw1",), flow="portal-query")]


def check(days_ago: float = 1, probes=GOOD_PROBES) -> dict:
    return {"when": when(days_ago), "who": "zhangsan@ops1", "scope": None, "static_ok": True, "dynamic": True,
            "ok": all(p["ok"] for p in probes), "probes": probes}


def write(path: Path, recs) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in recs), encoding="utf-8")


def runner(table: str | None):
    """A Linux host answers the collection script: the hardened Debian's sections, and ``table`` as the
    zones section when (only when) the script asks for the zone table. Network devices: a compliant config."""
    hardened = (FIX / "security/debian12-hardened.txt").read_text()

    def run(device, command, stdin=None):
        if stdin is not None:
            assert command == SERVER_COLLECT
            asked = f"{hostchecks.MARK}zones'; ( {zones.NFT_LIST} )" in stdin
            return hardened + (f"{hostchecks.MARK}zones\n{table}" if asked and table is not None else "")
        name = {"frr": "frr-compliant.cfg", "huawei_vrp": "vrp-compliant.cfg"}[INV.devices.get(device, UNZONED.devices.get(device)).platform]
        return (FIX / "security" / name).read_text()
    return run


def audit(tmp_path: Path, pushes=(), checks=(), table: str | None = None, host: str = "gd-gap1", inv=INV) -> dict:
    write(tmp_path / boundary.PUSH_LOG, pushes)
    write(tmp_path / boundary.CHECK_LOG, checks)
    rep = run_audit(inv, host, run=runner(table), rec=NO_BACKUPS, zone_evidence=boundary.Evidence(inv, tmp_path, NOW))
    (h,) = rep["hosts"]
    assert h["status"] == "ok", h["error"]
    return next(r for r in h["results"] if r["id"] == boundary.CONTROL)


def failed(r: dict) -> list[str]:
    return [f"{f['label']}: {f['detail']}" for f in r["findings"] if not f["ok"]]


def test_pushed_from_policy_holding_it_and_probed_since_is_compliant(tmp_path, live):
    r = audit(tmp_path, [push(installed=zones.nft_installed(live["pushed"]))], [check()], live["pushed"])
    assert r["verdict"] == PASS, r["findings"]
    assert [f["label"] for f in r["findings"]] == ["rules pushed from today's policy 按当前策略下发",
                                                   "live rules = the rules the push verified 设备规则与下发一致",
                                                   "forward chain policy drop 默认拒绝",
                                                   "flows probed since the push, within 30 d, all as the policy says 探测矩阵符合策略"]
    # each finding quotes its record (file, line, when) and the command; the probe across gd-fw1 only is not gd-gap1's
    assert f"zones.jsonl line 1 ({when(3)})" in r["findings"][0]["detail"]
    assert f"zones-checks.jsonl line 1 ({when(1)}): 2 probes across gd-gap1" in r["findings"][3]["detail"]
    assert zones.NFT_LIST in r["evidence"]["command"] and str(tmp_path / "zones.jsonl") in r["evidence"]["command"]
    assert r["clause"] == "8.1.3.2 a)"


def test_the_newest_push_that_applied_counts(tmp_path, live):
    """A later run that changed nothing counts like an apply; a rolled-back one leaves the device as it was."""
    installed = zones.nft_installed(live["pushed"])
    later = [push(days_ago=5, sha="0" * 64, installed=installed), push(days_ago=3, installed=installed, result="no_change"),
             push(days_ago=2, sha="1" * 64, result="rolled_back")]
    r = audit(tmp_path, later, [check()], live["pushed"])
    assert r["verdict"] == PASS and "zones.jsonl line 2" in r["findings"][0]["detail"], r["findings"]


@pytest.mark.parametrize("pushes", [[], [push(sha="ab" * 32)], [push(device="gd-fw1", syntax="usg")]],
                         ids=["never-pushed", "older-policy", "another-device"])
def test_rules_not_pushed_from_todays_policy_are_not_compliant(tmp_path, live, pushes):
    r = audit(tmp_path, [{**p, "installed": zones.nft_installed(live["pushed"])} for p in pushes], [check()], live["pushed"])
    assert r["verdict"] == FAIL
    (bad,) = failed(r)
    assert bad.startswith("rules pushed from today's policy") and "run netops zones apply gd-gap1" in bad


def test_live_rules_that_differ_from_the_push_are_not_compliant_with_the_first_difference(tmp_path, live):
    r = audit(tmp_path, [push(installed=zones.nft_installed(live["pushed"]))], [check()], live["edited"])
    assert r["verdict"] == FAIL
    (bad,) = failed(r)
    assert bad.startswith("live rules = the rules the push verified")
    assert bad.endswith("first difference 首个差异 (- recorded, + live): + ip saddr 10.44.3.10 accept")


def test_a_forward_chain_that_accepts_by_default_is_not_compliant(tmp_path, live):
    """Even when the push verified that very table: default deny is the requirement, not agreement."""
    r = audit(tmp_path, [push(installed=zones.nft_installed(live["accept"]))], [check()], live["accept"])
    assert r["verdict"] == FAIL
    assert failed(r) == [f"forward chain policy drop 默认拒绝: {zones.NFT_LIST}: no forward hook with policy drop 无默认拒绝"]


def test_a_missing_table_is_not_compliant(tmp_path, live):
    r = audit(tmp_path, [push(installed=zones.nft_installed(live["pushed"]))], [check()], live["absent"])
    assert r["verdict"] == FAIL
    (bad,) = failed(r)
    assert bad.startswith(f"table {zones.NFT_TABLE} on the device") and "Error:" in bad


@pytest.mark.parametrize("checks,why", [
    ([], "no probe across gd-gap1"),
    ([check(days_ago=1, probes=GOOD_PROBES[2:])], "no probe across gd-gap1"),   # only gd-fw1's flows
    ([check(days_ago=4)], f"probed before the push zones.jsonl line 1 ({when(3)})"),
    ([check(days_ago=1), check(days_ago=0.5, probes=[probe("gd-web1", "10.44.0.10", 5432, "block", "open",
                                                           boundaries=("gd-fw1", "gd-gap1"))])],
     "zones-checks.jsonl line 2 (" + when(0.5) + "): gd-web1 → 10.44.0.10 tcp/5432: expected block, outcome open"),
    ([check(probes=[probe("gd-qz1", "10.44.0.10", 5432, "pass", "timeout", flow="qz-sync"),
                    probe("gd-web1", "10.44.0.10", None, "block", "reply", boundaries=("gd-fw1", "gd-gap1"), protocol="icmp")])],
     "gd-qz1 → 10.44.0.10 tcp/5432 (qz-sync): expected pass, outcome timeout"),
], ids=["none", "other-boundary", "before-push", "newest-failed", "first-failed"])
def test_a_probe_matrix_missing_stale_or_failed_is_not_compliant(tmp_path, live, checks, why):
    r = audit(tmp_path, [push(installed=zones.nft_installed(live["pushed"]))], checks, live["pushed"])
    assert r["verdict"] == FAIL
    (bad,) = failed(r)
    assert bad.startswith("flows probed since the push") and why in bad, bad


def test_a_probe_older_than_the_period_is_not_compliant(tmp_path, live):
    r = audit(tmp_path, [push(days_ago=40, installed=zones.nft_installed(live["pushed"]))], [check(days_ago=31)], live["pushed"])
    assert r["verdict"] == FAIL and "31.0 d ago, older than 30 d" in failed(r)[0]


def test_a_vendor_firewall_without_a_live_comparison_is_manual_evidence(tmp_path):
    """gd-fw1 is a USG: pushed from today's policy and probed since, but its live rule base is not read: 需人工举证,
    never 符合; a failed part still fails."""
    today = zones.digest(zones.render(build(INV), "gd-fw1")[2])
    r = audit(tmp_path, [push("gd-fw1", sha=today, syntax="usg")], [check()], host="gd-fw1")
    assert r["verdict"] == MANUAL and r["evidence_required"]
    assert "live rule base of a usg device is not compared" in r["evidence"]["excerpt"]
    assert all(f["ok"] for f in r["findings"]) and len(r["findings"]) == 2
    r = audit(tmp_path, [push("gd-fw1", sha="cd" * 32, syntax="usg")], [check()], host="gd-fw1")
    assert r["verdict"] == FAIL and "run netops zones apply gd-fw1" in failed(r)[0]
    assert "not judged 未判定: the live rule base of a usg device" in r["evidence"]["excerpt"]


@pytest.mark.parametrize("host", ["gd-r1", "panyu-r1"])
def test_a_router_is_not_applicable_where_boundary_devices_enforce_the_zones(tmp_path, host):
    r = audit(tmp_path, host=host)
    assert r["verdict"] == NA and r["findings"] == []
    assert r["evidence"]["excerpt"] == ("非边界设备 not a boundary device: all its interfaces are in zone 业务专网 business; "
                                        "the boundaries are enforced on gd-fw1, gd-gap1")


def test_a_router_is_manual_evidence_where_the_inventory_models_no_boundary(tmp_path):
    r = audit(tmp_path, host="gd-r1", inv=UNZONED)
    assert r["verdict"] == MANUAL and "the inventory models no zone boundary" in r["evidence"]["excerpt"]


@pytest.mark.parametrize("name,text,why", [
    (boundary.PUSH_LOG, None, "zones.jsonl line 2: corrupt record 记录损坏"),                  # a half-written line
    (boundary.CHECK_LOG, '{"when": "2026-12-09T00:00:00", "probes": []}\n', "zones-checks.jsonl line 1: corrupt record"),  # no zone
    (boundary.CHECK_LOG, '{"when": "2026-12-09T00:00:00+00:00", "probes": [{"ok": "yes"}]}\n', "zones-checks.jsonl line 1: corrupt"),
    (boundary.PUSH_LOG, b"\xff\xfe\n", "zones.jsonl: cannot be read 无法读取"),
], ids=["truncated-push", "naive-time", "probe-shape", "not-utf8"])
def test_corrupt_records_are_manual_evidence_with_why(tmp_path, live, name, text, why):
    """Whatever the rest of the evidence says: a broken record gives no verdict."""
    good = push(installed=zones.nft_installed(live["pushed"]))
    write(tmp_path / boundary.PUSH_LOG, [good])
    write(tmp_path / boundary.CHECK_LOG, [check()])
    f = tmp_path / name
    if text is None:
        line = json.dumps(good)
        f.write_text(line + "\n" + line[: len(line) // 2], encoding="utf-8")
    elif isinstance(text, bytes):
        f.write_bytes(text)
    else:
        f.write_text(text, encoding="utf-8")
    rep = run_audit(INV, "gd-gap1", run=runner(live["pushed"]), rec=NO_BACKUPS,
                    zone_evidence=boundary.Evidence(INV, tmp_path, NOW))
    r = next(r for r in rep["hosts"][0]["results"] if r["id"] == boundary.CONTROL)
    assert r["verdict"] == MANUAL and r["findings"] == []
    assert why in r["evidence"]["excerpt"], r["evidence"]["excerpt"]


def test_a_saved_collection_without_the_zone_table_is_manual_evidence(tmp_path, live):
    r = audit(tmp_path, [push(installed=zones.nft_installed(live["pushed"]))], [check()], table=None)
    assert r["verdict"] == MANUAL and "no [zones] section" in r["evidence"]["excerpt"]


def test_only_a_boundary_on_nftables_reads_its_zone_table():
    """The read runs in the collection script (as root, like nft list ruleset): a boundary on nftables lists its
    table; every other host's script runs nothing for it."""
    ev = boundary.Evidence(INV, Path("/nonexistent"), NOW)
    for host, reads in (("gd-gap1", True), ("gd-db1", False), ("gd-qz1", False)):
        script = hostchecks.script({**host_params(INV, host), boundary.KEY: ev.view(host)})
        assert (f"( {zones.NFT_LIST} )" in script) == reads, host
