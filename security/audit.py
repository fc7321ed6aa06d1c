"""The read-only audit engine: collect over SSH in parallel, evaluate the catalogue, roll up.

Collection goes through the access layer, one session per host: servers run the read-only script
of hostchecks under `sudo -n sh -s` (fed on stdin); network devices answer the platform's
show-running command in the same session provisioning and backup use (an interactive vendor CLI
with paging off, or vtysh on FRR) — or a saved config file is read instead. Unreachable hosts are
reported as unreachable, never as passing, and never stop the run. A host the inventory declares no
SSH access for is not read (status ``not_read``): every control of its scope is 需人工举证, with why.
"""
from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from datetime import UTC, datetime
from pathlib import Path

from jinbao_netops.access import Access, NoSshAccess
from jinbao_netops.errors import DeviceError
from jinbao_netops.inventory.model import LEVEL_ORDER, Level
from jinbao_netops.inventory.platforms import redact
from jinbao_netops.inventory.store import Inventory

from . import admits, boundary, devicerules, hostchecks, logstore, records
from .catalogue import (
    FAIL,
    MANUAL,
    NA,
    VERDICT_EN,
    VERDICTS,
    Catalogue,
    Control,
    host_params,
    load_catalogue,
)

EXCERPT = 600


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


SERVER_COLLECT = "sudo -n /bin/sh -s"  # the collection script comes on stdin: nothing but this in argv

# a host's status: read and judged; not reached (no verdict, never passing); declared without SSH access
# (every control 需人工举证, and not a failure of the run)
OK_STATUS, UNREACHABLE, NOT_READ = "ok", "unreachable", "not_read"
STATUS_MARK = {UNREACHABLE: "✗ unreachable", NOT_READ: "– not read 未读取 (no SSH access)"}


# ------------------------------------------------------------------------------------ transport
def session_runner(access: Access) -> Callable[[str, str, str | None], str]:
    """run(device, command, stdin) → output, through the access layer: with ``stdin`` a shell command
    on a server (the collection script), without it a CLI command on a network device. Any failure
    to read the host is a DeviceError (reported as unreachable)."""

    def run(device: str, command: str, stdin: str | None = None) -> str:
        s = access.session(device)
        if stdin is not None:
            return s.run(command, input=stdin, check=False, timeout=120)
        return s.cli(command, check=False)

    return run


def file_runner(config_dir: Path, servers, network: set[str]):
    """The ``network`` devices from files: the config from DIR/<device>.cfg (backups) and, for a router
    on Linux, its host's collection output from DIR/<device>.host (a missing file is unreachable);
    servers through ``servers``."""
    def run(device: str, command: str, stdin: str | None = None) -> str:
        if device not in network:
            return servers(device, command, stdin)
        f = config_dir / f"{device}.{'cfg' if stdin is None else 'host'}"
        if not f.is_file():
            raise DeviceError(device, f"{f}: no saved {'configuration' if stdin is None else 'host collection'}")
        return f.read_text(encoding="utf-8", errors="replace")
    return run


# ------------------------------------------------------------------------------------ evaluation
def _manual(c: Control, why: str = "") -> dict:
    """需人工举证; ``why`` the machine gave no verdict on an automatable control (else: what to bring)."""
    excerpt = f"需人工举证 — {why}" if why else "需人工举证 — manual evidence: " + (c.evidence or "")
    return {"verdict": MANUAL, "findings": [], "evidence_required": c.evidence,
            "evidence": {"command": None, "excerpt": excerpt, "timestamp": None}}


def _result(c: Control, subs, reason: str, command: str | None, output: str, ts: str) -> dict:
    verdict = hostchecks.verdict(subs)
    excerpt = output.strip()[:EXCERPT]
    if verdict == NA and reason:
        excerpt = reason
    return {"verdict": verdict, "findings": subs or [], "evidence": {"command": command, "excerpt": excerpt, "timestamp": ts}}


def _host_result(c: Control, check, reason: str, facts: dict, params: dict, platform: str, ts: str) -> dict:
    """One hostchecks check over a Linux host's collected sections; the evidence quotes the sections
    it used, and the findings their details, redacted for the platform; ``reason`` (why it does not apply) may
    depend on the host's parameters."""
    reason = reason(params) if callable(reason) else reason
    subs, used = check(facts, params)
    subs = subs if subs is None else [{**f, "detail": redact(platform, f["detail"])} for f in subs]
    secs = hostchecks.sections(params)
    return _result(c, subs, reason, " ; ".join(secs[s] for s in used),
                   redact(platform, "".join(f"[{s}]\n{facts.get(s, '')}" for s in used)), ts)


