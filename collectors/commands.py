"""`netops collect once | serve | traps | prepare-lab`: SNMP and database health, once as a table or as a
Prometheus exporter for one province; the province's SNMP trap receiver."""
from __future__ import annotations

import asyncio
import sys
import time

from jinbao_netops import escape
from jinbao_netops.access import Access
from jinbao_netops.inventory import load
from jinbao_netops.inventory.model import Level
from jinbao_netops.errors import FINDINGS, OK, PARTIAL, UsageError
from jinbao_netops.output import Out

from .snmp import Poller
from .targets import snmp_targets


def register(nouns, common) -> None:
    p = nouns.add_parser("collect", help="SNMP and database health: one round, or a Prometheus exporter")
    verbs = p.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True

    def tuning(v):
        v.add_argument("--timeout", type=float, default=2.0, metavar="S", help="per SNMP request attempt (default 2)")
        v.add_argument("--retries", type=int, default=1, metavar="N", help="SNMP retries per request (default 1)")
        v.add_argument("--device-deadline", type=float, default=15.0, metavar="S", help="hard limit per device (default 15)")
        v.add_argument("--max-repetitions", type=int, default=25, metavar="N", help="GETBULK max-repetitions (default 25)")
        v.add_argument("--inflight", type=int, default=2, metavar="N", help="concurrent requests per device (default 2)")
        v.add_argument("--no-db", action="store_true", help="skip the PostgreSQL/MariaDB health checks")
        v.add_argument("--no-ssh", action="store_true", help="skip SSH collection (OSPF neighbours, host health)")

    def stop_at(v):
        v.add_argument("--stop-at", metavar="LEVEL", choices=[lv.value for lv in Level if lv != Level.ministry],
                       help="leave out the sites of this level below the scope, and all under them: they run their own "
                            "collector (the ministry's: --scope bu --stop-at province)")

    o = verbs.add_parser("once", parents=[common], help="poll every device in scope once and print a health table")
    o.add_argument("--scope", metavar="SITE", help="a site id: that site and everything below it (default: all)")
    stop_at(o)
    o.add_argument("--deadline", type=float, default=60.0, metavar="S", help="hard limit for the whole round (default 60)")
    o.add_argument("--interfaces", action="store_true", help="also print one row per interface")
    tuning(o)
    o.set_defaults(func=cmd_once)
    s = verbs.add_parser("serve", parents=[common], help="run one collector (a province's, or the ministry's own sites) as a Prometheus exporter")
    s.add_argument("--scope", metavar="PROVINCE", required=True, help="the province (or any site) this collector covers")
    stop_at(s)
    s.add_argument("--listen", default="127.0.0.1:9469", metavar="ADDR:PORT", help="where /metrics is served (default 127.0.0.1:9469)")
    s.add_argument("--interval", type=float, default=60.0, metavar="S", help="seconds between rounds (default 60)")
    s.add_argument("--rounds", type=int, default=0, metavar="N", help="stop after N rounds (default: run until interrupted)")
    tuning(s)
    s.set_defaults(func=cmd_serve)
    tr = verbs.add_parser("traps", parents=[common],
                          help="receive the SNMP traps and informs of a province's devices and post them to its "
                               "Alertmanager as alerts (collectors/traps.py)")
    tr.add_argument("--scope", metavar="PROVINCE", required=True, help="the province (or any site) whose devices are heard")
    stop_at(tr)
    tr.add_argument("--listen", default="0.0.0.0:162", metavar="ADDR:PORT", help="UDP address traps arrive on (default 0.0.0.0:162)")
    tr.add_argument("--metrics", default="127.0.0.1:9470", metavar="ADDR:PORT",
                    help="where the receiver's /metrics is served (default 127.0.0.1:9470)")
    tr.add_argument("--alertmanager", required=True, metavar="URL", help="the province's Alertmanager, e.g. http://10.254.44.11:9093")
    tr.add_argument("--ttl", type=float, default=3600.0, metavar="S",
                    help="seconds a trap's alert lasts unless a clearing trap ends it sooner (default 3600)")
    tr.set_defaults(func=cmd_traps)
    pl = verbs.add_parser("prepare-lab", parents=[common],
                          help="create the least-privilege database monitoring role in the lab twin; names the "
                               "variable that holds its password (netops lab env exports it)")
    pl.add_argument("--lab", metavar="NAME", help="lab name (default: the inventory's network id)")
    pl.set_defaults(func=cmd_prepare_lab)


