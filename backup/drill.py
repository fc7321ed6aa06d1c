"""Disaster-recovery drills on the lab twin: a scenario file names a scope, a fault and targets;
the drill checks the steady state, injects the fault, detects it, recovers, verifies the recovered
service, checks the steady state again, and ALWAYS cleans up.

- ``database_restore``: restore from backups on a standby node. RTO = fault → service verified;
  RPO = fault − time of the newest restorable data.
- ``router_failover``: a router loses its links; the counties cut off must be those the topology names.
- ``database_failover``: the primary of a replication pair dies (SIGKILL, its unit masked: fenced) while a
  writer commits numbered 缴费 records; the suite detects it (the writer's connection breaks, and the standby's
  WAL receiver confirms the primary is gone: two views, so a client's own network trouble promotes nothing), then
  promotes the standby. RTO-service = fault → first write committed at the standby, detection included; RPO = commits acknowledged by the primary that the promoted standby lacks (counted, never
  estimated). Failback: the old primary is re-cloned as the standby's standby, a planned switchover (clean
  stop, every record present by checksum) promotes it again, and the pair is rebuilt in its original roles.
"""
from __future__ import annotations

import json
import subprocess
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from jinbao_netops import escape
from jinbao_netops.access import Access
from jinbao_netops.inventory import Inventory, InventoryError, Level
from jinbao_netops.inventory.engines import ENGINES, POSTGRESQL, Command, as_user
from jinbao_netops.inventory.loader import one_line, read_yaml, schema_problems
from jinbao_netops.inventory.model import DEVICE_ID, IFACE_NAME, SITE_ID, Service
from jinbao_netops.files import write_atomic
from jinbao_netops.errors import DeviceError, NetopsError, UsageError

from . import catalogue
from .jobs import Shell, runner, ssh_shell
from .remote import state_dir

SCENARIOS = Path(__file__).with_name("scenarios")


# --- scenarios ---------------------------------------------------------------------------------
def scenario_path(name: str) -> Path:
    p = Path(name)
    if p.suffix in (".yml", ".yaml") and p.exists():
        return p
    q = SCENARIOS / f"{name}.yml"
    if q.exists():
        return q
    known = ", ".join(sorted(x.stem for x in SCENARIOS.glob("*.yml")))
    raise UsageError(f"scenario {name!r}: no such file or built-in scenario (built-in: {known})")


