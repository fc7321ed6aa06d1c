"""Root-cause alerts from the topology's impact analysis (issue 14 §4): for each device that forwards and each line
between sites, the sites its failure cuts off from the ministry (one SitesCutOff naming them by level), the sites
that keep a path but lose an uplink (a RedundancyLost warning each, never silence), and Alertmanager inhibit rules
naming exactly those consequences. Checked against ``topology.analysis.impact``, promtool (fixtures/monitor/
rootcause_test.yml), amtool, and a real Alertmanager on loopback that holds back the consequences and still
delivers the root cause's and the warnings' resolved notifications."""
from __future__ import annotations

import http.server
import json
import shutil
import subprocess
import threading
from datetime import UTC, datetime, timedelta

import pytest
import yaml
from jinbao_netops import escape
from jinbao_netops.collectors.targets import labels as series_labels
from jinbao_netops.inventory import load
from jinbao_netops.inventory.model import LinkKind, LinkState
from jinbao_netops.monitoring import generate as gen
from jinbao_netops.monitoring import rules
from jinbao_netops.monitoring.silences import AlertmanagerError
from jinbao_netops.topology.analysis import impact
from jinbao_netops.topology.graph import build
from test_monitor import FIXTURES, _api, _free_port, run

INV = load(None)
TOPO = build(INV)
IMPS = gen.impacts(INV)


def unit(kind: str, ident: str) -> gen.Impact:
    return next(i for imps in IMPS.values() for i in imps if (i.failure.kind, i.failure.id) == (kind, ident))


def in_scope(key: str, by_level: dict[str, list[str]]) -> dict[str, list[str]]:
    kept = {lv: [s for s in ids if gen._key(INV, s) == key] for lv, ids in by_level.items()}
    return {lv: ids for lv, ids in kept.items() if ids}


def test_city_router_cuts_off_what_the_topology_says_and_costs_dual_homed_counties_their_redundancy():
    imp = unit("device", "guangzhou-r1")
    want = impact(TOPO, "guangzhou-r1")
    assert imp.key == "guangdong"
    assert imp.cut == want["cut_off"] == {"county": ["huadu"]}       # single-homed, behind it alone
    assert imp.down == want["down"]["city"] == ["guangzhou"]          # its own site's LAN
    # the dual-homed counties with an uplink to it: not cut off (impact names neither), so warned
    dual = sorted(s for s, site in INV.sites.items() if site.homing == "dual"
                  and any("guangzhou-r1" in (INV.links[lid].a.device, INV.links[lid].b.device) for lid in TOPO.uplinks(s)))
    assert sorted(imp.lost) == dual == ["baoan", "panyu"]
    assert not set(dual) & set(want["sites"])
    assert imp.lost["baoan"] == {"level": "county", "province": "guangdong", "city": "shenzhen", "county": "baoan", "site": "baoan"}
    # not LAN; planned longgang-up2 too: cabled before it is provisioned, its far end loses carrier with the router
    assert imp.links == ["baoan-up2", "guangzhou-up-core", "guangzhou-up-dr", "huadu-up1", "longgang-up2", "panyu-up1"]


def test_every_unit_that_cuts_a_site_off_agrees_with_impact():
    """Every forwarding device and every active line between sites: the root cause's sites are impact()'s cut-off
    sites within the collector's scope; a unit that cuts nothing off raises no SitesCutOff."""
    units = [("device", d) for d in INV.devices if TOPO.graph.nodes[d]["transit"]]
    units += [("link", lid) for lid, lk in INV.links.items() if lk.kind != LinkKind.lan and lk.state == LinkState.active]
    have = {(i.failure.kind, i.failure.id): i for imps in IMPS.values() for i in imps}
    cutting = 0
    for kind, ident in units:
        got = have.get((kind, ident))
        if kind == "link":  # seen by the collector of its junior end
            lk = INV.links[ident]
            ident_dev = lk.a.device if INV.is_uplink(lk, lk.a.device) else lk.b.device
        else:
            ident_dev = ident
        want = in_scope(gen._key(INV, INV.devices[ident_dev].site), impact(TOPO, f"{kind}:{ident}")["cut_off"])
        assert (got.cut if got else {}) == want, (kind, ident)
        cutting += bool(want)
    assert cutting == 8  # the four city routers and the four single-homed counties' lines (topology spof)


def test_generated_rules_pass_promtool_unit_tests(tmp_path):
    gen.generate(INV, tmp_path / "m")
    where = tmp_path / "m/province/guangdong"
    shutil.copy(FIXTURES / "rootcause_test.yml", where)
    r = run("promtool", "test", "rules", "rootcause_test.yml", cwd=where)
    assert r.returncode == 0, r.stdout + r.stderr


