"""Topology graph and analysis (issue 3): paths, single points of failure, impact, check.

Every analysis is also recomputed here by brute force (remove the failure, look for a path with plain
networkx) on the embedded default, on edited copies of it and on a small generated network, so the
fast algorithms (dominator tree, local searches, augmenting paths) are checked against the obvious ones.
"""
from __future__ import annotations

import copy
import shutil
from pathlib import Path

import networkx as nx
import pytest
import yaml

from jinbao_netops.inventory import DEFAULT_INVENTORY, load
from jinbao_netops.inventory.generate import generate, write
from jinbao_netops.inventory.model import Device, Link
from jinbao_netops.errors import UsageError
from jinbao_netops.topology import analysis as an
from jinbao_netops.topology.graph import ROOT, build, ospf_cost

SINGLE_HOMED = {"huadu": ("guangzhou-r1", "huadu-up1"), "longgang": ("shenzhen-r1", "longgang-up1"),
                "pidu": ("chengdu-r1", "pidu-up1"), "jiangyou": ("mianyang-r1", "jiangyou-up1")}


# --- helpers -------------------------------------------------------------------------------------
def edited(tmp_path: Path, edit) -> Path:
    """A copy of the embedded default with ``edit(docs)`` applied; docs = file name → parsed YAML."""
    root = tmp_path / "inv"
    shutil.copytree(DEFAULT_INVENTORY, root)
    docs = {p.name: yaml.safe_load(p.read_text(encoding="utf-8")) for p in root.glob("*.yml")}
    edit(docs)
    for name, doc in docs.items():
        (root / name).write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return root


def shared_srlg(docs):
    """panyu's two uplinks (to two cities) run in one duct: same SRLG."""
    docs["guangdong.yml"]["links"]["panyu-up2"]["srlg"] = "panyu-ct"


def parallel_uplink(srlg):
    """A second line huadu-r1 ↔ guangzhou-r1 in the given SRLG."""
    def edit(docs):
        gd = docs["guangdong.yml"]
        gd["devices"]["huadu-r1"]["interfaces"]["eth2"] = {"address": "10.44.255.23/31"}
        gd["devices"]["guangzhou-r1"]["interfaces"]["eth7"] = {"address": "10.44.255.22/31"}
        gd["links"]["huadu-up1b"] = {"a": "huadu-r1:eth2", "b": "guangzhou-r1:eth7", "kind": "mpls_vpn",
                                     "bandwidth_mbps": 100, "carrier": "china_unicom", "srlg": srlg}
    return edit


def spof_map(topo) -> dict[tuple[str, str], list[str]]:
    return {(s.failure.kind, s.failure.id): s.sites for s in an.spof(topo)}


def brute_cut(topo, failures) -> set[str]:
    """Sites (other than the failed devices' own) whose routers all lose every path to a ministry router,
    with plain networkx on the active graph minus the failure; hosts never carry transit."""
    g = nx.Graph()
    failed_dev = set().union(*(f.devices for f in failures))
    failed_links = set().union(*(f.links for f in failures))
    for u, v, k in topo.active.edges(keys=True):
        if k in failed_links or u in failed_dev or v in failed_dev:
            continue
        g.add_edge(u, v)
    for n in topo.graph.nodes:
        if n not in failed_dev:
            g.add_node(n)
    g.add_node(ROOT)
    for m in topo.anchors[topo.ministry]:
        if m in g:
            g.add_edge(ROOT, m)
    transit = g.subgraph([n for n in g if n == ROOT or topo.graph.nodes[n]["transit"]])
    reach = nx.node_connected_component(transit, ROOT)
    before = an.analysis(topo)
    own = {topo.site_of(d) for d in failed_dev}
    out = set()
    for sid in topo.inv.sites:
        if sid == topo.ministry or sid in own:
            continue
        anchors = before.reachable_anchors(sid)
        if anchors and not any(a in reach for a in anchors):
            out.add(sid)
    return out