def _opts(args) -> dict:
    for name in ("timeout", "device_deadline", "max_repetitions", "inflight"):
        if getattr(args, name) <= 0:
            raise UsageError(f"collect {args.verb}: --{name.replace('_', '-')} must be positive")
    if args.retries < 0:
        raise UsageError(f"collect {args.verb}: --retries must not be negative")
    return {"timeout": args.timeout, "retries": args.retries, "deadline": args.device_deadline,
            "max_repetitions": args.max_repetitions, "inflight": args.inflight}


def _plan(args):
    from . import ssh

    if args.stop_at and not args.scope:
        raise UsageError(f"collect {args.verb}: --stop-at {args.stop_at}: give the --scope it applies to")
    inv = load(args.inventory)
    devices = inv.scope(args.scope, Level(args.stop_at) if args.stop_at else None)
    targets = snmp_targets(inv, devices, args.environ, **_opts(args))
    dbs = [] if args.no_db else db_targets(inv, devices, args.environ)
    sshs = [] if args.no_ssh else ssh.targets(inv, devices, timeout=max(args.timeout * 5, 10))
    return inv, targets, dbs, sshs


def db_targets(inv, devices, environ=None):
    from .db import targets

    return targets(inv, devices, environ)


async def _round(poller: Poller, targets, dbs, sshs, access, deadline: float, advance=lambda n=1, label=None: None):
    """SNMP (asyncio), databases and SSH (thread pools) at once, all under the round's deadline;
    ``access`` holds the SSH sessions (kept for the next round by `collect serve`)."""
    from .db import check_all
    from .ssh import collect_all

    async def threads(fn, items, failed, **kw):
        if not items:
            return []
        try:
            return await asyncio.wait_for(asyncio.to_thread(fn, items, **kw), deadline)
        except asyncio.TimeoutError:
            return [failed(x) for x in items]
        finally:
            advance(len(items), fn.__module__.rsplit(".", 1)[-1])

    def done(r):
        advance(1, r.device)

    late = f"round deadline {deadline:g} s exceeded"
    start = time.monotonic()
    results, health, shell = await asyncio.gather(
        poller.cycle(targets, deadline=deadline, on_done=done),
        threads(check_all, dbs, lambda d: {**d.record(), "up": False, "error": late, "role": None, "metrics": {},
                                           "database_size_bytes": {}}),
        threads(collect_all, sshs, lambda t: {"device": t.device, **t.labels, "platform": t.platform, "ok": False,
                                              "error": late}, access=access))
    return results, health, shell, time.monotonic() - start


def result_record(t, r) -> dict:
    ifs = list(r.interfaces.values())
    return {"device": t.device, **t.labels, "address": t.address, "snmp_version": t.version, "ok": r.ok,
            "error": r.error, "system": r.system, "cpu_ratio": r.cpu_ratio, "memory_ratio": r.memory_ratio,
            "environment": r.environment, "tables": r.tables,
            "interfaces": ifs, "storage": r.storage, "duration_s": round(r.duration_s, 3),
            "stats": vars(r.stats), "labels_walked": r.labels_walked}