def test_inhibit_rules_name_exactly_the_consequences():
    am = gen.alertmanager_config(INV, IMPS)
    by_unit = [r for r in am["inhibit_rules"] if 'device=~"guangzhou-r1"' in r["source_matchers"]]
    assert [(r["source_matchers"], r["target_matchers"]) for r in by_unit] == [
        (['alertname="SitesCutOff"', 'device=~"guangzhou-r1"'], ['site=~"huadu"']),
        (['alertname="SitesCutOff"', 'device=~"guangzhou-r1"'], ['site=~"guangzhou"', 'alertname!="SitesCutOff"']),
        (['alertname=~"SitesCutOff|RedundancyLost"', 'device=~"guangzhou-r1"'],
         ['alertname=~"LinkDown|RedundancyLost"', 'link=~"baoan-up2|guangzhou-up-core|guangzhou-up-dr|huadu-up1|longgang-up2|panyu-up1"'])]
    # no single failure silences a dual-homed county: no rule holds back a site that keeps a path
    targets = " ".join(m for r in am["inhibit_rules"] for m in r["target_matchers"])
    assert "panyu" not in targets.replace("panyu-up", "") and "baoan" not in targets.replace("baoan-up", "")
    # the old level-wide rules are gone: nothing holds back a level, a city or a province's every site by a router
    assert not [r for r in am["inhibit_rules"] if any(m.startswith("level") for m in r["target_matchers"])]


def test_root_cause_fires_no_later_than_what_it_holds_back():
    """A consequence that paged before its root cause fired would lose its resolved notification while held back."""
    # the alerts that carry a site (and LinkDown a link): what a root cause can hold back
    assert all(gen._seconds(rules.ROOT_CAUSE_FOR) <= gen._seconds(a["for"]) for a in rules.DEVICE_ALERTS)
    files = gen.files(INV)
    group = yaml.safe_load(files["province/guangdong/rules/alerts.yml"])["groups"][0]["rules"]
    names = [r["alert"] for r in group]
    # in the same group as their consequences, first: evaluated and sent with them
    assert names.index("LinkDown") > max(i for i, n in enumerate(names) if n in (rules.SITES_CUT_OFF, rules.REDUNDANCY_LOST))
    fast = gen.files(INV, timing=gen.Timing(scrape=5, max_for=10))
    root = next(r for r in yaml.safe_load(fast["province/guangdong/rules/alerts.yml"])["groups"][0]["rules"]
                if r["alert"] == rules.SITES_CUT_OFF)
    assert root["for"] == root["keep_firing_for"] == "10s"  # the lab's cap applies to both


def test_amtool_accepts_the_config_and_matcher_escape_matches_literally(tmp_path):
    am = gen.alertmanager_config(INV, IMPS)
    (tmp_path / "am.yml").write_text(gen._dump(am))
    r = run("amtool", "check-config", str(tmp_path / "am.yml"))
    assert r.returncode == 0 and f"{len(am['inhibit_rules'])} inhibit rules" in r.stdout, r.stdout + r.stderr
    # Alertmanager's own parser reads escape.matcher_any's value: each value literally, nothing else
    odd = ['a.b', 'x"y', 'c|d', "e\\f", "g(h)*"]
    am["route"]["routes"].insert(0, {"receiver": "ministry-noc", "matchers": [f"site=~{escape.matcher_any(odd)}", 'probe="1"']})
    am["route"]["routes"].insert(1, {"receiver": "guangdong-city-ops", "matchers": ['probe="1"']})
    (tmp_path / "odd.yml").write_text(gen._dump(am))
    for site, receiver in [*((v, "ministry-noc") for v in odd), ("axb", "guangdong-city-ops"), ("c", "guangdong-city-ops"),
                           ("x", "guangdong-city-ops")]:
        r = run("amtool", "config", "routes", "test", f"--config.file={tmp_path / 'odd.yml'}", f"--verify.receivers={receiver}",
                f"site={json.dumps(site)}", "probe=1")  # a quoted value: amtool parses it as a matcher
        assert r.returncode == 0, (site, r.stdout + r.stderr)