def all_units(topo):
    units = [topo.failure_of("device", d) for d in topo.graph.nodes]
    units += [topo.failure_of("link", k) for _, _, k in topo.active.edges(keys=True)]
    units += [topo.failure_of("srlg", s) for s in topo.srlgs]
    return units


def assert_spof_matches_brute_force(topo):
    expected = {}
    for f in all_units(topo):
        if f.kind == "srlg" and len(f.links) < 2:
            continue  # an SRLG with one active link is that link
        cut = brute_cut(topo, [f])
        if cut:
            expected[(f.kind, f.id)] = sorted(cut)
    assert {k: sorted(v) for k, v in spof_map(topo).items()} == expected
    # and the local search behind impact() agrees for every unit, cutting something or not
    a = an.analysis(topo)
    for f in all_units(topo):
        assert a.cut_off([f])[0] == brute_cut(topo, [f]), f


def brute_disjoint(topo, sid: str, nodes: bool) -> int:
    """Max-flow with networkx: site devices → ministry devices; link nodes (parallel links of one SRLG
    merged) of capacity 1, and in node mode every other device of capacity 1."""
    inv = topo.inv
    own = set(inv.devices_by_site[sid])
    mins = set(inv.devices_by_site[topo.ministry])
    d = nx.DiGraph()
    groups = {}
    for u, v, k, data in topo.active.edges(keys=True, data=True):
        key = (min(u, v), max(u, v), data["srlg"]) if data["srlg"] else (k,)
        groups.setdefault(key, (u, v, k))
    cap = {}
    for u, v, k in groups.values():
        cap[("L", k)] = 1
        for x, y in ((u, v), (v, u)):
            d.add_edge(("out", x), ("in", ("L", k)))
            d.add_edge(("out", ("L", k)), ("in", y))
    for n in topo.graph.nodes:
        limited = nodes and n not in own and n not in mins
        if topo.graph.nodes[n]["transit"] or n in own:
            d.add_edge(("in", n), ("out", n), capacity=1 if limited else len(groups) + 1)
        else:  # a host: may end a path, never lead anywhere
            d.add_node(("in", n))
    for key, c in cap.items():
        d.add_edge(("in", key), ("out", key), capacity=c)
    for a in topo.anchors[sid]:
        d.add_edge("S", ("in", a))
    for m in topo.anchors[topo.ministry]:
        d.add_edge(("out", m), "T")
    return nx.maximum_flow_value(d, "S", "T")


@pytest.fixture(scope="module")
def topo():
    return build(load(DEFAULT_INVENTORY))


# --- the graph -----------------------------------------------------------------------------------
def test_graph_carries_the_inventory(topo):
    g = topo.graph
    assert isinstance(g, nx.MultiGraph)
    assert g.number_of_nodes() == 46 and g.number_of_edges() == 56
    assert g.nodes["guangzhou-r1"] == {"site": "guangzhou", "level": "city", "role": "router",
                                       "name": "广州市核心路由器", "platform": "frr", "zone": "business",
                                       "boundary": False, "transit": True}
    assert g.nodes["panyu-db1"]["transit"] is False and g.nodes["panyu-db1"]["role"] == "database"
    e = g.edges["panyu-r1", "shenzhen-r1", "panyu-up2"]
    assert e == {"link": "panyu-up2", "kind": "mpls_vpn", "bandwidth_mbps": 100, "carrier": "china_unicom",
                 "srlg": "panyu-cu", "state": "active", "cost": 1000}
    assert g.edges["longgang-r1", "guangzhou-r1", "longgang-up2"]["state"] == "planned"
    # analysis sees active links only; LAN links are in (hosts hang off routers)
    assert topo.active.number_of_edges() == 55 and not topo.active.has_edge("longgang-r1", "guangzhou-r1")
    assert topo.active.has_edge("panyu-db1", "panyu-r1")
    assert topo.srlgs["longgang-cu"] == [] and topo.srlg_links["longgang-cu"] == ["longgang-up2"]
    assert topo.anchors["bu"] == ["bu-r1", "bu-r2"] and topo.anchors["panyu"] == ["panyu-r1"]