def _records_result(c: Control, rec: records.Records, host: str, params: dict, ts: str) -> dict:
    """A control judged on the suite's own records; unreadable records are no evidence: 需人工举证, with why."""
    if rec.error:
        return _manual(c, f"the suite's records cannot be read 无法读取备份记录: {rec.error}")
    subs = records.CHECKS[c.id](rec, host, params)
    return _result(c, subs, "", rec.source, records.excerpt(subs), ts)


def _boundary_result(c: Control, params: dict, facts: dict, ts: str) -> dict:
    """net-boundary-acl on the engine's view of the host's boundary (boundary.judge)."""
    j = boundary.judge(params, facts)
    excerpt = "\n".join(x for x in (j.why, records.excerpt(j.findings)) if x)
    out = {"verdict": j.verdict, "findings": j.findings, "evidence": {"command": j.command, "excerpt": excerpt, "timestamp": ts}}
    return {**out, "evidence_required": c.evidence} if j.verdict == MANUAL else out


def controls(cat: Catalogue, kind: str, params: dict) -> list[Control]:
    """The controls a host is judged on: its kind's, and a boundary device's boundary control whatever
    its platform (a Linux firewall or 网闸 is a server-kind node)."""
    own, acl = cat.scope(kind), cat.by_id()[boundary.CONTROL]
    return sorted([*own, acl], key=Control.clause_key) if boundary.is_boundary(params) and acl.scope != kind else own


def audit_server(cat: Catalogue, params: dict, output: str, ts: str, rec: records.Records, host: str,
                 platform: str = "debian") -> list[dict]:
    facts = hostchecks.split(output)
    out = []
    for c in controls(cat, "server", params):
        if not c.automatable:
            r = _manual(c)
        elif c.id == boundary.CONTROL:
            r = _boundary_result(c, params, facts, ts)
        elif c.id in records.CHECKS:
            r = _records_result(c, rec, host, params, ts)
        else:
            r = _host_result(c, hostchecks.CHECKS[c.id], hostchecks.NA_REASONS.get(c.id, ""), facts, params, platform, ts)
        out.append(_row(c, r, platform))
    return out


def audit_network(cat: Catalogue, platform: str, params: dict, config: str, command: str, ts: str,
                  host_output: str = "") -> list[dict]:
    """The rules judge the configuration as the device holds it, and what the platform leaves to its
    Linux host on that host's collected state (``host_output``); what the report shows of either (the
    findings' matched lines, the excerpt) has every secret the platform's lines carry redacted."""
    out = []
    shown = redact(platform, config)
    facts = hostchecks.split(host_output)
    for c in cat.scope("network"):
        rule = devicerules.rule(platform, c.id)
        if not c.automatable:
            r = _manual(c)
        elif c.id == boundary.CONTROL:
            r = _boundary_result(c, params, facts, ts)
        elif isinstance(rule, devicerules.OnHost):
            r = _host_result(c, rule.check, rule.na_reason, facts, params, platform, ts)
        else:
            subs, reason = devicerules.evaluate(platform, c.id, config, params)
            matched = "\n".join(s["detail"] for s in subs or [])
            r = _result(c, subs, reason, command, matched or shown[:EXCERPT], ts)
        out.append(_row(c, r, platform))
    return out


def _row(c: Control, r: dict, platform: str) -> dict:
    return {"id": c.id, "clause": c.clause, "item": c.item, "title_zh": c.title_zh, "title_en": c.title_en,
            "automatable": c.automatable, "verdict_en": VERDICT_EN[r["verdict"]], "fix": c.fix_for(platform), **r}


def _collect_host(run, device: str, params: dict) -> str:
    """The read-only collection script's output from a Linux host (a server, or a router's host OS)."""
    output = run(device, SERVER_COLLECT, hostchecks.script(params))
    if hostchecks.MARK not in output:
        raise DeviceError(device, "the collection script did not run (sudo -n refused?)")
    return output


