"""Write the monitoring configuration for an inventory.

Layout under the output directory:
  province/<id>/prometheus.yml, province/<id>/rules/{alerts,records,inventory}.yml
  ministry/prometheus.yml, ministry/rules/{ministry,alerts,records,inventory}.yml
  alertmanager/alertmanager.yml   (the same routing tree on every monitor host)
  grafana/dashboards/*.json, grafana/provisioning/{datasources,dashboards}/netops.yml   (dashboards.py)

Ports: the collector exporter (`netops collect serve --scope P --listen ADDR:9469`) on each monitor
host, its trap receiver (`netops collect traps`: UDP 162, its metrics on 9470), the operations service
(`netops serve run`, 9472) on each province's monitor host, Prometheus on 9090, Alertmanager on 9093, all
on management addresses. A province's collector
covers the province and everything below it; the ministry's covers the ministry's own sites only
(`--scope bu --stop-at province`), so the ministry's Prometheus holds full detail for the ministry's
own devices and only aggregates for the provinces. Each province's Prometheus alerts to the
Alertmanager on its own monitor host (it keeps working when the province is cut off); the ministry's
Prometheus alerts to the ministry's.

Root causes (``impacts``): for every device that forwards and every line between sites, the topology's impact
analysis says which sites its failure alone cuts off and which keep a path but lose an uplink; each collector's
alerts.yml gets a SitesCutOff / RedundancyLost rule per unit, and alertmanager.yml inhibit rules that hold back
exactly those consequences (README, "Alerts and root causes").
"""
from __future__ import annotations

from collections import defaultdict
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

import yaml

from jinbao_netops.backup.pitr import archived
from jinbao_netops.collectors.targets import labels as device_labels
from jinbao_netops.inventory.engines import MARIADB, POSTGRESQL
from jinbao_netops.inventory.model import Alerting, Level, LinkKind, LinkState, Role
from jinbao_netops.inventory.store import Inventory
from jinbao_netops.topology.analysis import analysis, by_level
from jinbao_netops.topology.graph import Failure, build
from jinbao_netops import escape, serve
from jinbao_netops.files import commit, out_path, write_error
from jinbao_netops.errors import UsageError

from . import dashboards, rules

COLLECTOR_PORT, PROMETHEUS_PORT, ALERTMANAGER_PORT, NODE_EXPORTER_PORT = 9469, 9090, 9093, 9100
TRAP_PORT, TRAP_METRICS_PORT = 162, 9470  # the trap receiver (collectors/traps.py) beside each collector
SCRAPE_INTERVAL, FEDERATE_INTERVAL = 30, 60  # seconds, production
MINISTRY = "ministry"  # the ministry's key among the monitor servers (a province's key is its site id)


@dataclass(frozen=True)
class Timing:
    """How fast the hierarchy reacts. Production defaults; the lab shortens them (``--scrape-interval``,
    ``--max-for``) so a fault fires in seconds without changing what any rule means."""
    scrape: int = SCRAPE_INTERVAL          # province scrape interval, seconds
    federate: int = FEDERATE_INTERVAL      # the ministry's federation and evaluation, seconds
    max_for: int | None = None             # cap on every alert's `for:` (None: the rules' own)
    evaluate: int | None = None            # province rule evaluation, seconds (None: the scrape interval)

    @property
    def evaluation(self) -> int:
        return self.evaluate or self.scrape

    def check(self) -> Timing:
        for name, v in (("scrape-interval", self.scrape), ("federate-interval", self.federate), ("max-for", self.max_for),
                        ("evaluation-interval", self.evaluate)):
            if v is not None and not 0 < v <= 86400:
                raise UsageError(f"monitor: --{name} {v}: give whole seconds between 1 and 86400")
        return self

    def alert(self, rule: dict) -> dict:
        """The rule with its `for:` (and a root cause's `keep_firing_for:`) capped at ``max_for``."""
        capped = {k: f"{self.max_for}s" for k in ("for", "keep_firing_for")
                  if self.max_for is not None and k in rule and _seconds(rule[k]) > self.max_for}
        return {**rule, **capped}


def _seconds(duration: str) -> int:
    """A rule's `for:` ("90s", "2m", "1h") in seconds."""
    return int(duration[:-1]) * {"s": 1, "m": 60, "h": 3600}[duration[-1]]