def test_ospf_cost_matches_the_lab_reference_bandwidth():
    assert [ospf_cost(b) for b in (10000, 1000, 100, 10, 100000, 200000)] == [10, 100, 1000, 10000, 1, 1]


def test_resolve_failure_units(topo):
    assert topo.resolve("guangzhou-r1").devices == {"guangzhou-r1"}
    assert topo.resolve("huadu-up1").links == {"huadu-up1"}
    assert topo.resolve("srlg:panyu-ct").kind == "srlg" and topo.resolve("panyu-ct").links == {"panyu-up1"}
    assert topo.resolve("longgang-up2").links == frozenset()  # planned: carries nothing
    for bad in ("nosuch", "device:huadu-up1", "srlg:guangzhou-r1"):
        with pytest.raises(UsageError) as e:
            topo.resolve(bad)
        assert "\n" not in str(e.value)
    f = topo.resolve("gd-r1")
    without = topo.without(f)
    assert "gd-r1" not in without and without.number_of_edges() == 55 - 8  # 4 WAN lines, 4 LAN hosts


# --- single points of failure ---------------------------------------------------------------------
def test_spof_on_the_default_is_exactly_the_single_homed_counties(topo):
    expected = {}
    for county, (router, link) in SINGLE_HOMED.items():
        expected[("device", router)] = [county]
        expected[("link", link)] = [county]
    assert spof_map(topo) == expected
    tiers = {(s.failure.kind, s.failure.id): s.tier for s in an.spof(topo)}
    assert tiers[("device", "guangzhou-r1")] == "city" and tiers[("link", "huadu-up1")] == "county"
    single = {s.id for s in topo.inv.sites.values() if s.level.value == "county" and s.homing == "single"}
    assert {x for s in an.spof(topo) for x in s.sites} == single == set(SINGLE_HOMED)


def test_spof_matches_brute_force_on_the_default(topo):
    assert_spof_matches_brute_force(topo)


def test_own_devices_and_ministry_are_not_reported(topo):
    ids = {s.failure.id for s in an.spof(topo)}
    # a county router cuts off only its own county; province cores have the DR path; either ministry
    # router is the ministry
    assert not ids & {"huadu-r1", "panyu-r1", "gd-r1", "sc-r1", "gd-dr-r1", "bu-r1", "bu-r2"}


def test_shared_srlg_is_one_failure_unit(tmp_path):
    topo = build(load(edited(tmp_path, shared_srlg)))
    m = spof_map(topo)
    assert m[("srlg", "panyu-ct")] == ["panyu"]
    assert ("link", "panyu-up1") not in m and ("link", "panyu-up2") not in m  # each line alone is not
    assert_spof_matches_brute_force(topo)
    rec = an.impact(topo, "panyu-ct")
    assert rec["cut_off"] == {"county": ["panyu"]} and rec["down"] == {}


@pytest.mark.parametrize("srlg, spof_link_units", [("huadu-ct", {("srlg", "huadu-ct")}), ("huadu-cu2", set())])
def test_parallel_links_count_once_per_srlg(tmp_path, srlg, spof_link_units):
    topo = build(load(edited(tmp_path, parallel_uplink(srlg))))
    m = spof_map(topo)
    assert {k for k in m if k[0] != "device" and m[k] == ["huadu"]} == spof_link_units
    assert m[("device", "guangzhou-r1")] == ["huadu"]  # both lines end on the same city router
    assert_spof_matches_brute_force(topo)
    p = an.paths(topo, "huadu")
    assert p["link_disjoint"] == (1 if srlg == "huadu-ct" else 2) and p["node_disjoint"] == 1
    assert len(p["paths"]) == 2  # two equal-cost lines: two paths


