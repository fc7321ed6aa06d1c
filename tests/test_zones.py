"""`netops zones check` (static) and the boundary devices' rules rendered from the zone policy: every
path between zones passes a boundary device; the rules are exactly the policy's flows, default deny,
in each syntax (nftables checked by `nft -c` in a private namespace, Huawei USG, H3C SecPath and Cisco
ASA text by a parser here);
a hostile description cannot add a line."""
from __future__ import annotations

import ipaddress
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from jinbao_netops import escape
from jinbao_netops.inventory import load
from jinbao_netops.topology import zones
from jinbao_netops.topology.graph import build
from jinbao_netops.topology.provision import render as rd

ZONED = Path(__file__).parent / "fixtures" / "zones" / "inventory.yml"
HOSTILE = ["x\nrule name evil\n action permit", 'a" accept\n\tchain input { policy accept; }', "x\r\n#\nsecurity-policy",
           "help?", "\u2028 action permit", "\x1b[2J}", "{{ rules }}"]


def topo():
    return build(load(ZONED))


# --- the static check ---------------------------------------------------------------------------
def cell(rec: dict, a: str, b: str) -> dict:
    return next(c for c in rec["matrix"] if (c["from"], c["to"]) == (a, b))


def test_check_passes_and_names_the_boundaries_on_each_crossing():
    rec = zones.check(topo())
    assert rec["ok"] and rec["violations"] == [] and rec["boundaries"] == ["gd-fw1", "gd-gap1"]
    assert cell(rec, "internet", "dmz") == {"from": "internet", "to": "dmz", "connected": True,
                                            "boundaries": ["gd-fw1"], "allowed": ["portal-query"], "violations": 0}
    assert cell(rec, "internet", "business")["boundaries"] == ["gd-fw1", "gd-gap1"]  # both, in series
    assert cell(rec, "internet", "business")["allowed"] == []                        # default deny
    assert cell(rec, "dmz", "business")["allowed"] == ["qz-sync"] and cell(rec, "business", "dmz")["allowed"] == ["ops-ping"]
    assert not cell(rec, "business", "management")["connected"]  # out of band


def test_an_inventory_without_zones_has_no_crossing():
    rec = zones.check(build(load(Path(__file__).parent / "fixtures" / "broken" / "base.yml")))
    assert rec["ok"] and rec["boundaries"] == [] and not any(c["connected"] for c in rec["matrix"])


def test_a_path_between_zones_through_no_boundary_is_a_violation():
    """The graph is checked on its own, not trusted to validation: the 12333 server plugged into the
    business LAN (an inventory validation would refuse) is a bridge, with the path that makes it."""
    t = topo()
    web = t.inv.links["gd-web1-lan"]
    web.b = web.b.model_copy(update={"device": "gd-r1", "interface": "eth0"})
    t.inv.devices["gd-web1"].interfaces["eth0"].address = ipaddress.IPv4Interface("10.44.0.20/24")
    rec = zones.check(build(t.inv))
    assert not rec["ok"]
    [bridge] = rec["violations"]
    assert bridge["kind"] == "bridge" and bridge["zones"] == ["business", "internet"]
    assert bridge["path"] == ["segment:10.44.0.0/24", "gd-web1"]  # the business LAN, then the server
    assert "zones business and internet are joined without a boundary device" in bridge["message"]
    assert cell(rec, "internet", "business")["violations"] == 1


def test_a_flow_no_boundary_carries_is_a_violation(netops, tmp_path):
    inv = tmp_path / "inventory.yml"
    inv.write_text(ZONED.read_text(encoding="utf-8") + "  web-out:\n    from: {zone: dmz, role: server}\n"
                   "    to: {zone: internet, role: server}\n    protocol: tcp\n    ports: [443]\n    via: [gd-gap1]\n",
                   encoding="utf-8")
    r = netops("zones", "check", "-i", str(inv), "--json")
    assert r.returncode == 1, r.stderr
    data = json.loads(r.stdout)
    assert [v["flow"] for v in data["violations"]] == ["web-out"] and data["dynamic"] is None
    assert cell(data, "dmz", "internet")["violations"] == 1 and cell(data, "internet", "dmz")["violations"] == 0
    r = netops("zones", "check", "-i", str(inv))
    assert r.returncode == 1 and "✗ 违规 violation" in r.stdout and "flow web-out" in r.stdout