def audit_host(inv: Inventory, cat: Catalogue, device: str, run, rec: records.Records, extra: dict | None = None) -> dict:
    """One host; ``extra``: parameters the engine adds from other hosts (the log store's view)."""
    d = inv.devices[device]
    site = inv.sites[d.site]
    plat = d.platform_info
    out = {"host": device, "name": d.name or device, "address": str(d.management), "site": site.id, "site_name": site.name,
           "level": site.level.value, "lineage": inv.lineage(site.id), "platform": d.platform, "kind": plat.kind,
           "status": OK_STATUS, "error": None, "started": now(), "seconds": 0.0, "results": []}
    t0 = time.monotonic()
    try:
        params = {**host_params(inv, device), **(extra or {})}
        if plat.kind == "server":
            output = _collect_host(run, device, params)
            out["results"] = audit_server(cat, params, output, now(), rec, device, d.platform)
            if params.get("dengbao_log_senders"):
                out["log_store"] = logstore.store_state(hostchecks.split(output).get("logstore", ""),
                                                        params["dengbao_log_retention_days"])
        else:
            config = run(device, plat.show_running, None)
            host = _collect_host(run, device, params) if devicerules.on_host(d.platform) else ""
            out["results"] = audit_network(cat, d.platform, params, config, plat.show_running, now(), host)
    except NoSshAccess as e:  # never meant to be read over SSH: no verdict, and not unreachable either
        out.update(status=NOT_READ, error=e.detail,
                   results=[_row(c, _manual(c, f"not read 未读取: {e.detail}"), d.platform) for c in controls(cat, plat.kind, params)])
    except DeviceError as e:
        out.update(status=UNREACHABLE, error=e.detail)
    out["seconds"] = round(time.monotonic() - t0, 3)
    return out


def run_audit(inv: Inventory, scope: str | None = None, run=None, parallel: int = 16, progress=None,
              rec: records.Records | None = None, zone_evidence: boundary.Evidence | None = None) -> dict:
    """Audit every host in scope; ``run`` reads a host (default: the access layer's sessions), ``rec``
    are the suite's own records (default: the ops host's backup catalogue and drill journals),
    ``zone_evidence`` the boundaries' (default: the inventory's zone push and probe records)."""
    if run is None:
        with Access(inv) as access:
            return run_audit(inv, scope, session_runner(access), parallel, progress, rec, zone_evidence)
    rec = records.load() if rec is None else rec
    zone_evidence = boundary.Evidence(inv) if zone_evidence is None else zone_evidence
    cat = load_catalogue()
    hosts = inv.scope(scope)
    started, t0 = now(), time.monotonic()
    # Log retention is judged where the logs are: the log hosts (those in scope, and those that receive from
    # it) are read first, so each sender's verdict rests on its log host's store as read in this run.
    store_hosts = logstore.log_hosts(inv, scope)
    first = {lh: {"dengbao_log_senders": [s.device for s in logstore.senders(inv, lh)],
                  "dengbao_peer_admit": admits.admitted(inv, lh)} for lh in store_hosts}
    results: dict[str, dict] = {}
    stores: dict[str, dict | None] = {}

    def wave(devices: list[str], extra) -> None:
        with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
            futs = {pool.submit(audit_host, inv, cat, h, run, rec, extra(h)): h for h in devices}
            for fut in as_completed(futs):
                host = fut.result()
                if host["host"] in first:
                    stores[host["host"]] = host.get("log_store")
                if host["host"] not in hosts:
                    continue  # a log host outside the scope: read for its store only
                results[host["host"]] = host
                if progress:
                    progress(1, f"{host['host']} {STATUS_MARK.get(host['status'], '')}")

    def store_view(h: str) -> dict:
        lh = logstore.log_host_of(inv, h) if inv.devices[h].platform_info.kind == "server" else None
        out = dict(first.get(h, {}))
        out.setdefault("dengbao_peer_admit", admits.admitted(inv, h))
        out.update(records.dr_view(inv, h, rec, host_params(inv, h)["dengbao_failover_drill_max_days"]))
        out[boundary.KEY] = zone_evidence.view(h)
        if lh:
            out["dengbao_log_store"] = logstore.sender_evidence(lh, stores.get(lh), h, host_params(inv, h)["dengbao_log_retention_days"])
        return out

    pending = set(first)
    while pending:  # the ministry's log host before the provinces', which send to it
        ready = sorted(h for h in pending if logstore.log_host_of(inv, h) not in pending)
        wave(ready, store_view)
        pending -= set(ready)
    wave([h for h in hosts if h not in first], store_view)
    order = {s.id: i for i, s in enumerate(inv.sites_in_order())}
    ordered = sorted(results.values(), key=lambda r: (order[r["site"]], r["host"]))
    report = {"tool": "netops audit", "format": 1, "baseline": "GB/T 22239-2019 第三级 (等保 2.0 三级)",
              "inventory": str(inv.root), "network": inv.network.name if inv.network else "", "scope": scope or "all",
              "started": started, "finished": now(), "seconds": round(time.monotonic() - t0, 3),
              "hosts": ordered}
    report["summary"] = summary(ordered)
    report["rollup"] = rollup(inv, cat, ordered)
    return report