UNIT = r"^[A-Za-z0-9][A-Za-z0-9@._-]{0,63}$"  # a systemd unit name
MAX_SCENARIO_BYTES = 64 << 10                 # a scenario is a page of YAML
Seconds = Annotated[float, Field(gt=0, le=30 * 86400)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Fault(_Strict):
    # killed (SIGKILL) and masked for the drill's duration: a power loss, and the node fenced (cannot come back)
    kill_services: dict[Annotated[str, Field(pattern=DEVICE_ID)],
                        Annotated[list[Annotated[str, Field(pattern=UNIT)]], Field(min_length=1, max_length=20)]] = {}
    stop_services: dict[Annotated[str, Field(pattern=DEVICE_ID)],
                        Annotated[list[Annotated[str, Field(pattern=UNIT)]], Field(min_length=1, max_length=20)]] = {}
    links_down: dict[Annotated[str, Field(pattern=DEVICE_ID)],
                     Literal["all"] | Annotated[list[Annotated[str, Field(pattern=IFACE_NAME)]],
                                                Field(min_length=1, max_length=64)]] = {}


class Targets(_Strict):
    rto_seconds: Seconds | None = None
    rpo_seconds: Seconds | None = None
    rpo_transactions: Annotated[int, Field(ge=0, le=1_000_000)] | None = None  # committed records lost (database_failover)
    rto_network_seconds: Seconds | None = None  # fault → the last county reaches the moved service address


class Scenario(_Strict):
    """A drill scenario file: typed, every field bounded; what it names is checked against the inventory."""
    id: Annotated[str, Field(pattern=DEVICE_ID)]
    name: Annotated[str, Field(min_length=1, max_length=200)]
    kind: Literal["database_restore", "router_failover", "database_failover"]
    scope: Annotated[str, Field(pattern=SITE_ID)]
    fault: Fault
    targets: Targets
    source: Annotated[str, Field(pattern=DEVICE_ID)] | None = None    # database_restore, database_failover (the primary)
    service: Service | None = None
    standby: Annotated[str, Field(pattern=DEVICE_ID)] | None = None
    from_dr: bool = False
    router: Annotated[str, Field(pattern=DEVICE_ID)] | None = None    # router_failover

    @model_validator(mode="after")
    def _kind_fields(self):
        need = ("router",) if self.kind == "router_failover" else ("source", "service", "standby")
        missing = [f for f in need if getattr(self, f) is None]
        if missing:
            raise ValueError(f"@{missing[0]}: required for kind {self.kind}")
        if not self.fault.stop_services and not self.fault.links_down and not self.fault.kill_services:
            raise ValueError("@fault: no fault: give kill_services, stop_services or links_down")
        if self.kind == "database_failover" and self.service != "postgresql":
            raise ValueError("@service: a failover drill promotes a PostgreSQL streaming standby: postgresql")
        return self


def load_scenario(inv: Inventory, name: str) -> dict:
    """A scenario by built-in name or file, read like the inventory (``read_yaml``: a regular UTF-8
    file, size and aliases bounded), typed (``Scenario``), and checked against the inventory; every
    problem is one line ``FILE:LINE: scenario 'ID': field 'F': …`` (exit status 2)."""
    path = scenario_path(name)
    raw = read_yaml(path, Scenario.model_fields, "not a drill scenario 不是演练场景", MAX_SCENARIO_BYTES)
    if isinstance(raw, InventoryError):
        raise UsageError(problems=raw.problems)
    if raw is None:
        raise UsageError(f"{path}: document: field '(file)': empty; a drill scenario is expected 需要演练场景")
    obj = f"scenario '{raw['id'] if isinstance(raw.get('id'), str) else '?'}'"
    try:
        sc = Scenario.model_validate(dict(raw))
    except ValidationError as e:
        raise UsageError(problems=[one_line(p) for p in schema_problems(f"{path}:{raw.line}", obj, e)]) from None

    def line(field: str) -> int:
        value = raw.get(field)
        return getattr(value, "line", 0) or raw.line

    problems = []
    if sc.scope not in inv.sites:
        problems.append(("scope", f"no site {sc.scope!r} in the inventory"))
    else:
        in_scope = set(inv.scope(sc.scope))
        named = {"fault": [*sc.fault.kill_services, *sc.fault.stop_services, *sc.fault.links_down],
                 **{f: [getattr(sc, f)] for f in ("source", "standby", "router") if getattr(sc, f)}}
        for field, devs in named.items():
            for dev in devs:
                if dev not in inv.devices:
                    problems.append((field, f"no device {dev!r} in the inventory"))
                elif dev not in in_scope:
                    problems.append((field, f"{dev} is outside the scope {sc.scope}: drills never touch nodes "
                                            "outside their scope"))
    extra = {}
    if sc.kind == "database_failover" and not problems:
        replica = inv.devices[sc.standby].replica
        if replica is None or replica.of != sc.source:
            problems.append(("standby", f"{sc.standby} is not a standby of {sc.source} in the inventory "
                                        f"(replica: {{of: {sc.source}}}): nothing to promote"))
        else:
            extra["_service_address"] = str(replica.service_address) if replica.service_address else ""
    if problems:
        raise UsageError(problems=[f"{path}:{line(f)}: {obj}: field '{f}': {msg}" for f, msg in problems])
    return {**sc.model_dump(exclude_none=True), "_path": str(path), **extra}


# --- the journal ---------------------------------------------------------------------------------
class Journal:
    def __init__(self, sc: dict):
        self.sc = sc
        self.t0 = time.time()
        self.steps: list[dict] = []
        self.marks: dict[str, float] = {}

    def step(self, phase: str, what: str, ok: bool = True, **evidence) -> dict:
        now = time.time()
        s = {"t": datetime.fromtimestamp(now, timezone.utc).isoformat(timespec="milliseconds"),
             "offset_s": round(now - self.t0, 3), "phase": phase, "step": what, "ok": ok, "evidence": evidence}
        self.steps.append(s)
        return s

    def mark(self, name: str) -> float:
        self.marks[name] = time.time()
        return self.marks[name]


class DrillFailed(NetopsError):
    """The drill cannot go on (a precondition or a step failed): the journal says where."""


# --- lab actions (the only ones a drill takes) ----------------------------------------------------
class LabActions:
    """Fault injection and repair inside the lab twin's nodes (root, via nsenter)."""

    def __init__(self, inv: Inventory):
        from jinbao_netops.lab.runtime import Lab

        self.lab = Lab.open(inv)
        if not self.lab.is_up:
            raise UsageError(f"drills inject faults in the lab twin: lab {self.lab.name!r} is not up (netops lab up)")

    def run(self, node: str, *cmd: str, check: bool = True) -> str:
        r = self.lab.node(node).exec(list(cmd), timeout=120)
        if check and r.returncode != 0:
            raise DeviceError(node, f"{' '.join(cmd)}: {(r.stderr or r.stdout).strip()[-200:]}")
        return r.stdout

    def command(self, node: str, cmd: list[str]) -> list[str]:
        """The host command line running ``cmd`` as root inside ``node`` (for a process the drill keeps open)."""
        return self.lab.node(node).command(cmd)

    def interfaces(self, node: str) -> list[str]:
        out = json.loads(self.run(node, "ip", "-j", "link", "show"))
        return [i["ifname"] for i in out if i["ifname"] != "lo"]

    def active(self, node: str, service: str) -> bool:
        return self.run(node, "systemctl", "is-active", service, check=False).strip() == "active"

    def ping(self, node: str, address: str, count: int = 3) -> bool:
        return self.lab.node(node).run_in_netns(["ping", "-n", "-q", "-c", str(count), "-i", "0.2", "-W", "1", address]
                                                ).returncode == 0


def _wait(pred, timeout: float, every: float = 0.5) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(every)
    return pred()


# --- running ----------------------------------------------------------------------------------------
def plan(sc: dict) -> list[str]:
    fault = sc["fault"]
    lines = [f"steady state 稳态检查: scope {sc['scope']}"]
    for node, svcs in fault.get("kill_services", {}).items():
        lines.append(f"fault 故障注入: kill -9 {', '.join(svcs)} on {node}, masked (fenced) until failback")
    for node, svcs in fault.get("stop_services", {}).items():
        lines.append(f"fault 故障注入: stop {', '.join(svcs)} on {node}")
    for node, itfs in fault.get("links_down", {}).items():
        lines.append(f"fault 故障注入: links down on {node}: {itfs}")
    if sc["kind"] == "database_restore":
        lines += [f"detect 检测: {sc['service']} on {sc['source']} unavailable",
                  f"recover 恢复: restore {sc['source']}:{sc['service']}:* to {sc['standby']}"
                  + (" from the DR site's off-site copy" if sc.get("from_dr") else " from the province's backup store"),
                  "verify 校验: restored tables equal the source at backup time (row counts, checksums)"]
    elif sc["kind"] == "database_failover":
        src, sb = sc["source"], sc["standby"]
        lines = [lines[0], f"steady state 稳态检查: {sb} streams from {src}; a writer commits numbered 缴费 records "
                           f"to the scratch database {DRILL_DB} on {src}", *lines[1:],
                 f"detect 检测: the writer's connection to {src} breaks, and {sb}'s WAL receiver confirms {src} is gone "
                 "(wal_receiver_timeout 5 s for a silent primary); nothing is promoted before both",
                 f"recover 恢复: promote {sb} (pg_promote); the writer commits at {sb} (RTO-service)",
                 "recover 恢复: the pair's service address moves to " + sb + ", announced by its site router into OSPF; "
                 "every county in scope probed until it reaches it (RTO-network)" if sc.get("_service_address") else
                 "recover 恢复: the pair has no service address in the inventory: clients are not switched",
                 f"verify 校验: every commit {src} acknowledged is on {sb} (RPO in transactions and seconds)",
                 f"failback 回切: the failed links come back; re-clone {src} as a standby of {sb}; planned switchover "
                 f"(clean stop of {sb}, checksums equal); promote {src}; rebuild {src} → {sb}; the address back at {src}",
                 "report 报告: RTO, RPO, per-county reroute times, the GB/T 20988 level they support"]
    else:
        lines += ["detect 检测: counties' pings to the ministry fail",
                  "failover 切换: dual-homed counties reach the ministry over the redundant path",
                  "verify 校验: the counties that lose service are exactly the topology analysis' cut-off set"]
    lines += ["steady state after 恢复后稳态", "cleanup 清理: undo every fault, remove restored copies (always runs)"]
    return lines


def run(access: Access, sc: dict, shell: Shell | None = None, progress=lambda n=1, label=None: None) -> dict:
    """Run a drill scenario on the lab twin; devices are reached through ``access`` (``shell``
    replaces its OpenSSH streams)."""
    inv, shell = access.inv, shell or ssh_shell(access)
    j = Journal(sc)
    actions = LabActions(inv)
    undo: list[tuple[str, callable]] = []
    verdict = {"ok": False}
    try:
        kind = {"database_restore": _database_restore, "router_failover": _router_failover,
                "database_failover": _database_failover}[sc["kind"]]
        verdict = kind(access, sc, shell, actions, j, undo, progress)
    except (NetopsError, OSError, subprocess.SubprocessError) as e:  # the lab, a device, restic, a step
        verdict = {"ok": False, "aborted_at": j.steps[-1]["step"] if j.steps else "start", "error": str(e)}
        j.step("abort", f"drill aborted 演练中止: {e}", ok=False)
    finally:  # the steady state comes back whatever happened; its own failures are recorded, never raised
        for what, fn in reversed(undo):
            try:
                fn()
                j.step("cleanup", what)
            except Exception as e:  # cleanup goes on: every undo is tried
                j.step("cleanup", what, ok=False, error=str(e))
        if undo:
            try:
                settled = _settled(inv, sc, actions)
            except (NetopsError, OSError, subprocess.SubprocessError) as e:
                settled = [f"the steady state could not be checked: {e}"]
            j.step("cleanup", "the scope is back to its steady state 范围内已恢复稳态", ok=not settled, problems=settled)
        progress(1, "cleanup")
    return finish(sc, j, verdict)


def reaching(inv: Inventory, scope: str, actions: LabActions) -> dict[str, bool]:
    """County (in scope) → whether its server (its router when it has none) pings the ministry's server."""
    counties = sorted(s for s in inv.descendants(scope) if inv.sites[s].level == Level.county)
    _, target = inv.reach_target()
    return {c: actions.ping(inv.reach_source(c), target) for c in counties}


def _settled(inv: Inventory, sc: dict, actions: LabActions, timeout: float = 90) -> list[str]:
    """What is not back after cleanup: stopped services, counties that do not reach the ministry."""
    fault = sc["fault"]
    problems: list[str] = []
    for node, svcs in {**fault.get("kill_services", {}), **fault.get("stop_services", {})}.items():
        problems += [f"{s} not active on {node}" for s in svcs if not _wait(lambda n=node, s=s: actions.active(n, s), 30)]
    if fault.get("links_down"):
        if not _wait(lambda: all(reaching(inv, sc["scope"], actions).values()), timeout, every=1):
            problems += [f"{c} does not reach the ministry" for c, ok in reaching(inv, sc["scope"], actions).items() if not ok]
    return problems


def _inject(sc, actions: LabActions, j: Journal, undo: list) -> list:
    """Inject the scenario's fault, each part's undo appended to ``undo`` first; returns the links' undos (a drill
    that brings the failed site back before cleanup runs them early)."""
    fault = sc["fault"]
    links = []
    t = j.mark("fault")
    for node, units in fault.get("kill_services", {}).items():
        for unit in units:  # masked first: nothing (systemd, a dependency) can start it again until failback
            undo.append((f"unmask and start {unit} on {node}", lambda n=node, u=unit: (
                actions.run(n, "systemctl", "unmask", "--runtime", u), actions.run(n, "systemctl", "start", u))))
            actions.run(node, "systemctl", "mask", "--runtime", unit)
            actions.run(node, "systemctl", "kill", "--signal", "KILL", unit)
    for node, svcs in fault.get("stop_services", {}).items():
        for svc in svcs:
            undo.append((f"start {svc} on {node}", lambda n=node, s=svc: actions.run(n, "systemctl", "start", s)))
            actions.run(node, "systemctl", "stop", svc)
    for node, itfs in fault.get("links_down", {}).items():
        names = actions.interfaces(node) if itfs == "all" else list(itfs)
        for itf in names:
            links.append((f"link {itf} up on {node}", lambda n=node, i=itf: actions.run(n, "ip", "link", "set", i, "up")))
            undo.append(links[-1])
            actions.run(node, "ip", "link", "set", itf, "down")
    j.step("fault", "fault injected 故障已注入", **{k: v for k, v in fault.items()}, fault_time=t)
    return links


def _database_restore(access: Access, sc, shell, actions: LabActions, j: Journal, undo: list, progress) -> dict:
    from .restore import Refused, restore

    src, svc, standby = sc["source"], sc["service"], sc["standby"]
    eng = ENGINES[svc]
    on_standby = runner(shell, standby)
    cat = catalogue.load()["assets"]
    assets = sorted(a for a, e in cat.items() if e.get("device") == src and e.get("service") == svc and e.get("database")
                    and e.get("snapshot"))  # the dumps (a base backup is the whole cluster, not one database)
    if not assets:
        raise DrillFailed(f"no backup of {svc} on {src} in the catalogue (run `netops backup run` first)")
    unverified = [a for a in assets if cat[a].get("verify_ok") is not True]
    ok = actions.active(src, svc) and not unverified
    j.step("steady", f"{svc} active on {src}; newest backups verified 最新备份已校验", ok=ok, assets=assets,
           unverified=unverified, snapshots={a: cat[a]["snapshot"] for a in assets})
    progress(1, "steady state")
    if not ok:
        raise DrillFailed("steady state not met: " + (f"unverified backups {unverified}" if unverified else f"{svc} not active on {src}"))

    _inject(sc, actions, j, undo)
    progress(1, "fault")
    if not _wait(lambda: not actions.active(src, svc), 60):
        raise DrillFailed(f"{svc} on {src} still active after the fault")
    j.step("detect", f"{svc} on {src} is down 服务已中断", ok=True)
    progress(1, "detect")

    if not actions.active(standby, svc):
        undo.append((f"stop {svc} on standby {standby}", lambda: actions.run(standby, "systemctl", "stop", svc)))
        actions.run(standby, "systemctl", "start", svc)
        j.step("recover", f"{svc} started on standby {standby} 备用节点启动数据库引擎")
    for a in assets:
        if eng.exists(on_standby, cat[a]["database"]):
            raise DrillFailed(f"standby {standby} already holds database {cat[a]['database']}: not a standby")
    restored, snap_times = [], []
    for a in assets:
        db = cat[a]["database"]
        undo.append((f"drop restored {db} on {standby}", lambda d=db: on_standby(eng.drop(d))))
        try:
            res = restore(access, a, standby, shell=shell, from_dr=bool(sc.get("from_dr")))
        except Refused as e:
            raise DrillFailed(f"restore refused: {e}") from None
        restored.append(res)
        snap_times.append(datetime.fromisoformat(res["time"].replace("Z", "+00:00")).timestamp())
        j.step("recover", f"restored {a} → {standby} from {res['repo']} 已恢复", ok=True, snapshot=res["snapshot"],
               snapshot_time=res["time"], seconds=res["seconds"])
    progress(1, "recover")
    matches = all(r["matches_source"] for r in restored)
    j.step("verify", "restored data equals the source at backup time 恢复数据与备份时源数据一致" if matches else
           "restored data differs from the source at backup time 恢复数据不一致", ok=matches,
           tables={r["asset"]: r["fingerprint"] for r in restored})
    t_verified = j.mark("verified")
    progress(1, "verify")
    # steady state after: the standby serves each database
    serving = all(eng.exists(on_standby, r["database"]) for r in restored) and actions.active(standby, svc)
    j.step("steady_after", f"{standby} serves the restored databases 备用节点提供服务", ok=serving)
    rto = t_verified - j.marks["fault"]
    rpo = j.marks["fault"] - min(snap_times)
    return {"ok": matches and serving, "rto_seconds": round(rto, 3), "rpo_seconds": round(rpo, 3),
            "restored": [{k: r[k] for k in ("asset", "snapshot", "repo", "to", "time", "tables")} for r in restored]}


def _router_failover(access: Access, sc, shell, actions: LabActions, j: Journal, undo: list, progress) -> dict:
    from jinbao_netops.topology.analysis import impact
    from jinbao_netops.topology.graph import build

    inv = access.inv
    router = sc["router"]
    expected = sorted(impact(build(inv), router)["cut_off"].get("county", []))

    def reach() -> dict[str, bool]:
        return reaching(inv, sc["scope"], actions)

    before = reach()
    j.step("steady", "every county in scope reaches the ministry 全部区县可达部中心", ok=all(before.values()),
           reach=before, topology_cut_off=expected)
    progress(1, "steady state")
    if not all(before.values()):
        raise DrillFailed(f"steady state not met: unreachable {[c for c, ok in before.items() if not ok]}")
    _inject(sc, actions, j, undo)
    progress(1, "fault")
    # detection: the cut-off counties stop reaching (OSPF dead interval); survivors converge on the redundant path
    detected = _wait(lambda: not any(v for c, v in reach().items() if c in expected), 60) if expected else True
    j.step("detect", "cut-off counties lose the ministry 受影响区县中断", ok=detected, counties=expected)
    progress(1, "detect")
    converged = _wait(lambda: all(v for c, v in reach().items() if c not in expected), sc["targets"].get("rto_seconds", 60) * 2)
    t_verified = j.mark("verified")
    after = reach()
    lost = sorted(c for c, ok in after.items() if not ok)
    match = lost == expected
    j.step("failover", "redundant paths carry the dual-homed counties 冗余路径切换完成", ok=converged,
           reach=after)
    j.step("verify", f"counties losing service {lost} {'match' if match else 'differ from'} the topology analysis "
           f"{expected} 与拓扑分析{'一致' if match else '不一致'}", ok=match, lost=lost, topology_cut_off=expected)
    progress(1, "verify")
    return {"ok": converged and match and detected, "rto_seconds": round(t_verified - j.marks["fault"], 3),
            "rpo_seconds": None, "lost_service": lost, "topology_cut_off": expected}


# --- database failover ------------------------------------------------------------------------------
DRILL_DB = "netops_drill"  # the drill's scratch database: netops_ databases are never business data (backups skip them)
WRITE_EVERY_S = 0.05       # the writer's pace: 20 commits a second
JIAOFEI = ("CREATE TABLE jiaofei (seq bigint PRIMARY KEY, amount numeric(12, 2) NOT NULL, "
           "paid_at timestamptz NOT NULL DEFAULT clock_timestamp());\n")
PROMOTE = "SELECT pg_promote(true, 60);\n"   # waits (up to 60 s) until the standby accepts writes
LAST_SEQ = "SELECT COALESCE(max(seq), 0) || ' ' || count(*) FROM jiaofei;\n"
RECEIVER = "SELECT COALESCE((SELECT status FROM pg_stat_wal_receiver), 'stopped');\n"  # a standby's link to its primary
CLUSTER_UNIT = "pg_lsclusters -h | awk '$2 == \"main\" {print \"postgresql@\" $1 \"-main\"}'"


def _cluster_unit(run) -> str:
    """The systemd unit of the node's main PostgreSQL cluster (postgresql@15-main): the one a kill fences."""
    return run(_root("sh", "-c", CLUSTER_UNIT)).strip()


def psql_argv(db: str) -> list[str]:
    """The writer's client: psql as the engine's administrator on the node's socket, one statement per line
    on stdin, each result on stdout, stopping at the first error (a broken connection ends it)."""
    return ["runuser", "-u", POSTGRESQL.admin, "--", "psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", db]


class Writer(threading.Thread):
    """The business workload: numbered 缴费 (contribution) records, one commit each, acknowledged before the
    next is sent. An acknowledged number is committed (on a synchronous pair: flushed at the standby too)."""

    def __init__(self, argv: list[str], first: int, limit: int | None = None):
        super().__init__(daemon=True)
        self.argv, self.next, self.limit = argv, first, limit
        self.acked: int | None = None       # the last acknowledged number
        self.first_ack: float | None = None  # when the first commit was acknowledged
        self.acked_at: dict[int, float] = {}  # number → when it was acknowledged
        self.count, self.error = 0, ""
        self.stopping = threading.Event()

    def run(self) -> None:
        p = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, bufsize=1)
        try:
            while not self.stopping.is_set() and (self.limit is None or self.count < self.limit):
                n = self.next
                p.stdin.write(f"INSERT INTO jiaofei (seq, amount) VALUES ({n}, {100 + n % 900}.50) RETURNING seq;\n")
                p.stdin.flush()
                if (got := p.stdout.readline().strip()) != str(n):
                    self.error = f"commit {n} not acknowledged ({got or 'connection closed'})"
                    break
                self.acked, self.next, self.count = n, n + 1, self.count + 1
                self.acked_at[n] = time.time()
                self.first_ack = self.first_ack or self.acked_at[n]
                self.stopping.wait(WRITE_EVERY_S)
        except OSError as e:  # the client is gone (its pipe broke)
            self.error = f"commit {self.next} not acknowledged ({e})"
        finally:
            for f in (p.stdin, p.stdout):
                try:
                    f.close()
                except OSError:
                    pass
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            if self.error and (err := p.stderr.read().strip()):
                self.error += f": {err.splitlines()[-1][-200:]}"
            p.stderr.close()

    def stop(self) -> None:
        self.stopping.set()
        self.join(30)