LEVEL_TEAMS = [("county", "county-ops"), ("city", "city-ops"), ("province|dr", "province-noc")]


def provinces(inv: Inventory) -> list[str]:
    return sorted(s.id for s in inv.sites.values() if s.level == Level.province)


def collector_scope(inv: Inventory, key: str) -> tuple[str, Level | None]:
    """(scope, stop_at) of a server's collector: a province and everything below it (cities, counties,
    DR sites); the ministry's own sites, each province having its own collector."""
    return (inv.ministry.id, Level.province) if key == MINISTRY else (key, None)


def collector_devices(inv: Inventory, key: str) -> list[str]:
    """Devices the collector of ``key`` (a province id, or MINISTRY) covers."""
    return inv.scope(*collector_scope(inv, key))


def trap_receiver(inv: Inventory, device: str) -> str | None:
    """The management address of the monitor host whose trap receiver hears ``device`` (the one whose collector
    polls it: its province's, else the ministry's), or None where the inventory has no such monitor host."""
    site = inv.province_of(inv.devices[device].site)
    monitors = inv.devices_at(site.id if site else inv.ministry.id, Role.monitor)
    return str(inv.devices[monitors[0]].management) if monitors else None


def _dump(data) -> str:
    # libyaml's emitter: the national inventory's 131 files in a fraction of the pure-Python time
    return yaml.dump(data, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper), allow_unicode=True, sort_keys=False, width=200)


def _rule_group(name: str, timing: Timing, records=(), alerts=(), interval: int | None = None) -> dict:
    group = {"name": name, **({"interval": f"{interval}s"} if interval else {})}
    group["rules"] = [{"record": r, "expr": e} for r, e in records] + [timing.alert(a) for a in alerts]
    return group


def inventory_rules(inv: Inventory, key: str) -> dict:
    """The inventory facts the alerts join on: device roles, PostgreSQL primaries' standby counts (all, and
    synchronous), MariaDB replicas' channels and link ends (which ends are uplinks), for
    the devices of one collector (``key``: a province id, or MINISTRY)."""
    devs = set(collector_devices(inv, key))
    recs = [{"record": rules.DEVICE_INFO, "expr": "vector(1)", "labels": {"device": d, "role": inv.devices[d].role.value}}
            for d in sorted(devs)]
    # each engine's pairs (netops dr setup) where its readings judge them: a PostgreSQL primary, how many standbys the
    # inventory gives it and how many of them are synchronous (netops_pg_replicas, netops_pg_sync_standbys); a MariaDB
    # replica, the channel it has from its primary (a MariaDB primary cannot see its replicas)
    standbys: dict[str, int] = {}
    sync: dict[str, int] = {}
    for d in inv.devices.values():
        if d.replica and d.replica.service == POSTGRESQL.service and d.replica.of in devs:
            standbys[d.replica.of] = standbys.get(d.replica.of, 0) + 1
            if d.replica.sync:
                sync[d.replica.of] = sync.get(d.replica.of, 0) + 1
    for record, counts in ((rules.STANDBYS_INFO, standbys), (rules.SYNC_STANDBYS_INFO, sync)):
        recs += [{"record": record, "expr": f"vector({n})", "labels": {"device": d}} for d, n in sorted(counts.items())]
    recs += [{"record": rules.REPLICA_CHANNELS_INFO, "expr": "vector(1)", "labels": {"device": d, "primary": inv.devices[d].replica.of}}
             for d in sorted(devs) if inv.devices[d].replica and inv.devices[d].replica.service == MARIADB.service]
    recs += [{"record": rules.WAL_ARCHIVE_INFO, "expr": "vector(1)", "labels": {"device": d}}  # whose WAL `dr setup` archives
             for d, svc in sorted(archived(inv)) if svc == POSTGRESQL.service and d in devs]
    readers: dict[str, int] = {d: 1 for d, svc in archived(inv) if svc == MARIADB.service and d in devs}  # the archive
    for d in inv.devices.values():  # and each replica
        if d.replica and d.replica.service == MARIADB.service and d.replica.of in devs:
            readers[d.replica.of] = readers.get(d.replica.of, 0) + 1
    recs += [{"record": rules.BINLOG_READERS_INFO, "expr": f"vector({n})", "labels": {"device": d}} for d, n in sorted(readers.items())]
    ends: dict[tuple[str, str], list] = {}  # one series per interface: a LAN port can carry several links
    for lid, link in sorted(inv.links.items()):
        for end in link.ends():
            if end.device in devs:
                ends.setdefault((end.device, end.interface), []).append((lid, link.kind != LinkKind.lan and inv.is_uplink(link, end.device)))
    for (dev, ifname), links in sorted(ends.items()):
        recs.append({"record": rules.LINK_END_INFO, "expr": "vector(1)",
                     "labels": {"device": dev, "interface": ifname, "link": ",".join(lid for lid, _ in links),
                                "uplink": "true" if any(up for _, up in links) else "false"}})
    return {"groups": [{"name": f"inventory-{key}", "rules": recs}]}