def test_national_inventory_stays_linear(tmp_path):
    from jinbao_netops.inventory.generate import generate, write

    write(generate(32), tmp_path / "national")
    big = load(str(tmp_path / "national"))
    imps = gen.impacts(big)
    units = sum(map(len, imps.values()))
    inhibit = [r for key in imps for r in gen.impact_inhibitions(imps[key])]
    alerts = [r for key in imps for r in gen.impact_rules(imps[key])]
    assert units and len(inhibit) <= 3 * units
    assert len(alerts) == sum(bool(i.cut) + len(i.lost) for key in imps for i in imps[key])
    routers = sum(1 for d in big.devices.values() if d.role.value == "router")
    assert len(inhibit) <= 3 * (routers + len(big.links))
    # a target names only sites of its own collector
    for key, lst in imps.items():
        for i in lst:
            assert all(gen._key(big, s) == key for ids in i.cut.values() for s in ids) and all(
                gen._key(big, s) == key for s in i.lost)


# --- a real Alertmanager: guangzhou-r1 loses power ---------------------------------------------------------------

def _rule(files: dict, alert: str, **labels) -> dict:
    group = yaml.safe_load(files["province/guangdong/rules/alerts.yml"])["groups"][0]["rules"]
    return next(r for r in group if r["alert"] == alert and all(r["labels"].get(k) == v for k, v in labels.items()))


def _fired(rule: dict, series: dict) -> dict:
    """The labels Prometheus sends for ``rule`` firing on a series with ``series`` labels (rule labels win; an empty
    rule label removes the series' label; the level template copies the series' level)."""
    out = {**series, **rule["labels"], "alertname": rule["alert"]}
    out["level"] = series["level"] if out["level"] == rules.SERIES_LEVEL else out["level"]
    return {k: v for k, v in out.items() if v}


def _dev(device: str, **extra) -> dict:
    return {k: v for k, v in {**series_labels(INV, device), **extra}.items() if v}


def _scenario() -> tuple[dict[str, dict], set[str]]:
    """Alerts as guangdong's Prometheus sends them with guangzhou-r1 dead (seen in-band: what sits behind it stops
    answering too), and the names of those that must stay active."""
    files = gen.files(INV)

    def line(dev: str, ifname: str, link: str) -> dict:
        up = INV.is_uplink(INV.links[link], dev)
        return _dev(dev, alertname="LinkDown", severity="critical", interface=ifname, link=link, uplink=str(up).lower())

    alerts = {
        "root": _fired(_rule(files, "SitesCutOff", device="guangzhou-r1"), series_labels(INV, "guangzhou-r1")),
        "warn-panyu": _fired(_rule(files, "RedundancyLost", device="guangzhou-r1", site="panyu"), series_labels(INV, "guangzhou-r1")),
        "warn-baoan": _fired(_rule(files, "RedundancyLost", device="guangzhou-r1", site="baoan"), series_labels(INV, "guangzhou-r1")),
        # consequences
        "router-node": _dev("guangzhou-r1", alertname="NodeDown", severity="critical", role="router"),
        "city-db": _dev("guangzhou-db1", alertname="DatabaseDown", severity="critical", service="postgresql"),
        "huadu-node": _dev("huadu-r1", alertname="NodeDown", severity="critical", role="router"),
        "huadu-srv": _dev("huadu-srv1", alertname="NodeDown", severity="critical", role="server"),
        "huadu-line": line("huadu-r1", "eth1", "huadu-up1"),
        "huadu-root": _fired(_rule(files, "SitesCutOff", link="huadu-up1"), {}),
        "panyu-line": line("panyu-r1", "eth1", "panyu-up1"),
        "panyu-line-warn": _fired(_rule(files, "RedundancyLost", link="panyu-up1"), {}),
        "baoan-line": line("baoan-r1", "eth2", "baoan-up2"),
        "baoan-line-warn": _fired(_rule(files, "RedundancyLost", link="baoan-up2"), {}),
        "core-line": line("gd-r1", "eth3", "guangzhou-up-core"),
        "core-line-warn": _fired(_rule(files, "RedundancyLost", link="guangzhou-up-core"), {}),
        # faults of their own, not behind guangzhou-r1: they page
        "panyu-disk": _dev("panyu-db1", alertname="DiskNearlyFull", severity="warning"),
        "longgang-line": line("longgang-r1", "eth1", "longgang-up1"),
    }
    return alerts, {"root", "warn-panyu", "warn-baoan", "panyu-disk", "longgang-line"}


def _until(what: str, fn, tries: int = 600):
    import time

    for _ in range(tries):
        got = fn()
        if got:
            return got
        time.sleep(0.1)
    raise AssertionError(f"not reached: {what}")