def _root(*argv: str) -> Command:
    return Command(as_user("root", *argv))


def _pair(inv: Inventory, sc: dict):
    from .replication import pairs

    return next(p for p in pairs(inv, sc["standby"]) if p.primary == sc["source"])  # load_scenario checked it


def _flipped(pair):
    """The same two servers with the roles swapped (the DR standby promoted; the old primary its standby), without the
    service address: the drill moves it itself (:func:`_move_service`), when the standby is promoted."""
    from .replication import Pair

    return Pair(pair.standby, pair.primary, pair.sync, pair.standby_address, pair.primary_address)


def _reach_times(actions: LabActions, sources: dict[str, str], address: str, t0: float, timeout: float, pool):
    """County → a future of the seconds from ``t0`` until its source first reaches ``address`` (None: not within
    ``timeout``), each county probed on its own every 0.2 s."""
    def one(src: str) -> float | None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if actions.ping(src, address, count=1):
                return round(time.time() - t0, 3)
            time.sleep(0.2)
        return None

    return {c: pool.submit(one, s) for c, s in sources.items()}


def _move_service(access: Access, shell, pair, holder: str, on: bool) -> list[str]:
    """``holder`` (the pair's standby, promoted) takes the service address and its site router announces it (``on``),
    or the announcement is withdrawn and it gives the address up; what changed, per node."""
    from .replication import announce, service_address, service_route

    inv = access.inv
    router, via = service_route(inv, pair, holder)

    def address() -> list[str]:
        out = runner(shell, holder, 120)(service_address(inv, pair, holder, on))
        return [f"{holder}: {ln.strip()}" for ln in out.splitlines() if ln.strip()]

    def route() -> list[str]:  # through the access layer's session: the router's own CLI
        return [f"{router}: {ln}" for ln in announce(access.session(router), pair.service_address, via, on)]

    return address() + route() if on else route() + address()