@dataclass(frozen=True)
class Impact:
    """A failure unit (a device that forwards, or a line between sites) and what its failure alone does to the sites
    its collector covers, as the topology's impact analysis computes it: the root cause its Prometheus raises, the
    consequences Alertmanager holds back."""
    failure: Failure
    key: str                               # the collector whose Prometheus sees the unit (a province id, or MINISTRY)
    where: dict[str, str]                  # a link's labels: its junior end's level, province, city, county, site
    cut: dict[str, list[str]]              # level → sites cut off from the ministry (the unit's own site not among them)
    down: list[str]                        # a device's own site, when its failure strands every router there
    lost: dict[str, dict[str, str]]        # a site that lost one of its uplinks and keeps a path → its labels
    links: list[str]                       # a device's lines, which go down with it (not LAN)


def _key(inv: Inventory, site: str) -> str:
    """The collector that covers a site: its province's, else the ministry's."""
    prov = inv.province_of(site)
    return prov.id if prov else MINISTRY


def _site_labels(inv: Inventory, device: str) -> dict[str, str]:
    return {k: v for k, v in device_labels(inv, device).items() if k != "device"}


def impacts(inv: Inventory) -> dict[str, list[Impact]]:
    """Collector key → the impact of every unit it sees whose failure cuts a site of its off from the ministry or
    costs one its uplink redundancy (a site with several active uplinks that keeps a path). Consequences are kept to
    the collector's own sites: those are the alerts the same Alertmanager holds. Linear in the units: each is one
    local search of ``Analysis.cut_off`` plus its neighbours."""
    topo = build(inv)
    an = analysis(topo)
    active = {lid: lk for lid, lk in inv.links.items() if lk.kind != LinkKind.lan and lk.state == LinkState.active}
    # a device's lines, planned ones too: cabled before they are provisioned, their far ends lose carrier with it
    lines = {lid for lid, lk in inv.links.items() if lk.kind != LinkKind.lan}
    # each uplink of a site with several: found from the line, the device at either end, or the far end's site
    via: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)  # (kind, id) → [(site, its end device)]
    for sid in inv.sites:
        ups = topo.uplinks(sid)
        if len(ups) < 2:
            continue
        for lid in ups:
            lk = inv.links[lid]
            own, far = (lk.a.device, lk.b.device) if inv.devices[lk.a.device].site == sid else (lk.b.device, lk.a.device)
            for k in (("link", lid), ("device", own), ("device", far), ("site", inv.devices[far].site)):
                via[k].append((sid, own))
    units = [topo.failure_of("device", d) for d in inv.devices if topo.graph.nodes[d]["transit"]]
    units += [topo.failure_of("link", lid) for lid in active]
    out: dict[str, list[Impact]] = defaultdict(list)
    for f in units:
        if f.kind == "device":
            key, where, links = _key(inv, inv.devices[f.id].site), {}, sorted(set(inv.links_by_device.get(f.id, [])) & lines)
        else:
            lk = active[f.id]
            junior = lk.a.device if inv.is_uplink(lk, lk.a.device) else lk.b.device
            key, where, links = _key(inv, inv.devices[junior].site), _site_labels(inv, junior), []
        cut, down = an.cut_off([f])
        gone = cut | down
        lost: dict[str, dict[str, str]] = {}
        for k in [(f.kind, f.id), *(("site", s) for s in gone)]:
            for sid, own in via.get(k, []):
                if sid not in gone and sid not in lost and _key(inv, sid) == key:
                    lost[sid] = _site_labels(inv, own)
        mine = {s for s in cut if _key(inv, s) == key}
        if mine or lost:
            out[key].append(Impact(f, key, where, by_level(topo, mine), sorted(s for s in down if _key(inv, s) == key),
                                   dict(sorted(lost.items())), links))
    return dict(out)