def test_check_cli_without_probe_says_it_is_the_static_half(netops):
    r = netops("zones", "check", "-i", str(ZONED))
    assert r.returncode == 0, r.stderr
    assert "安全区矩阵 Zone matrix" in r.stdout and "gd-fw1, gd-gap1" in r.stdout
    assert "static check only" in " ".join(r.stdout.split()) and "--probe" in r.stdout
    h = netops("zones", "check", "--help")
    assert "--probe" in h.stdout and "forbidden sample" in " ".join(h.stdout.split())


def test_scope_reports_that_part(netops):
    r = netops("zones", "check", "-i", str(ZONED), "--scope", "gd-gap1", "--json")
    data = json.loads(r.stdout)
    assert r.returncode == 0 and data["boundaries"] == ["gd-gap1"] and data["scope"] == "gd-gap1"
    assert cell(data, "internet", "dmz") ["boundaries"] == [] and cell(data, "dmz", "business")["boundaries"] == ["gd-gap1"]
    assert cell(data, "internet", "dmz")["allowed"] == []  # carried by gd-fw1, outside the scope


# --- rules --------------------------------------------------------------------------------------
def test_rules_are_the_policy_flows_on_the_boundaries_they_cross():
    view = zones.ZoneView(topo())
    got = {d: [(r.flow, r.inbound, r.outbound, r.sources, r.destinations, r.protocol, r.ports) for r in rs]
           for d, rs in view.rules.items()}
    assert got == {
        "gd-fw1": [("portal-query", ["GigabitEthernet1/0/1"], ["GigabitEthernet1/0/2"], ["10.44.3.10"], ["10.44.4.10"],
                    "tcp", [8443])],
        "gd-gap1": [("qz-sync", ["eth1"], ["eth0"], ["10.44.4.10"], ["10.44.0.10"], "tcp", [5432]),
                    ("ops-ping", ["eth0"], ["eth1"], None, ["10.44.4.10"], "icmp", [])],
    }


SECOND_DC = """  gd-gap2: {site: guangdong, role: gap_gateway, platform: debian, management: 10.254.44.30, credentials: ops,
            interfaces: {eth0: {address: 10.44.2.3/29}, eth1: {address: 10.44.6.2/24, zone: dmz}}}
  gd-fw2: {site: guangdong, role: firewall, platform: hp_comware, management: 10.254.44.31, credentials: ops, zone: dmz,
           interfaces: {GE1/0/1: {address: 10.44.5.1/24, zone: internet}, GE1/0/2: {address: 10.44.6.1/24}}}
  gd-web2: {site: guangdong, role: server, platform: debian, management: 10.254.44.32, credentials: ops, zone: internet,
            interfaces: {eth0: {address: 10.44.5.10/24}}}
  gd-qz2: {site: guangdong, role: server, platform: debian, management: 10.254.44.33, credentials: ops, zone: dmz,
           interfaces: {eth0: {address: 10.44.6.10/24}}}
"""
SECOND_LINKS = """  gd-gap2-up: {a: "gd-gap2:eth0", b: "gd-r1:eth4", kind: lan, bandwidth_mbps: 1000}
  gd-gap2-dmz: {a: "gd-gap2:eth1", b: "gd-fw2:GE1/0/2", kind: lan, bandwidth_mbps: 1000}
  gd-qz2-lan: {a: "gd-qz2:eth0", b: "gd-fw2:GE1/0/2", kind: lan, bandwidth_mbps: 1000}
  gd-web2-lan: {a: "gd-web2:eth0", b: "gd-fw2:GE1/0/1", kind: lan, bandwidth_mbps: 1000}
"""


def test_a_flow_without_sites_joins_each_side_to_its_nearest_counterpart(tmp_path):
    """Two DCs, each a 外网 and a DMZ: each 12333 server reaches its own front end through its own
    firewall — not the other DC's, through both 网闸 and the business network."""
    text = ZONED.read_text(encoding="utf-8").replace("\nlinks:\n", "\n" + SECOND_DC + "\nlinks:\n").replace(
        "\nzone_policy:\n", SECOND_LINKS + "\nzone_policy:\n")
    f = tmp_path / "inventory.yml"
    f.write_text(text, encoding="utf-8")
    view = zones.ZoneView(build(load(f)))
    got = {d: [(r.flow, r.sources, r.destinations) for r in rs] for d, rs in view.rules.items()}
    assert got["gd-fw1"] == [("portal-query", ["10.44.3.10"], ["10.44.4.10"])]
    assert got["gd-fw2"] == [("portal-query", ["10.44.5.10"], ["10.44.6.10"])]
    # the business side has one region: from it, both front ends are nearest, each through its own 网闸
    assert got["gd-gap1"] == [("qz-sync", ["10.44.4.10"], ["10.44.0.10"]), ("ops-ping", None, ["10.44.4.10"])]
    assert got["gd-gap2"] == [("ops-ping", None, ["10.44.6.10"])]  # qz-sync is via gd-gap1 only
    assert zones.check(view.topo)["ok"]