def restore_pair(access: Access, shell, pair, password: str) -> list[str]:
    """The pair back in its inventory roles whatever a drill left: the primary unmasked and running (promoted if it
    was left a standby), the standby re-cloned from it where it does not stream from it, the service address back on
    the primary and no longer announced at the standby's site; the scratch database gone."""
    from .replication import build_pair

    inv = access.inv
    on_primary = runner(shell, pair.primary, 300)
    unit = _cluster_unit(on_primary)
    on_primary(_root("systemctl", "unmask", "--runtime", unit))
    on_primary(_root("systemctl", "start", unit))
    done = []
    if POSTGRESQL.is_standby(on_primary):
        on_primary(POSTGRESQL.sql(PROMOTE))
        done.append(f"{pair.primary} promoted")
    done += build_pair(shell, inv, pair, password, force=True)["changed"]
    done += _rearchive(shell, inv, pair, password)
    if pair.service_address:
        done += _move_service(access, shell, pair, pair.standby, False)
    on_primary(POSTGRESQL.sql("SET synchronous_commit = local;\n" + POSTGRESQL.drop_sql.format(db=POSTGRESQL.ident(DRILL_DB))))
    return done


def _rearchive(shell, inv: Inventory, pair, password: str) -> list[str]:
    """The primary's WAL archive, where the policy keeps one: a primary re-cloned or promoted has no slot for its
    receiver, so the archive starts again (point-in-time recovery from the next base backup)."""
    from . import pitr

    return pitr.build(shell, inv, pair.primary, password) if (pair.primary, pair.service) in pitr.archived(inv) else []