def _unit_down(imp: Impact) -> str:
    """PromQL: the unit is down (a device stops answering SNMP; a line is down at either end)."""
    ident = escape.promql(imp.failure.id)
    return f"netops_snmp_up{{device={ident}}} == 0" if imp.failure.kind == "device" else f"max by (link) ({rules.link_down(ident)})"


def impact_rules(imps: list[Impact]) -> list[dict]:
    """One collector's root causes: SitesCutOff per unit that cuts sites off, RedundancyLost per site that lost an
    uplink with it (labelled with that site's level, province, city, county, site)."""
    out = []
    for imp in imps:
        kind, ident, expr = imp.failure.kind, imp.failure.id, _unit_down(imp)
        if imp.cut:
            out.append(rules.sites_cut_off(expr, kind, ident, imp.cut, {**imp.where, kind: ident}))
        out += [rules.redundancy_lost(expr, kind, ident, site, {**labels, kind: ident}) for site, labels in imp.lost.items()]
    return out


def impact_inhibitions(imps: list[Impact]) -> list[dict]:
    """What each root cause holds back, named exactly: every alert of the sites it cuts off (a junior root cause among
    them), every alert but a root cause of its own site when that is down, and a device's the LinkDown alerts of the
    lines that go down with it and the RedundancyLost warnings those lines raise (the device's own name the sites).
    A line's own LinkDown alerts give way to its root cause by one rule for all lines (``LINE_INHIBITION``)."""
    out = []
    for imp in imps:
        kind, ident = imp.failure.kind, imp.failure.id
        unit = f"{kind}=~{escape.matcher_any([ident])}"
        if imp.cut:
            cut = sorted(s for ids in imp.cut.values() for s in ids)
            out.append({"source_matchers": [f'alertname="{rules.SITES_CUT_OFF}"', unit],
                        "target_matchers": [f"site=~{escape.matcher_any(cut)}"], "equal": ["province"]})
            if imp.down:
                out.append({"source_matchers": [f'alertname="{rules.SITES_CUT_OFF}"', unit], "target_matchers": [
                    f"site=~{escape.matcher_any(imp.down)}", f'alertname!="{rules.SITES_CUT_OFF}"'], "equal": ["province"]})
        if kind == "device":
            out.append({"source_matchers": [f'alertname=~"{rules.SITES_CUT_OFF}|{rules.REDUNDANCY_LOST}"', unit],
                        "target_matchers": [f'alertname=~"LinkDown|{rules.REDUNDANCY_LOST}"', f"link=~{escape.matcher_any(imp.links)}"],
                        "equal": ["province"]})
    return out


# a line's root cause or warning (the only alerts whose own unit is a line carry a `link` label) holds back the LinkDown
# alerts of that line, at either end: the same label, so one rule for every line
LINE_INHIBITION = {"source_matchers": [f'alertname=~"{rules.SITES_CUT_OFF}|{rules.REDUNDANCY_LOST}"', 'link=~".+"'],
                   "target_matchers": ['alertname="LinkDown"'], "equal": ["province", "link"]}


def _monitor_jobs(mon, timing: Timing, **labels: str) -> list[dict]:
    """The jobs scraping a monitor host's collector and its trap receiver; their labels name where `up` belongs
    (SnmpScrapeFailing)."""
    return [{"job_name": job, "scrape_interval": f"{timing.scrape}s", "scrape_timeout": f"{min(20, timing.scrape)}s",
             "honor_labels": True,
             "static_configs": [{"targets": [f"{mon.management}:{port}"], "labels": {"monitor": mon.id, **labels}}]}
            for job, port in (("netops-collect", COLLECTOR_PORT), ("netops-traps", TRAP_METRICS_PORT))]


