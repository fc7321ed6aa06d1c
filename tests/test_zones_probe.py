"""The dynamic zone check's plan (which probes prove the policy), the probe program itself (run for real in a
private user and network namespace: a listener, a closed port, a port nftables drops, ICMP), what a
probe's outcome means, the host firewalls' admits for the zone policy, flow sides naming devices, the lab
twin's routing around a boundary device, and `zones apply`'s refusals."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from jinbao_netops.inventory import load
from jinbao_netops.lab import plan as labplan
from jinbao_netops.security import admits
from jinbao_netops.topology import zoneprobe, zones
from jinbao_netops.topology.graph import build

ZONED = Path(__file__).parent / "fixtures" / "zones" / "inventory.yml"
NFT = shutil.which("nft") or "/usr/sbin/nft"


def view(path=None):
    return zones.ZoneView(build(load(path)))


# --- the plan -----------------------------------------------------------------------------------
def test_default_plan_tries_every_flow_and_a_forbidden_sample_both_ways():
    v = view()
    probes = zoneprobe.plan(v)
    allowed = [p for p in probes if p.expect == "pass"]
    assert {p.flow for p in allowed} == set(v.inv.zone_policy)
    assert {(p.source, p.destination, p.protocol, p.port) for p in allowed if p.flow == "gd-12333-query"} == {
        ("gd-web1", "gd-db1", "tcp", 5432), ("gd-web1", "gd-dr-db1", "tcp", 5432)}
    planner = zoneprobe.Planner(v)
    blocked = [p for p in probes if p.expect == "block"]
    # nothing the policy allows is expected to be blocked
    assert not any(planner.permitted(p.source, p.destination, p.protocol, p.port) for p in blocked)
    for fw, web in (("gd-fw1", "gd-web1"), ("sc-gap1", "sc-web1")):
        mine = [p for p in blocked if fw in p.boundaries]
        assert {(p.from_zone, p.to_zone) for p in mine} == {("business", "internet"), ("internet", "business")}
        assert {p.source for p in mine if p.from_zone == "internet"} == {web}
        assert {p.port for p in mine if p.protocol == "tcp"} == set(zoneprobe.COMMON_TCP)
    # towards the portal through the firewall: a source the policy names (the monitor host) and one it does not
    out = {p.source for p in blocked if "gd-fw1" in p.boundaries and p.from_zone == "business"}
    assert len(out) == 2 and "gd-mon1" in out
    # the 网闸 lets one exchange through, one way: every connection from the 业务专网 towards the portal is tried
    # and must fail, and from the portal only tcp/5432 to sc-db1 is allowed
    gap = [p for p in probes if "sc-gap1" in p.boundaries]
    assert [(p.source, p.destination, p.port) for p in gap if p.expect == "pass"] == [("sc-web1", "sc-db1", 5432)]
    assert not any(p.expect == "pass" and p.from_zone == "business" for p in gap)
    assert all(planner.can_probe(p.source) for p in probes)
    assert not any(v.inv.devices[p.source].boundary or v.inv.devices[p.destination].boundary for p in probes)


def test_plan_for_one_boundary_and_through_boundaries_in_series():
    v = view(ZONED)
    probes = zoneprobe.plan(v, {"gd-gap1"})
    assert all("gd-gap1" in p.boundaries for p in probes)
    sync = [p for p in probes if p.flow == "qz-sync"]
    assert [(p.source, p.destination, p.port) for p in sync] == [("gd-qz1", "gd-db1", 5432)]
    # the USG firewall (a vendor device) is never a probe's source
    assert "gd-fw1" not in {p.source for p in zoneprobe.plan(v)}
    counts = Counter((p.from_zone, p.to_zone) for p in probes if p.expect == "block")
    assert counts[("dmz", "business")] and counts[("business", "dmz")]


@pytest.mark.parametrize("expect,outcome,ok", [
    ("pass", "open", True), ("pass", "refused", True), ("pass", "reply", True), ("pass", "timeout", False),
    ("pass", "no_reply", False), ("pass", "error ssh", False), ("block", "timeout", True), ("block", "no_reply", True),
    ("block", "unreachable", True), ("block", "open", False), ("block", "refused", False), ("block", "reply", False),
    ("block", "error ssh", False), ("block", "", False)])
def test_what_an_outcome_means(expect, outcome, ok):
    p = zoneprobe.Probe("a", "b", "10.0.0.1", "tcp", 22, expect, None, "business", "internet", ["fw"], outcome)
    assert p.ok is ok


def test_matrix_counts_per_boundary_and_zone_pair():
    mk = lambda exp, oc, fz="internet", tz="business": zoneprobe.Probe("a", "b", "10.0.0.1", "tcp", 22, exp, None, fz, tz,
                                                                      ["fw"], oc)
    cells = zoneprobe.matrix([mk("pass", "open"), mk("block", "timeout"), mk("block", "open"),
                              mk("block", "timeout", "business", "internet")])
    assert [(c["from"], c["to"], c["allowed_ok"], c["allowed"], c["forbidden_ok"], c["forbidden"]) for c in cells] == [
        ("business", "internet", 0, 0, 1, 1), ("internet", "business", 1, 1, 1, 2)]
    assert len(cells[1]["failed"]) == 1 and "应阻断 expected blocked, open" in cells[1]["failed"][0]


# --- the probe program, for real ----------------------------------------------------------------
NETNS_SCRIPT = r"""
set -e
ip link set lo up
{nft} -f - <<'EOF'
table inet t {{
  chain i {{
    type filter hook input priority filter; policy accept;
    tcp dport 7003 drop
  }}
}}
EOF
ready=$(mktemp)
python3 -c 'import socket,time; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", 7001)); s.listen(); print("ready", flush=True); time.sleep(30)' > "$ready" &
until [ -s "$ready" ]; do sleep 0.05; done  # listening (a fixed pause lost the race on a loaded machine)
rm -f "$ready"
printf '%s' '{probes}' | {py} -c "$1" 1
kill $!
"""


def test_the_probe_program_tells_open_refused_dropped_and_icmp():
    probes = [["tcp", "127.0.0.1", 7001], ["tcp", "127.0.0.1", 7002], ["tcp", "127.0.0.1", 7003],
              ["udp", "127.0.0.1", 7004], ["icmp", "127.0.0.1", None]]
    script = NETNS_SCRIPT.format(nft=NFT, probes=json.dumps(probes), py=sys.executable)
    r = subprocess.run(["unshare", "--user", "--map-root-user", "--net", "sh", "-c", script, "sh", zoneprobe.PROGRAM],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.strip().splitlines()[-1]) == ["open", "refused", "timeout", "refused", "reply"]


# --- the hosts' own firewalls -------------------------------------------------------------------
def test_hosts_admit_exactly_the_flows_towards_them():
    inv = load(None)
    zone = lambda h: [a for a in admits.admitted(inv, h) if a["what"].startswith("zone flow")]
    assert zone("gd-db1") == [{"proto": "tcp", "port": 5432, "sources": ["10.44.3.10"],
                               "what": "zone flow 安全区策略 gd-12333-query"}]
    assert zone("gd-web1") == [{"proto": "tcp", "port": 443, "sources": ["10.44.0.12"],
                                "what": "zone flow 安全区策略 gd-12333-watch"}]  # ICMP: every host answers it already
    assert zone("gd-fw1") == [] and zone("gd-bak1") == []


def test_a_whole_zone_source_is_admitted_by_its_subnets():
    inv = load(ZONED)
    (a,) = [a for a in admits.admitted(inv, "gd-db1") if a["what"].startswith("zone flow")]
    assert a["sources"] == ["10.44.4.10"] and a["port"] == 5432  # qz-sync names the DMZ's servers
    inv.zone_policy["qz-sync"].from_.role = None                   # the whole DMZ: its subnet
    (a,) = [a for a in admits.admitted(inv, "gd-db1") if a["what"].startswith("zone flow")]
    assert a["sources"] == ["10.44.4.0/24"]


# --- flow sides naming devices ------------------------------------------------------------------
@pytest.mark.parametrize("device,message", [
    ("gd-nosuch", "field 'to.devices.0': unknown device 'gd-nosuch'"),
    ("gd-bak1", "field 'to.devices.0': device 'gd-bak1' has no interface in zone internet")])
def test_a_flow_naming_a_wrong_device_is_one_line(netops, tmp_path, device, message):
    inv = tmp_path / "inv"
    shutil.copytree(load(None).root, inv)
    f = inv / "guangdong.yml"
    f.write_text(f.read_text(encoding="utf-8").replace("to: {zone: internet, devices: [gd-web1]}",
                                                       f"to: {{zone: internet, devices: [{device}]}}", 1), encoding="utf-8")
    r = netops("inventory", "validate", "-i", str(inv))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert message in r.stderr and "guangdong.yml" in r.stderr and "gd-12333-watch" in r.stderr, r.stderr


# --- the lab twin around a boundary -------------------------------------------------------------
def test_the_lab_routes_the_segment_behind_the_firewall():
    p = labplan.build(load(None), "jb")
    core, fw, web = p.nodes["gd-r1"], p.nodes["gd-fw1"], p.nodes["gd-web1"]
    assert core.statics == [("10.44.3.0/24", "10.44.0.2")]
    assert "\nip route 10.44.3.0/24 10.44.0.2\n" in core.frr_conf and "\n redistribute static\n" in core.frr_conf
    assert fw.forwards and fw.gateway == "10.44.0.1" and web.gateway == "10.44.3.1" and not web.forwards
    assert not p.nodes["gd-db1"].forwards and p.nodes["gd-dr-r1"].statics == []
    assert "redistribute static" not in p.nodes["gd-dr-r1"].frr_conf


# --- zones apply refuses before touching anything ------------------------------------------------
@pytest.mark.parametrize("device,message", [
    ("gd-r1", "device 'gd-r1': a router, not a boundary device"),
    ("gd-nosuch", "device 'gd-nosuch': no such device"),
    ("gd-fw1", "field 'platform': pushing zone rules is built for nftables boundaries")])
def test_apply_refuses_what_it_cannot_push(netops, tmp_path, device, message):
    r = netops("zones", "apply", device, "-i", str(ZONED), "--changes", str(tmp_path / "c"))
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert not (tmp_path / "c" / "zones.jsonl").exists()