NFT_RULES = [
    'iifname { "eth1" } oifname { "eth0" } ip saddr { 10.44.4.10 } ip daddr { 10.44.0.10 } tcp dport { 5432 } '
    'ct state new accept comment "qz-sync"',
    'iifname { "eth0" } oifname { "eth1" } ip daddr { 10.44.4.10 } meta l4proto icmp ct state new accept comment "ops-ping"',
]


def nft_lines(text: str) -> list[str]:
    """The ruleset's statements: every line that is not a comment or blank."""
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")]


def test_nftables_rules_default_deny_and_exactly_the_flows():
    syntax, _, text = zones.render(topo(), "gd-gap1")
    assert syntax == "nftables"
    body = nft_lines(text)
    assert body[:6] == ["table inet netops_zones", "delete table inet netops_zones", "table inet netops_zones {",
                        "chain forward {", "type filter hook forward priority filter; policy drop;",
                        "ct state established,related accept"]
    assert body[6:] == [*NFT_RULES, "}", "}"]


NFT = shutil.which("nft") or "/usr/sbin/nft"  # Debian's nftables (install.sh); /usr/sbin is not on every user's PATH


def nft_check(text: str, tmp_path) -> subprocess.CompletedProcess:
    """``nft -c`` (check only) in a new user and network namespace: no root needed, the host untouched."""
    f = tmp_path / "rules.nft"
    f.write_text(text, encoding="utf-8")
    return subprocess.run(["unshare", "--user", "--map-root-user", "--net", NFT, "-c", "-f", str(f)],
                          capture_output=True, text=True, timeout=60)


def test_nft_accepts_the_rendered_ruleset(tmp_path):
    r = nft_check(zones.render(topo(), "gd-gap1")[2], tmp_path)
    assert r.returncode == 0, r.stderr
    r = nft_check("table inet t {\n chain f { bogus }\n}\n", tmp_path)  # and the check does check
    assert r.returncode != 0


def policy_rules(text: str, header: str) -> dict[str, list[str]]:
    """A vendor config's security-policy rules, read with the suite's config parser: rule name →
    its lines, and the zones: zone → its interfaces."""
    tree = rd.parse(text)
    out: dict[str, list[str]] = {}
    for stanza in tree.children:
        if stanza.line == header:
            for rule in stanza.children:
                out[rule.line.split(" name ", 1)[1]] = [c.line for c in rule.children]
        elif stanza.line.startswith(("firewall zone", "security-zone name")):
            out[stanza.line] = [c.line for c in stanza.children]
    return out


USG = {
    "firewall zone untrust": ["add interface GigabitEthernet1/0/1"],
    "firewall zone dmz": ["add interface GigabitEthernet1/0/2"],
    "portal-query": ["description 12333门户经前置机查询", "source-zone untrust", "destination-zone dmz",
                     "source-address 10.44.3.10 32", "destination-address 10.44.4.10 32",
                     "service protocol tcp destination-port 8443", "action permit"],
    "netops-default-deny": ["action deny"],
}
SECPATH = {
    "security-zone name Untrust": ["import interface GigabitEthernet1/0/1"],
    "security-zone name DMZ": ["import interface GigabitEthernet1/0/2"],
    "portal-query": ["description 12333门户经前置机查询", "action pass", "source-zone Untrust", "destination-zone DMZ",
                     "source-ip-host 10.44.3.10", "destination-ip-host 10.44.4.10", "service-port tcp destination eq 8443"],
    "netops-default-deny": ["action drop"],
}
VENDORS = {"huawei_vrp": ("usg", "security-policy", USG), "hp_comware": ("secpath", "security-policy ip", SECPATH)}


def render_on(platform: str, description: str | None = None) -> tuple[str, str]:
    t = topo()
    t.inv.devices["gd-fw1"].platform = platform
    if description is not None:
        t.inv.zone_policy["portal-query"].description = description  # past the model, as if it had slipped through
    syntax, _, text = zones.render(t, "gd-fw1")
    return syntax, text