@pytest.fixture
def alertmanager(tmp_path):
    """The generated configuration in a real Alertmanager on loopback, posting to a webhook on loopback; only the
    grouping waits shortened (1 s) so notifications come within the test."""
    received: list[dict] = []

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    hook = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    cfg = gen.alertmanager_config(INV, IMPS)
    cfg["route"].update(group_wait="1s", group_interval="1s")
    for r in cfg["receivers"]:
        r["webhook_configs"][0]["url"] = f"http://127.0.0.1:{hook.server_address[1]}/{r['name']}"
    (tmp_path / "am.yml").write_text(gen._dump(cfg))
    port = _free_port()
    proc = subprocess.Popen(["prometheus-alertmanager", f"--config.file={tmp_path / 'am.yml'}", f"--storage.path={tmp_path}",
                             f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _until("Alertmanager up", lambda: proc.poll() is None and _ready(port))
        yield port, received
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        hook.shutdown()
        hook.server_close()


def _ready(port: int) -> bool:
    try:
        return bool(_api(port, "status"))
    except AlertmanagerError:
        return False


def _sent(received: list) -> dict[tuple, set[str]]:
    """(fingerprint-like label set) → statuses it was notified with."""
    out: dict[tuple, set[str]] = {}
    for msg in received:
        for a in msg["alerts"]:
            out.setdefault(tuple(sorted(a["labels"].items())), set()).add(a["status"])
    return out


def test_real_alertmanager_one_root_cause_pages_consequences_held_back_resolution_flows(alertmanager):
    port, received = alertmanager
    alerts, paging = _scenario()
    key = {tuple(sorted(lab.items())): name for name, lab in alerts.items()}
    now = datetime.now(UTC)
    _api(port, "alerts", [{"labels": lab, "startsAt": now.isoformat(), "endsAt": (now + timedelta(hours=1)).isoformat()}
                          for lab in alerts.values()])

    def settled():
        got = {key[tuple(sorted(a["labels"].items()))]: a["status"] for a in _api(port, "alerts")}
        return got if len(got) == len(alerts) and all(bool(s["inhibitedBy"]) == (n not in paging) for n, s in got.items()) else None

    state = _until("every consequence held back", settled)
    assert {n for n, s in state.items() if s["state"] == "active"} == paging
    root_fp = next(a["fingerprint"] for a in _api(port, "alerts") if a["labels"] == alerts["root"])
    for n in ("huadu-node", "huadu-srv", "huadu-line", "huadu-root", "city-db", "router-node"):  # the sites it cuts off
        assert root_fp in state[n]["inhibitedBy"], n
    _until("the root cause and the warnings notified", lambda: {key[k] for k in _sent(received)} >= paging - {"longgang-line"})
    # the router returns: every alert resolves; the root cause and the warnings say so, the held-back never paged
    _api(port, "alerts", [{"labels": lab, "startsAt": now.isoformat(), "endsAt": datetime.now(UTC).isoformat()}
                          for lab in alerts.values()])
    resolved = _until("the resolved notifications", lambda: (s := _sent(received)) and all(
        "resolved" in s.get(tuple(sorted(alerts[n].items())), ()) for n in paging) and s)
    assert {key[k] for k, st in resolved.items() if "firing" in st} == paging  # nothing held back ever paged
    assert all(resolved[tuple(sorted(alerts[n].items()))] == {"firing", "resolved"} for n in paging)
    # (a held-back alert may ride along as resolved in its group's last notification: Alertmanager's own way, harmless)
    assert all(st == {"resolved"} for k, st in resolved.items() if key[k] not in paging)
    assert _api(port, "alerts") == []


def test_real_alertmanager_a_dual_homed_countys_line_down_warns_once(alertmanager):
    """One of panyu's two uplinks goes down: the warning pages, the line's LinkDown at both ends gives way to it (one
    rule for every line); another line's LinkDown without a root cause still pages."""
    port, _ = alertmanager
    files = gen.files(INV)
    alerts = {
        "warn": _fired(_rule(files, "RedundancyLost", link="panyu-up2"), {}),
        "county-end": _dev("panyu-r1", alertname="LinkDown", severity="critical", interface="eth2", link="panyu-up2", uplink="true"),
        "city-end": _dev("shenzhen-r1", alertname="LinkDown", severity="critical", interface="eth3", link="panyu-up2", uplink="false"),
        "other-line": _dev("baoan-r1", alertname="LinkDown", severity="critical", interface="eth1", link="baoan-up1", uplink="true"),
    }
    _api(port, "alerts", [{"labels": lab} for lab in alerts.values()])
    name = {tuple(sorted(lab.items())): k for k, lab in alerts.items()}

    def settled():
        got = {name[tuple(sorted(a["labels"].items()))]: bool(a["status"]["inhibitedBy"]) for a in _api(port, "alerts")}
        return got if len(got) == len(alerts) and got["county-end"] and got["city-end"] else None

    assert _until("the line's ends held back", settled) == {"warn": False, "county-end": True, "city-end": True, "other-line": False}