def cmd_once(args, out: Out) -> int:
    inv, targets, dbs, sshs = _plan(args)
    if not targets:
        raise UsageError(f"collect once: scope {args.scope!r} has no devices")
    async def one_round(advance):
        poller = Poller()
        try:
            return await _round(poller, targets, dbs, sshs, access, args.deadline, advance)
        finally:
            poller.close()

    with Access(inv, args.environ) as access, out.progress("collect 采集", total=len(targets) + len(dbs) + len(sshs)) as advance:
        results, health, shell, took = asyncio.run(one_round(advance))
    recs = [result_record(t, r) for t, r in zip(targets, results)]
    failed = ([r["device"] for r in recs if not r["ok"]] + [f"{h['device']}/{h['service']}" for h in health if not h["up"]]
              + [f"{s['device']}/ssh" for s in shell if not s["ok"]])
    status = OK if not failed else PARTIAL
    if out.json_mode:
        out.json({"ok": not failed, "duration_s": round(took, 3), "devices": recs, "databases": health,
                  "ssh": shell, "failed": failed})
        return status
    rows = []
    for r in recs:
        ifs = r["interfaces"]
        up = sum(i["oper_status"] == "up" for i in ifs)
        uptime, temps = r["system"].get("uptime_s"), r["environment"].get("temperature", {}).values()
        missing = [f"{t}: {why}" for t, why in r["tables"].items() if why]
        rows.append([r["device"], r["site"], "✓" if r["ok"] else "✗", r["system"].get("vendor") or "",
                     f"{uptime:.0f}" if uptime is not None else "", f"{up}/{len(ifs)}" if r["ok"] else "",
                     _bytes(sum(i["counters"].get("in_octets", 0) for i in ifs)),
                     _bytes(sum(i["counters"].get("out_octets", 0) for i in ifs)),
                     _pct(r["cpu_ratio"]), _pct(r["memory_ratio"]), f"{max(temps)}" if temps else "",
                     f"{r['duration_s']:.2f}", "; ".join(filter(None, [r["error"], *missing]))])
    out.table("SNMP 设备健康 device health", ["device 设备", "site 站点", "up", "vendor", "uptime s", "if up 接口",
                                          "in 入", "out 出", "cpu", "mem 内存", "temp °C 温度", "poll s",
                                          "error 错误"], rows)
    if args.interfaces:
        out.table("接口 Interfaces", ["device", "interface", "alias", "admin", "oper", "speed", "in bytes", "out bytes",
                                    "in err", "out err"],
                  [[r["device"], i["name"], i["alias"], i["admin_status"], i["oper_status"], i["speed_bps"],
                    i["counters"].get("in_octets"), i["counters"].get("out_octets"), i["counters"].get("in_errors"),
                    i["counters"].get("out_errors")] for r in recs for i in r["interfaces"]])
    if health:
        from .db import table_rows

        out.table("数据库健康 database health", ["device", "service", "up", "role", "conn 连接", "lag s 延迟",
                                            "size 大小", "longest xact s", "error"], table_rows(health))
    if shell:
        out.table("SSH 健康 health", ["device", "ok", "OSPF full/all 邻居", "not full", "links down 断开接口", "load1",
                                    "mem 内存", "disk 磁盘", "failed units 失败单元", "error"],
                  [[s["device"], "✓" if s["ok"] else "✗",
                    f"{sum(n['full'] for n in s['ospf_neighbors'])}/{len(s['ospf_neighbors'])}" if "ospf_neighbors" in s else "",
                    " ".join(f"{n['neighbor_id']}({n['state']})" for n in s.get("ospf_neighbors", []) if not n["full"]),
                    " ".join(i["name"] for i in s.get("interfaces", []) if i["oper_status"] in ("down", "lowerlayerdown")),
                    s.get("load1", ""), _pct(s.get("memory_ratio")), _pct(s.get("disk_used_ratio")),
                    " ".join(s.get("failed_units", [])), s["error"] or ""] for s in shell])
    out.print(f"{len(recs)} devices 设备, {len(health)} databases 数据库, {len(shell)} SSH, {len(failed)} failed 失败, "
              f"{took:.1f} s" + (f": {', '.join(failed)}" if failed else ""))
    return status


def _bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024:
            return f"{n:.0f} {unit}"
        n /= 1024
    return f"{n:.0f} PiB"


def _pct(x) -> str:
    return "" if x is None else f"{x:.0%}"