def test_hosts_do_not_carry_transit(topo):
    """A server with NICs on two routers is no second path for anything."""
    inv = copy.deepcopy(topo.inv)
    inv.devices["bridge-srv"] = Device.model_validate({
        "id": "bridge-srv", "site": "huadu", "role": "server", "platform": "debian", "management": "10.254.44.99",
        "credentials": "ops", "interfaces": {"eth0": {}, "eth1": {}}})
    for lid, end in (("bridge-a", "huadu-r1:eth0"), ("bridge-b", "panyu-r1:eth0")):
        iface = "eth0" if lid == "bridge-a" else "eth1"
        inv.links[lid] = Link.model_validate({"id": lid, "a": f"bridge-srv:{iface}", "b": end, "kind": "lan",
                                              "bandwidth_mbps": 1000})
    inv.index()
    t = build(inv)
    assert spof_map(t)[("link", "huadu-up1")] == ["huadu"]
    assert an.paths(t, "huadu")["link_disjoint"] == 1
    assert an.impact(t, "huadu-up1")["cut_off"] == {"county": ["huadu"]}
    assert_spof_matches_brute_force(t)
    # but the server itself is cut off only when both its routers are
    a = an.analysis(t)
    assert "bridge-srv" not in a._cut_nodes({"huadu-r1"})
    assert "bridge-srv" in a._cut_nodes({"huadu-r1", "panyu-r1"})


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    out = tmp_path_factory.mktemp("topo-small") / "inv"
    write(generate(provinces=3, cities=9, counties=60, seed=11), out)
    return build(load(out))


def test_spof_matches_brute_force_on_a_generated_network(small):
    assert_spof_matches_brute_force(small)
    single = {s.id for s in small.inv.sites.values() if s.level.value == "county" and s.homing == "single"}
    assert {x for s in an.spof(small) for x in s.sites} == single
    assert an.check(small) == []


# --- impact --------------------------------------------------------------------------------------
@pytest.mark.parametrize("city, county", [("guangzhou", "huadu"), ("shenzhen", "longgang"),
                                          ("chengdu", "pidu"), ("mianyang", "jiangyou")])
def test_impact_of_a_city_router_is_its_single_homed_counties(topo, city, county):
    rec = an.impact(topo, f"{city}-r1")
    assert rec["cut_off"] == {"county": [county]}
    assert rec["down"] == {"city": [city]}
    assert rec["cut_off_count"] == 1


def test_impact_groups_by_level_and_combines_failures(topo):
    assert an.impact(topo, "gd-r1")["cut_off"] == {}  # cities reach the ministry through the DR site
    rec = an.impact(topo, ["gd-r1", "gd-dr-r1"])
    assert rec["cut_off"] == {"city": ["guangzhou", "shenzhen"], "county": ["baoan", "huadu", "longgang", "panyu"]}
    assert rec["down"] == {"province": ["guangdong"], "dr": ["guangdong_zaibei"]}
    rec = an.impact(topo, ["bu-r1", "bu-r2"])
    assert rec["cut_off_count"] == 16
    assert an.impact(topo, "longgang-up2")["cut_off"] == {}  # planned
    assert an.impact(topo, "panyu-up1")["cut_off"] == {}
    assert an.impact(topo, "huadu-srv1-lan")["cut_off"] == {}  # a host's LAN link cuts off no site


def test_impact_matches_brute_force_for_every_pair_of_guangdong_routers(topo):
    routers = [d for d in topo.graph.nodes if topo.graph.nodes[d]["role"] == "router" and d.startswith(("g", "s", "p", "h", "b", "l"))]
    for i, x in enumerate(routers):
        for y in routers[i + 1:]:
            fs = [topo.resolve(x), topo.resolve(y)]
            cut, _ = an.analysis(topo).cut_off(fs)
            assert cut == brute_cut(topo, fs), (x, y)


def test_impact_unknown_target_is_a_usage_error(topo):
    with pytest.raises(UsageError, match="'nosuch' is not a device, link or shared-risk group"):
        an.impact(topo, "nosuch")