# ------------------------------------------------------------------------------------ roll-up
def _count(rows) -> dict:
    c = Counter(r["verdict"] for r in rows)
    return {v: c.get(v, 0) for v in VERDICTS}


def summary(hosts: list[dict]) -> dict:
    rows = [r for h in hosts for r in h["results"]]
    return {"hosts": len(hosts), "reachable": sum(h["status"] == OK_STATUS for h in hosts),
            "unreachable": sorted(h["host"] for h in hosts if h["status"] == UNREACHABLE),
            "not_read": sorted(h["host"] for h in hosts if h["status"] == NOT_READ),
            "verdicts": _count(rows), "non_compliant_hosts": sorted({h["host"] for h in hosts if any(r["verdict"] == FAIL for r in h["results"])})}


def rollup(inv: Inventory, cat: Catalogue, hosts: list[dict]) -> dict:
    by_site: dict[str, list[dict]] = {}
    for h in hosts:
        by_site.setdefault(h["site"], []).append(h)
    sites = []
    for s in inv.sites_in_order():
        under = set(inv.descendants(s.id))
        own, tree = by_site.get(s.id, []), [h for h in hosts if h["site"] in under]
        if not tree:
            continue
        sites.append({"site": s.id, "name": s.name, "level": s.level.value, "parent": s.parent,
                      "hosts": len(own), "unreachable": sum(h["status"] == UNREACHABLE for h in own),
                      "verdicts": _count(r for h in own for r in h["results"]),
                      "tree_hosts": len(tree), "tree_verdicts": _count(r for h in tree for r in h["results"])})
    levels = []
    for lv in sorted({h["level"] for h in hosts}, key=lambda v: -LEVEL_ORDER[Level(v)]):
        hs = [h for h in hosts if h["level"] == lv]
        levels.append({"level": lv, "hosts": len(hs), "unreachable": sum(h["status"] == UNREACHABLE for h in hs),
                       "verdicts": _count(r for h in hs for r in h["results"])})
    controls = []
    for c in sorted(cat.controls, key=lambda c: (c.clause_key(), c.scope, c.id)):
        rows = [r for h in hosts for r in h["results"] if r["id"] == c.id]
        if rows:
            t = cat.clause_title(c.clause)
            controls.append({"id": c.id, "clause": c.clause, "clause_zh": t.get("zh", ""), "clause_en": t.get("en", ""),
                             "item": c.item, "title_zh": c.title_zh, "title_en": c.title_en, "verdicts": _count(rows),
                             "failing_hosts": sorted(h["host"] for h in hosts for r in h["results"] if r["id"] == c.id and r["verdict"] == FAIL)})
    return {"sites": sites, "levels": levels, "controls": controls}


def diff(previous: dict, current: dict) -> dict:
    """What changed since a previous report: verdict changes per host and control, hosts come and gone."""
    def index(rep):
        return {h["host"]: h for h in rep.get("hosts", [])}

    old, new = index(previous), index(current)
    changes = []
    for host in sorted(set(old) | set(new)):
        o, n = old.get(host), new.get(host)
        if o is None or n is None:
            changes.append({"host": host, "control": None, "before": "absent" if o is None else o["status"],
                            "after": "absent" if n is None else n["status"]})
            continue
        if o["status"] != n["status"]:
            changes.append({"host": host, "control": None, "before": o["status"], "after": n["status"]})
        ov = {r["id"]: r["verdict"] for r in o.get("results", [])}
        for r in n.get("results", []):
            if ov.get(r["id"], "absent") != r["verdict"] and n["status"] == OK_STATUS and o["status"] == OK_STATUS:
                changes.append({"host": host, "control": r["id"], "clause": r["clause"], "before": ov.get(r["id"], "absent"),
                                "after": r["verdict"]})
    before, after = previous.get("summary", {}).get("verdicts", {}), current["summary"]["verdicts"]
    return {"previous": previous.get("finished"), "changes": changes,
            "verdicts_delta": {v: after.get(v, 0) - before.get(v, 0) for v in VERDICTS}}