def province_config(inv: Inventory, prov: str, timing: Timing = Timing()) -> dict:
    mon = inv.first(prov, Role.monitor)
    ops = inv.network.address_plan.ops_host if inv.network else None
    scrape = [
        *_monitor_jobs(mon, timing, province=prov, level="province"),
        {"job_name": "prometheus", "static_configs": [{"targets": [f"127.0.0.1:{PROMETHEUS_PORT}"]}]},
        # the province's operations service on this monitor host: the target file is what playbooks/serve.yml
        # installs with it (and removes with it), so a service that is installed and down alerts (ServeDown)
        {"job_name": "netops-serve", "file_sd_configs": [{"files": [serve.TARGET_FILE]}]},
    ]
    if ops is not None:  # the backup catalogue (node exporter textfile collector on the ops host), this province's assets only
        scrape.append({"job_name": "netops-backup", "honor_labels": True,
                       "static_configs": [{"targets": [f"{ops}:{NODE_EXPORTER_PORT}"]}],
                       "metric_relabel_configs": [
                           {"source_labels": ["__name__", "province"], "regex": f"netops_backup_.*;{prov}", "action": "keep"}]})
    return {
        "global": {"scrape_interval": f"{timing.scrape}s", "evaluation_interval": f"{timing.evaluation}s",
                   "external_labels": {"level": "province", "province": prov}},
        "rule_files": ["rules/*.yml"],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"{mon.management}:{ALERTMANAGER_PORT}"]}]}]},
        "scrape_configs": scrape,
    }


def ministry_config(inv: Inventory, timing: Timing = Timing()) -> dict:
    mon = inv.first(inv.ministry.id, Role.monitor)
    targets = [{"targets": [f"{inv.first(p, Role.monitor).management}:{PROMETHEUS_PORT}"], "labels": {"province": p}}
               for p in provinces(inv)]
    return {
        "global": {"scrape_interval": f"{timing.federate}s", "evaluation_interval": f"{timing.federate}s",
                   "external_labels": {"level": "ministry"}},
        "rule_files": ["rules/*.yml"],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"{mon.management}:{ALERTMANAGER_PORT}"]}]}]},
        "scrape_configs": [
            # only the provinces' aggregates; full detail stays in each province
            {"job_name": "federate", "metrics_path": "/federate", "honor_labels": True, "scrape_timeout": f"{min(30, timing.federate)}s",
             "params": {"match[]": ['{__name__=~"province:.*"}']}, "static_configs": targets},
            # the ministry's own devices, in full detail and at the provinces' pace
            *_monitor_jobs(mon, timing, level="ministry"),
            {"job_name": "prometheus", "static_configs": [{"targets": [f"127.0.0.1:{PROMETHEUS_PORT}"]}]},
        ],
    }


def alertmanager_config(inv: Inventory, imps: dict[str, list[Impact]] | None = None) -> dict:
    """Routing by level: each province's county/city/province teams, the ministry's NOC for ministry
    alerts and anything unmatched; inhibition so one cause pages once: each root cause holds back exactly the
    consequences the topology gives it (``impacts``, computed here unless given). Every receiver posts to the
    inventory's ``network.alerting.webhook``, named for its team."""
    imps = impacts(inv) if imps is None else imps
    hook = (inv.network.alerting if inv.network else Alerting()).webhook

    def receiver(name: str) -> dict:
        return {"name": name, "webhook_configs": [{"url": hook.format(receiver=name), "send_resolved": True}]}

    receivers = [receiver("ministry-noc")]
    routes = [{"receiver": "ministry-noc", "matchers": ['level="ministry"']}]
    for p in provinces(inv):
        sub = []
        for level, team in LEVEL_TEAMS:
            name = f"{p}-{team}"
            receivers.append(receiver(name))
            sub.append({"receiver": name, "matchers": [f'level=~"{level}"']})
        routes.append({"receiver": f"{p}-province-noc", "matchers": [f'province="{p}"'], "routes": sub})
    inhibit = [
        # a device or line down: what it cuts off, as the topology says (per unit, in the collectors' order)
        *(rule for key in sorted(imps) for rule in impact_inhibitions(imps[key])),
        LINE_INHIBITION,
        # a province cut off from the ministry: one ministry alert
        {"source_matchers": ['alertname="ProvinceUnreachable"'],
         "target_matchers": ['alertname!="ProvinceUnreachable"'], "equal": ["province"]},
        # a device down: nothing else about that device (alerts without a device label are never equal to it); the
        # root causes naming a device as the unit that failed are not about it, they stand for it
        {"source_matchers": ['alertname="NodeDown"'],
         "target_matchers": [f'alertname!~"NodeDown|{rules.SITES_CUT_OFF}|{rules.REDUNDANCY_LOST}"'], "equal": ["device"]},
    ]
    return {
        "global": {"resolve_timeout": "5m"},
        "route": {"receiver": "ministry-noc", "group_by": ["alertname", "province", "city", "county"],
                  "group_wait": "30s", "group_interval": "5m", "repeat_interval": "4h", "routes": routes},
        "inhibit_rules": inhibit,
        "receivers": receivers,
    }