# --- paths ---------------------------------------------------------------------------------------
def test_paths_dual_homed_county_has_two_disjoint_paths(topo):
    p = an.paths(topo, "panyu")
    assert p["reachable"] and p["cost"] == 1000 + 100 + 10
    assert p["link_disjoint"] == 2 and p["node_disjoint"] == 2 and p["cut_by"] == []
    assert sorted(x["devices"] for x in p["paths"]) == [["panyu-r1", "guangzhou-r1", "gd-r1", "bu-r1"],
                                                         ["panyu-r1", "shenzhen-r1", "gd-r1", "bu-r1"]]
    assert p["paths"][0]["sites"][0] == "panyu" and p["paths"][0]["sites"][-1] == "bu"
    assert {x["links"][0] for x in p["paths"]} == {"panyu-up1", "panyu-up2"}


def test_paths_single_homed_county(topo):
    p = an.paths(topo, "huadu")
    assert p["link_disjoint"] == 1 and p["node_disjoint"] == 1
    assert [x["links"] for x in p["paths"]] == [["huadu-up1", "guangzhou-up-core", "gd-up-bu"]]
    assert {(c["kind"], c["id"]) for c in p["cut_by"]} == {("device", "guangzhou-r1"), ("link", "huadu-up1")}


def test_paths_follow_ospf_cost_not_hops(topo):
    # the DR site's own 1G uplink costs 100; through the province core's two 10G lines costs 20
    p = an.paths(topo, "guangdong_zaibei")
    assert p["cost"] == 20 and [x["devices"] for x in p["paths"]] == [["gd-dr-r1", "gd-r1", "bu-r1"]]
    assert an.paths(topo, "bu")["cost"] == 0


def test_disjoint_counts_match_max_flow(topo, small):
    for t, step in ((topo, 1), (small, 3)):  # every site of the default, every third of the generated one
        for sid in sorted(t.inv.sites)[::step]:
            if sid == t.ministry:
                continue
            p = an.paths(t, sid)
            assert (p["link_disjoint"], p["node_disjoint"]) == (brute_disjoint(t, sid, False),
                                                                brute_disjoint(t, sid, True)), sid


def test_paths_unknown_site(topo):
    with pytest.raises(UsageError, match="site 'nosuch': no such site"):
        an.paths(topo, "nosuch")


# --- check ---------------------------------------------------------------------------------------
def test_check_is_clean_on_the_default(topo):
    assert an.check(topo) == []


def test_check_flags_a_dual_homed_county_one_srlg_cuts_off(tmp_path):
    topo = build(load(edited(tmp_path, shared_srlg)))
    (f,) = an.check(topo)
    assert (f.code, f.site, f.level) == ("not_dual_homed", "panyu", "county")
    assert [(c["kind"], c["id"]) for c in f.cut_by] == [("srlg", "panyu-ct")]
    assert "panyu-ct" in f.message and "\n" not in f.message


def test_check_flags_dual_homing_onto_one_router(tmp_path):
    def edit(docs):  # santai's second line goes to the same city router as the first
        sc = docs["sichuan.yml"]
        sc["links"]["santai-up2"]["b"] = "mianyang-r1:eth6"
        sc["devices"]["mianyang-r1"]["interfaces"]["eth6"] = sc["devices"]["chengdu-r1"]["interfaces"].pop("eth5")
    topo = build(load(edited(tmp_path, edit)))
    (f,) = an.check(topo)
    assert f.site == "santai" and [(c["kind"], c["id"]) for c in f.cut_by] == [("device", "mianyang-r1")]


def test_check_flags_a_site_without_a_path(tmp_path):
    def edit(docs):
        docs["guangdong.yml"]["links"]["longgang-up1"]["state"] = "planned"
    topo = build(load(edited(tmp_path, edit)))
    (f,) = an.check(topo)
    assert (f.code, f.site) == ("no_path", "longgang")
    assert "longgang" not in {x for s in an.spof(topo) for x in s.sites}
    p = an.paths(topo, "longgang")
    assert not p["reachable"] and p["paths"] == [] and p["link_disjoint"] == 0