@pytest.mark.parametrize("platform", sorted(VENDORS))
def test_vendor_rules_are_exactly_the_flows_then_deny(platform):
    syntax, header, want = VENDORS[platform]
    got_syntax, text = render_on(platform)
    assert got_syntax == syntax
    assert policy_rules(text, header) == want
    assert list(policy_rules(text, header))[-1] == "netops-default-deny"  # the deny is last


@pytest.mark.parametrize("platform", sorted(VENDORS))
@pytest.mark.parametrize("text", HOSTILE)
def test_a_hostile_description_cannot_add_a_line(platform, text):
    _, header, want = VENDORS[platform]
    _, benign = render_on(platform)
    _, hostile = render_on(platform, text)
    assert len(hostile.splitlines()) == len(benign.splitlines())
    got = policy_rules(hostile, header)
    assert got["portal-query"][0] == f"description {escape.cli(text)}".strip()
    assert {k: v[1:] if k == "portal-query" else v for k, v in got.items()} == \
        {k: v[1:] if k == "portal-query" else v for k, v in want.items()}


@pytest.mark.parametrize("text", HOSTILE)
def test_a_hostile_description_cannot_add_an_nft_statement(text, tmp_path):
    t = topo()
    t.inv.zone_policy["qz-sync"].description = text
    hostile = zones.render(t, "gd-gap1")[2]
    assert nft_lines(hostile)[6:] == [*NFT_RULES, "}", "}"]
    assert nft_check(hostile, tmp_path).returncode == 0


def asa_rules(text: str) -> dict[str, list[str]]:
    """An ASA config's interfaces (name → lines) and access lists (name → entries, then where applied)."""
    out: dict[str, list[str]] = {}
    for stanza in rd.parse(text).children:
        words = stanza.line.split()
        if words[0] == "interface":
            out[stanza.line] = [c.line for c in stanza.children]
        elif words[0] == "access-list":
            out.setdefault(words[1], []).append(" ".join(words[2:]))
        elif words[0] == "access-group":
            out.setdefault(words[1], []).append(" ".join(["applied", *words[2:]]))
        else:
            out.setdefault("(other)", []).append(stanza.line)
    return out


ASA = {
    "interface GigabitEthernet1/0/1": ["nameif internet", "security-level 0"],
    "interface GigabitEthernet1/0/2": ["nameif dmz", "security-level 50"],
    "netops-internet-in": ["remark portal-query: 12333门户经前置机查询",
                           "extended permit tcp host 10.44.3.10 host 10.44.4.10 eq 8443",
                           "extended deny ip any any", "applied in interface internet"],
    "netops-dmz-in": ["extended deny ip any any", "applied in interface dmz"],
}


def test_asa_rules_are_inbound_lists_of_exactly_the_flows_then_deny():
    syntax, text = render_on("cisco_asa")
    assert syntax == "asa" and asa_rules(text) == ASA


@pytest.mark.parametrize("text", HOSTILE)
def test_a_hostile_description_cannot_add_an_asa_line(text):
    _, benign = render_on("cisco_asa")
    _, hostile = render_on("cisco_asa", text)
    assert len(hostile.splitlines()) == len(benign.splitlines())
    got = asa_rules(hostile)
    assert " ".join(got["netops-internet-in"][0].split()) == " ".join(f"remark portal-query: {escape.cli(text)}".split())
    assert {k: v[1:] if k == "netops-internet-in" else v for k, v in got.items()} == \
        {k: v[1:] if k == "netops-internet-in" else v for k, v in ASA.items()}


def test_rules_cli(netops, tmp_path):
    r = netops("zones", "rules", "gd-gap1", "-i", str(ZONED))
    assert r.returncode == 0 and nft_lines(r.stdout)[6:8] == NFT_RULES
    out = tmp_path / "gd-fw1.cfg"
    r = netops("zones", "rules", "gd-fw1", "-i", str(ZONED), "--out", str(out), "--json")
    data = json.loads(r.stdout)
    assert r.returncode == 0 and data["syntax"] == "usg" and data["out"] == str(out)
    assert policy_rules(out.read_text(encoding="utf-8"), "security-policy") == USG
    r = netops("zones", "rules", "gd-r1", "-i", str(ZONED))
    assert r.returncode == 2 and r.stderr.strip().endswith("device 'gd-r1': a router, not a boundary device "
                                                            "(firewall, gap_gateway) 非边界设备")