def files(inv: Inventory, advance=lambda n=1, label=None: None, timing: Timing = Timing()) -> dict[str, str]:
    """Relative path → text of every generated file; ``advance`` is called once per province."""
    out: dict[str, str] = {}
    imps = impacts(inv)
    for p in provinces(inv):
        advance(label=p)
        out[f"province/{p}/prometheus.yml"] = _dump(province_config(inv, p, timing))
        # root causes first, in the group of their consequences: evaluated and sent with them, never after
        out[f"province/{p}/rules/alerts.yml"] = _dump({"groups": [_rule_group(
            "netops-province-alerts", timing, alerts=[*impact_rules(imps.get(p, [])), *rules.PROVINCE_ALERTS])]})
        out[f"province/{p}/rules/records.yml"] = _dump({"groups": [_rule_group("netops-province-records", timing, records=rules.PROVINCE_RECORDS)]})
        out[f"province/{p}/rules/inventory.yml"] = _dump(inventory_rules(inv, p))
    out["ministry/prometheus.yml"] = _dump(ministry_config(inv, timing))
    out["ministry/rules/ministry.yml"] = _dump({"groups": [
        _rule_group("netops-ministry", timing, records=rules.MINISTRY_RECORDS, alerts=rules.MINISTRY_ALERTS)]})
    # the ministry's own devices: the provinces' device alerts, evaluated at the provinces' pace
    out["ministry/rules/alerts.yml"] = _dump({"groups": [_rule_group(
        "netops-ministry-device-alerts", timing, alerts=[*impact_rules(imps.get(MINISTRY, [])), *rules.DEVICE_ALERTS],
        interval=timing.evaluation)]})
    out["ministry/rules/records.yml"] = _dump({"groups": [
        _rule_group("netops-ministry-device-records", timing, records=rules.DEVICE_RECORDS, interval=timing.evaluation)]})
    out["ministry/rules/inventory.yml"] = _dump(inventory_rules(inv, MINISTRY))
    out["alertmanager/alertmanager.yml"] = _dump(alertmanager_config(inv, imps))
    out.update(dashboards.files(inv, grafana_servers(inv), MINISTRY))
    return out


def grafana_servers(inv: Inventory) -> dict[str, tuple[str, str]]:
    """Each monitor server's key → (its site, its Prometheus URL): the provinces', then the ministry's."""
    sites = {**{p: p for p in provinces(inv)}, MINISTRY: inv.ministry.id}
    return {key: (site, f"http://{inv.first(site, Role.monitor).management}:{PROMETHEUS_PORT}") for key, site in sites.items()}


def generate(inv: Inventory, out_dir: str | Path, advance=lambda n=1, label=None: None, timing: Timing = Timing()) -> list[Path]:
    """Write every file into ``out_dir`` as one change (``files.commit``): a failure, a full disk for
    one, leaves the directory as it was. Its parent must exist; ``out_dir`` itself is created.
    Returns the paths written."""
    out_dir = out_path(out_dir, "--out", directory=True)
    texts = files(inv, advance, timing)
    created = not out_dir.exists()
    try:
        out_dir.mkdir(exist_ok=True)
        return commit(out_dir, texts)
    except OSError as e:
        if created:  # nothing of this run may stay behind: the directory is empty again
            with suppress(OSError):
                out_dir.rmdir()
        raise write_error(out_dir, e) from None