def _counties(inv: Inventory, scope: str) -> dict[str, str]:
    """County in scope → the node that stands for it (its server, else its router)."""
    return {c: inv.reach_source(c) for c in sorted(inv.descendants(scope)) if inv.sites[c].level == Level.county}


def _database_failover(access: Access, sc, shell, actions: LabActions, j: Journal, undo: list, progress) -> dict:
    from concurrent.futures import ThreadPoolExecutor

    from .replication import build_pair, primary_view, read_primary_view, role_password, service_address, service_route

    inv = access.inv
    pair = _pair(inv, sc)
    if pair.service_address:
        service_route(inv, pair, pair.standby)  # a router the address cannot be announced on: refused before any step
    secret = role_password(access, inv, pair.primary)
    on_primary, on_standby = runner(shell, pair.primary, 300), runner(shell, pair.standby, 300)
    view = read_primary_view(on_primary(POSTGRESQL.sql(primary_view(pair.slot, pair.standby))))
    ok = view["state"] == "streaming" and (view["sync_state"] == "sync" or not pair.sync)
    j.step("steady", f"{pair.standby} streams from {pair.primary} ({view['sync_state'] or '-'}) 备库流复制正常", ok=ok, **view)
    if not ok:
        raise DrillFailed(f"steady state not met: {pair.standby} is {view['state']} ({view['sync_state'] or '-'}) as "
                          f"{pair.primary} sees it; run `netops dr setup`")
    counties = _counties(inv, sc["scope"]) if pair.service_address else {}
    if counties:
        seen = {c: actions.ping(src, pair.service_address) for c, src in counties.items()}
        j.step("steady", f"every county reaches the service address {pair.service_address} 全部区县可达业务地址",
               ok=all(seen.values()), reach=seen)
        if not all(seen.values()):
            raise DrillFailed(f"steady state not met: {[c for c, v in seen.items() if not v]} do not reach "
                              f"{pair.service_address} (`netops dr setup` places it on {pair.primary})")
    progress(1, "steady state")
    undo.append((f"{pair.primary} primary and {pair.standby} its streaming standby, {DRILL_DB} dropped 主备角色复原",
                 lambda: restore_pair(access, shell, pair, secret)))
    on_primary(POSTGRESQL.drop(DRILL_DB))
    on_primary(POSTGRESQL.create(DRILL_DB))
    on_primary(POSTGRESQL.sql(JIAOFEI, DRILL_DB))
    writer = Writer(actions.command(pair.primary, psql_argv(DRILL_DB)), 1)
    writer.start()
    undo.append(("the writer stopped 停止业务写入", writer.stop))  # a no-op once the fault has ended it
    if not _wait(lambda: writer.count >= 20 or not writer.is_alive(), 30, 0.1) or writer.count < 20:
        writer.stop()
        raise DrillFailed(f"the writer cannot commit on {pair.primary}: {writer.error or 'too slow'}")
    j.step("steady", f"the writer commits numbered 缴费 records on {pair.primary} 业务持续写入", committed=writer.acked)

    with ThreadPoolExecutor(max(1, len(counties))) as pool:
        links = _inject(sc, actions, j, undo)
        t_fault = j.marks["fault"]
        if pair.service_address:  # the dead primary's address goes with it (fenced: it answers no one)
            actions.run(pair.primary, *service_address(inv, pair, pair.primary, False).argv)
        reach = _reach_times(actions, counties, pair.service_address, t_fault, 60, pool) if counties else {}
        progress(1, "fault")
        writer.join(30)
        if writer.is_alive():
            writer.stop()
            raise DrillFailed(f"{pair.primary} still commits after the fault")
        acked = writer.acked or 0
        j.step("detect", f"{pair.primary} lost: the writer's last acknowledged commit is {acked} 主库失效",
               last_acknowledged=acked, writer=writer.error)
        # the standby's own view confirms it before anything is promoted (a client's broken connection alone could be
        # the client's network): its WAL receiver no longer streams (a silent primary: wal_receiver_timeout)
        confirmed = _wait(lambda: on_standby(POSTGRESQL.sql(RECEIVER)).strip() != "streaming", 30, 0.2)
        j.step("detect", f"{pair.standby} no longer receives from {pair.primary} {time.time() - t_fault:.1f} s after the "
               "fault 备库确认主库失联", ok=confirmed, detected_after_seconds=round(time.time() - t_fault, 3))
        if not confirmed:
            raise DrillFailed(f"{pair.standby} still streams from {pair.primary} 30 s after the fault: not promoted")
        progress(1, "detect")

        promoted = on_standby(POSTGRESQL.sql(PROMOTE)).strip() == "t"
        j.step("recover", f"{pair.standby} promoted 备库提升为主库", ok=promoted)
        if not promoted:
            raise DrillFailed(f"{pair.standby} was not promoted within 60 s")
        if pair.service_address:
            moved = _move_service(access, shell, pair, pair.standby, True)
            j.step("recover", f"the service address {pair.service_address} moved to {pair.standby} 业务地址切换至灾备端",
                   changed=moved)
        last, rows = map(int, on_standby(POSTGRESQL.sql(LAST_SEQ, DRILL_DB)).split())
        lost = max(0, acked - last)
        # RPO in time: from the last commit the standby has to the last one the primary acknowledged
        rpo_s = 0.0 if not lost else round(writer.acked_at[acked] - writer.acked_at.get(last, writer.first_ack or 0), 3)
        j.step("verify", f"{last} records at {pair.standby}, {lost} acknowledged commits lost 已确认提交丢失 {lost} 笔",
               ok=rows == last, last_acknowledged=acked, last_present=last, rows=rows, lost=lost, rpo_seconds=rpo_s)
        dr_writer = Writer(actions.command(pair.standby, psql_argv(DRILL_DB)), last + 1, limit=20)
        dr_writer.start()
        dr_writer.join(60)
        if dr_writer.first_ack is None:
            dr_writer.stop()
            raise DrillFailed(f"no write commits at {pair.standby} after its promotion: {dr_writer.error}")
        rto = dr_writer.first_ack - t_fault
        j.step("recover", f"the first write committed at {pair.standby} {rto:.1f} s after the fault 灾备端恢复写入",
               ok=dr_writer.count == 20, committed=dr_writer.acked)
        per_county = {c: f.result() for c, f in reach.items()}
    network = {}
    if counties:
        times = sorted(t for t in per_county.values() if t is not None)
        late = sorted(c for c, t in per_county.items() if t is None)
        network = {"rto_network_seconds": times[-1] if not late else None, "late": late,
                   "rto_network_median_seconds": times[len(times) // 2] if times else None, "per_county": per_county}
        j.step("verify", f"every county reaches {pair.service_address} at {pair.standby}, the last {times[-1]:.1f} s after "
               "the fault 全部区县已切换至灾备端" if not late else f"{late} do not reach {pair.service_address} 区县未切换",
               ok=not late, per_county=per_county)
    progress(1, "recover")

    # failback: the data centre comes back, the old primary becomes the new primary's standby, then a planned
    # switchover with nothing lost
    t_back = time.time()
    if links:
        for what, fn in links:
            fn()
        back = _wait(lambda: all(reaching(inv, sc["scope"], actions).values()), 90, 1)
        j.step("failback", "the data centre's links are back, every county reaches the ministry 省中心恢复", ok=back)
    unit = _cluster_unit(on_primary)
    on_primary(_root("systemctl", "unmask", "--runtime", unit))
    flip = build_pair(shell, inv, _flipped(pair), secret, force=True)
    j.step("failback", f"{pair.primary} re-cloned as a standby of {pair.standby} 原主库重建为备库", changed=flip["changed"])
    want = POSTGRESQL.fingerprint(on_standby, DRILL_DB)
    on_standby(_root("systemctl", "stop", _cluster_unit(on_standby)))
    caught = _wait(lambda: POSTGRESQL.fingerprint(on_primary, DRILL_DB) == want, 60, 1)
    j.step("failback", f"{pair.standby} stopped cleanly; {pair.primary} holds every record 计划切换零丢失", ok=caught,
           fingerprint=want)
    if not caught:
        raise DrillFailed(f"{pair.primary} does not hold {pair.standby}'s records after its clean stop")
    on_primary(POSTGRESQL.sql(PROMOTE))
    rebuilt = build_pair(shell, inv, pair, secret, force=True)["changed"]
    rebuilt += _rearchive(shell, inv, pair, secret)
    if pair.service_address:
        rebuilt += _move_service(access, shell, pair, pair.standby, False)
    got = {"primary": POSTGRESQL.fingerprint(on_primary, DRILL_DB), "standby": POSTGRESQL.fingerprint(on_standby, DRILL_DB)}
    equal = got["primary"] == got["standby"] == want
    home = all(actions.ping(src, pair.service_address) for src in counties.values()) if counties else True
    failback = time.time() - t_back
    j.step("failback", (f"original roles restored in {failback:.1f} s, checksums equal 角色复原，校验一致" if equal else
                        "original roles restored, checksums differ 角色复原，校验不一致")
           + ("" if not counties else f"; the counties reach {pair.service_address} at {pair.primary}" if home else
              f"; counties do not reach {pair.service_address} 区县不可达业务地址"), ok=equal and home, changed=rebuilt, **got)
    progress(1, "failback")
    return {"ok": equal and rows == last and home and not network.get("late"),
            "rto_seconds": round(rto, 3), "rpo_seconds": rpo_s, "rpo_transactions": lost, **network,
            "failback_seconds": round(failback, 3), "committed": {"primary": acked, "standby": dr_writer.acked},
            "dr_level": dr_level(pair, rto, network.get("rto_network_seconds"), rpo_s)}


# GB/T 20988-2007 附录A, the six disaster-recovery capability levels as this drill judges them: the RTO and RPO the
# standard's table gives each level (upper bounds; "数分钟" read as 10 minutes), and what must be deployed. GB/T
# 20988-2025 replaces it from 2026-01-01; its table should be checked against these criteria.
DR_LEVELS = (
    (1, "基本支持 Basic support", 7 * 86400, None, "full backups at least weekly, media off-site"),
    (2, "备用场地支持 Backup site support", 7 * 86400, None, "+ a backup site where equipment can be deployed"),
    (3, "电子传输和部分设备支持 Electronic transfer, partial equipment", 86400, None,
     "+ critical data transferred electronically several times a day, part of the equipment at the DR site"),
    (4, "电子传输及完整设备支持 Electronic transfer, complete equipment", 86400, 2 * 86400,
     "+ all the equipment recovery needs, ready at the DR site"),
    (5, "实时数据传输及完整设备支持 Real-time transfer, complete equipment", 1800, 2 * 86400,
     "+ real-time replication to the DR site, the network switched over centrally"),
    (6, "数据零丢失和远程集群支持 Zero data loss, remote cluster", 0, 600,
     "+ synchronous replication, applications in a remote cluster that fails over by itself"),
)


def dr_level(pair, rto: float | None, rto_network: float | None, rpo: float | None) -> dict:
    """The highest GB/T 20988 level a failover drill's measures and the pair's deployment support: a level is met when
    the levels below it are, the measured RPO (seconds) and RTO (the later of service and network) are within its
    bounds, and its deployment is there. The suite fails over by orchestration (this drill), never by itself, so
    level 6's remote cluster is never claimed."""
    worst = None if rto is None or (pair.service_address and rto_network is None) else max(rto, rto_network or 0)
    lacks = {5: None if pair.service_address else "no service address in the inventory: clients cannot be switched "
                                                  "to the DR site",
             6: "no automatic failover: the suite promotes by orchestration (a drill), not a remote cluster"}
    rows, level = [], 0
    for n, name, max_rpo, max_rto, needs in DR_LEVELS:
        problems = []
        if rpo is None or rpo > max_rpo:
            problems.append(f"RPO {'-' if rpo is None else f'{rpo:g}'} s over {max_rpo} s")
        if max_rto is not None and (worst is None or worst > max_rto):
            problems.append(f"RTO {'-' if worst is None else f'{worst:g}'} s over {max_rto} s")
        if lacks.get(n):
            problems.append(lacks[n])
        met = not problems and level == n - 1
        level = n if met else level
        rows.append({"level": n, "name": name, "max_rpo_seconds": max_rpo, "max_rto_seconds": max_rto, "needs": needs,
                     "met": met, "why_not": "; ".join(problems)})
    return {"level": level, "name": next((r["name"] for r in rows if r["level"] == level), "—"), "criteria": rows,
            "standard": "GB/T 20988-2007 附录A (GB/T 20988-2025 from 2026-01-01)"}


def finish(sc: dict, j: Journal, verdict: dict) -> dict:
    targets = sc["targets"]
    rto, rpo, lost = verdict.get("rto_seconds"), verdict.get("rpo_seconds"), verdict.get("rpo_transactions")

    def met(value, target: str) -> bool:  # a target not set is met; one set needs a measured value within it
        return target not in targets or (value is not None and value <= targets[target])

    within = {"rto": met(rto, "rto_seconds"), "rpo": met(rpo, "rpo_seconds") and met(lost, "rpo_transactions"),
              "rto_network": met(verdict.get("rto_network_seconds"), "rto_network_seconds")}
    cleanup_ok = all(s["ok"] for s in j.steps if s["phase"] == "cleanup")
    steps_ok = all(s["ok"] for s in j.steps)
    passed = bool(verdict.get("ok")) and steps_ok and cleanup_ok and all(within.values())
    outcome = "passed" if passed else "aborted" if "aborted_at" in verdict else "failed"
    stamp = datetime.fromtimestamp(j.t0, timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    folder = state_dir() / "drills" / f"{sc['id']}-{stamp}"
    journal = {"scenario": {k: v for k, v in sc.items() if not k.startswith("_")}, "file": sc["_path"],
               "started": datetime.fromtimestamp(j.t0, timezone.utc).isoformat(timespec="seconds"),
               "steps": j.steps, "rto_seconds": rto, "rpo_seconds": rpo, "targets": targets, "within_targets": within,
               "cleanup_ok": cleanup_ok, "passed": passed, "verdict": outcome,
               **{k: v for k, v in verdict.items() if k not in ("ok", "rto_seconds", "rpo_seconds")}}
    folder.mkdir(parents=True, exist_ok=True)
    write_atomic(folder / "journal.json", json.dumps(journal, ensure_ascii=False, indent=1, default=str), 0o640)
    write_atomic(folder / "report.html", render_html(journal), 0o640)
    journal["journal"], journal["report"] = str(folder / "journal.json"), str(folder / "report.html")
    return journal


def render_html(jn: dict) -> str:
    e = escape.html
    sc = jn["scenario"]
    verdict = {"passed": "通过 PASSED", "failed": "未通过 FAILED",
               "aborted": f"中止 ABORTED at: {jn.get('aborted_at')}"}[jn["verdict"]]

    def sec(v):
        return "—" if v is None else f"{v:.1f} s"

    rows = "".join(
        f"<tr class={'ok' if s['ok'] else 'bad'}><td>{e(s['t'][11:23])}</td><td>+{s['offset_s']:.1f} s</td>"
        f"<td>{e(s['phase'])}</td><td>{'✓' if s['ok'] else '✗'} {e(s['step'])}</td>"
        f"<td><details><summary>evidence 证据</summary><pre>{e(json.dumps(s['evidence'], ensure_ascii=False, indent=1, default=str))}</pre></details></td></tr>"
        for s in jn["steps"])
    tg = jn["targets"]
    within = jn["within_targets"]

    def row(label: str, measured: str, target: str = "—", ok: bool | None = None) -> str:
        mark = "" if ok is None else "✓" if ok else "✗"
        return f"<tr><td>{e(label)}</td><td>{e(measured)}</td><td>{e(target)}</td><td>{mark}</td></tr>"

    extra = ""
    if "rpo_transactions" in jn or "rpo_transactions" in tg:
        extra += row("RPO 丢失已确认提交 (acknowledged commits missing after promotion)",
                     str(jn.get("rpo_transactions", "—")), str(tg.get("rpo_transactions", "—")), within["rpo"])
    if "per_county" in jn or "rto_network_seconds" in tg:
        extra += row("RTO-network 网络切换 (fault → the last county reaches the service address; median)",
                     f"{sec(jn.get('rto_network_seconds'))} (median {sec(jn.get('rto_network_median_seconds'))})",
                     sec(tg.get("rto_network_seconds")), within.get("rto_network", True))
        extra += "".join(row(f"  {county}", sec(t)) for county, t in sorted((jn.get("per_county") or {}).items()))
    if jn.get("failback_seconds") is not None:
        extra += row("回切 Failback (roles restored, checksums equal)", sec(jn["failback_seconds"]))
    level = ""
    if lv := jn.get("dr_level"):
        level = (f"<h2>灾难恢复能力等级 Disaster-recovery capability level: {lv['level']} — {e(lv['name'])}</h2>"
                 f"<p>{e(lv['standard'])}</p><table><tr><th>等级 Level</th><th>RPO ≤</th><th>RTO ≤</th><th>部署 Needs</th>"
                 "<th>达到 Met</th></tr>" + "".join(
                     f"<tr><td>{c['level']} {e(c['name'])}</td><td>{c['max_rpo_seconds']} s</td>"
                     f"<td>{'—' if c['max_rto_seconds'] is None else str(c['max_rto_seconds']) + ' s'}</td>"
                     f"<td>{e(c['needs'])}</td><td>{'✓' if c['met'] else '✗ ' + e(c['why_not'])}</td></tr>"
                     for c in lv["criteria"]) + "</table>")
    return f"""<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<title>灾备演练报告 DR drill report — {e(sc['id'])}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:70em}} table{{border-collapse:collapse;width:100%}}
td,th{{border:1px solid #ccc;padding:.3em .5em;text-align:left;vertical-align:top}} .ok td:nth-child(4){{color:#185}}
.bad td:nth-child(4){{color:#b22}} .verdict{{font-size:1.4em;font-weight:bold;color:{'#185' if jn['passed'] else '#b22'}}}
pre{{white-space:pre-wrap;font-size:.85em}}</style></head><body>
<h1>灾备演练报告 Disaster-recovery drill report</h1>
<p><b>{e(sc['name'])}</b> ({e(sc['id'])}) — 范围 scope: {e(sc['scope'])} — 开始 started: {e(jn['started'])}</p>
<p class="verdict">结论 Verdict: {verdict}</p>
<table><tr><th>指标 Measure</th><th>实测 Measured</th><th>目标 Target</th><th>达标 Within</th></tr>
<tr><td>RTO 恢复时间 (fault → service verified)</td><td>{sec(jn['rto_seconds'])}</td><td>{sec(tg.get('rto_seconds'))}</td><td>{'✓' if jn['within_targets']['rto'] else '✗'}</td></tr>
<tr><td>RPO 数据丢失窗口 (fault − newest restorable data)</td><td>{sec(jn['rpo_seconds'])}</td><td>{sec(tg.get('rpo_seconds'))}</td><td>{'✓' if jn['within_targets']['rpo'] else '✗'}</td></tr>{extra}
<tr><td>清理 Cleanup</td><td colspan=3>{'✓ 已恢复 restored' if jn['cleanup_ok'] else '✗ 未完全恢复 incomplete — see timeline'}</td></tr></table>
{level}
<h2>时间线 Timeline</h2>
<table><tr><th>UTC</th><th>offset</th><th>phase 阶段</th><th>step 步骤</th><th></th></tr>{rows}</table>
</body></html>
"""