def cmd_serve(args, out: Out) -> int:
    from prometheus_client import start_http_server
    from prometheus_client.registry import CollectorRegistry

    from .exporter import Snapshot

    if args.interval <= 0:
        raise UsageError("collect serve: --interval must be positive")
    host, port = _address("serve", "--listen", args.listen)
    inv, targets, dbs, sshs = _plan(args)
    if not targets:
        raise UsageError(f"collect serve: scope {args.scope!r} has no devices")
    registry = CollectorRegistry()
    snap = Snapshot()
    registry.register(snap)
    try:
        start_http_server(port, addr=host, registry=registry)
    except OSError as e:
        raise UsageError(f"collect serve: --listen {args.listen}: {e.strerror or e}") from None
    out.note(f"serving {len(targets)} devices, {len(dbs)} databases of {args.scope} on http://{args.listen}/metrics")

    async def loop():
        poller = Poller()
        n = 0
        while True:
            start = time.monotonic()
            results, health, shell, took = await _round(poller, targets, dbs, sshs, access,
                                                        deadline=0.9 * args.interval)
            snap.update([(t.labels, r) for t, r in zip(targets, results)], health, took, shell, poller.wire.dropped)
            n += 1
            problems = ([f"{t.device}: {r.error}" for t, r in zip(targets, results) if not r.ok]
                        + [f"{h['device']}/{h['service']}: {h['error']}" for h in health if not h["up"]]
                        + [f"{s['device']}/ssh: {s['error']}" for s in shell if not s["ok"]])
            if out.json_mode:
                out.json({"round": n, "duration_s": round(took, 3), "failed": snap.round["failed"], "problems": problems})
            elif problems:  # what failed and why, once per round, on stderr (the service's log)
                print(f"round {n}: {len(problems)} failed 失败: " + "; ".join(problems), file=sys.stderr, flush=True)
            if args.rounds and n >= args.rounds:
                return
            await asyncio.sleep(max(0.0, args.interval - (time.monotonic() - start)))

    with Access(inv, args.environ) as access:  # SSH logins once, not every round
        asyncio.run(loop())
    return OK if not snap.round["failed"] else PARTIAL


def _address(verb: str, option: str, value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"collect {verb}: {option} {value!r}: give ADDR:PORT, e.g. 127.0.0.1:9469")
    return host.strip("[]") or "0.0.0.0", int(port)


def cmd_traps(args, out: Out) -> int:
    from jinbao_netops import metricshttp

    from . import traps

    if args.ttl <= 0:
        raise UsageError("collect traps: --ttl must be positive")
    if not args.alertmanager.startswith(("http://", "https://")):
        raise UsageError(f"collect traps: --alertmanager {args.alertmanager!r}: give an http(s) URL")
    (host, port), (mhost, mport) = _address("traps", "--listen", args.listen), _address("traps", "--metrics", args.metrics)
    inv = load(args.inventory)
    targets = snmp_targets(inv, inv.scope(args.scope, Level(args.stop_at) if args.stop_at else None), args.environ)
    if not targets:
        raise UsageError(f"collect traps: scope {args.scope!r} has no SNMP devices")
    receiver = traps.Receiver(traps.sources(targets), args.alertmanager, args.ttl)
    try:
        metricshttp.serve_in_background(metricshttp.server(mhost, mport, receiver.metrics))
    except OSError as e:
        raise UsageError(f"collect traps: --metrics {args.metrics}: {e.strerror or e}") from None

    async def run():
        try:
            await traps.listen(receiver, host, port)
        except OSError as e:
            raise UsageError(f"collect traps: --listen {args.listen}: {e.strerror or e}") from None
        out.note(f"receiving the traps of {len(targets)} devices of {args.scope} on udp://{args.listen}, "
                 f"posting to {args.alertmanager}; metrics on http://{args.metrics}/metrics")
        await asyncio.Event().wait()  # until interrupted or ended (monitor down)

    asyncio.run(run())
    return OK


def cmd_prepare_lab(args, out: Out) -> int:
    from jinbao_netops.lab.runtime import Lab

    from .db import ROLE, prepare_lab

    inv = load(args.inventory)
    lab = Lab.open(inv, args.lab)
    lab.require_up()
    report = prepare_lab(inv, lab, out.note)
    if out.json_mode:
        out.json(report)
    else:  # the password itself is never printed: `netops lab env` exports it with the lab's other credentials
        for p in report["problems"]:
            out.print(f"✗ {escape.rich(p)}")
        out.print(f"数据库监控角色 monitoring role {ROLE}: {len(report['prepared'])} 个数据库已就绪 ready; "
                  f"口令在 password in {', '.join(report['password_env'])} (eval \"$(netops lab env)\")")
    return OK if report["ok"] else FINDINGS
