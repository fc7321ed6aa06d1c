"""The live monitoring stack in the lab twin: `netops monitor up | down | status`.

On every monitor host (a province's: its Prometheus and Alertmanager; the ministry's: the federating
Prometheus and its Alertmanager) ``up`` installs the generated configuration under
``/etc/netops-monitor``, checks it there with promtool/amtool, points the Debian packages' units at
it with a systemd drop-in and (re)starts them, and waits for ``/-/ready`` and a first scrape of every
target. Each monitor host's collector (`netops collect serve`: a province's, or the ministry's for
its own sites) and trap receiver (`netops collect traps`, posting to that host's Alertmanager) run on
this host inside that monitor node's network namespace, so they listen on the node's management
address as if they ran there; the ops host's backup catalogue metrics are served
where the province configurations scrape them (``monitoring.textfile``). Their pids are kept beside
the lab's state directory (``<state root>/.monitor-<lab>``, so `monitor down` still finds them after
a `lab down`) and only those pids are ever signalled. ``down`` stops and disables the units, removes
every file ``up`` installed, ends those processes and checks that nothing is left.

``endpoints`` is the stable API other parts of the suite (the health map) use to find the servers.
"""
from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

from jinbao_netops import procs
from jinbao_netops.errors import NetopsError, UsageError
from jinbao_netops.files import write_atomic
from jinbao_netops.inventory.model import Role
from jinbao_netops.inventory.store import Inventory
from jinbao_netops.lab.runtime import Lab, LabError, state_root

from . import generate as gen

ETC, VAR = "/etc/netops-monitor", "/var/lib/netops-monitor"
UNITS = {"prometheus": "prometheus", "alertmanager": "prometheus-alertmanager"}
DROPIN = "/etc/systemd/system/{unit}.service.d/netops-monitor.conf"
READY_TIMEOUT = 120.0


class MonitorError(NetopsError):
    """The stack could not be brought to the asked state (exit status 4)."""


@dataclass(frozen=True)
class Server:
    """One monitor host's Prometheus + Alertmanager: a province's, or the ministry's (key "ministry")."""
    key: str
    site: str
    node: str
    address: str

    @property
    def prefix(self) -> str:  # where generate.files keeps this server's Prometheus files
        return "ministry/" if self.key == gen.MINISTRY else f"province/{self.key}/"

    def url(self, component: str) -> str:
        port = gen.PROMETHEUS_PORT if component == "prometheus" else gen.ALERTMANAGER_PORT
        return f"http://{self.address}:{port}"


def server(inv: Inventory, key: str) -> Server:
    """The monitor server of ``key`` (a province id, or MINISTRY); a one-line error if its site has no monitor host."""
    site = inv.ministry.id if key == gen.MINISTRY else key
    mon = inv.first(site, Role.monitor)
    return Server(key, site, mon.id, str(mon.management))


def servers(inv: Inventory) -> list[Server]:
    return [server(inv, key) for key in [*gen.provinces(inv), gen.MINISTRY]]


def endpoints(inv: Inventory) -> dict[str, dict[str, str]]:
    """{province id: {"prometheus": url, "alertmanager": url, "monitor": device}, …, "ministry": {…}}:
    where `netops monitor up` runs each server (the monitor host's management address)."""
    return {s.key: {"prometheus": s.url("prometheus"), "alertmanager": s.url("alertmanager"), "monitor": s.node}
            for s in servers(inv)}


# --- what goes onto a monitor host -----------------------------------------------------------------
def bundle(server: Server, files: dict[str, str]) -> dict[str, str]:
    """Path under ETC → text: the server's Prometheus files, the Alertmanager config, the units' drop-ins."""
    out = {f"prometheus/{rel[len(server.prefix):]}": text for rel, text in files.items() if rel.startswith(server.prefix)}
    out["alertmanager/alertmanager.yml"] = files["alertmanager/alertmanager.yml"]
    args = {
        "prometheus": [f"--config.file={ETC}/prometheus/prometheus.yml", f"--storage.tsdb.path={VAR}/prometheus",
                       f"--web.listen-address=0.0.0.0:{gen.PROMETHEUS_PORT}", f"--web.external-url={server.url('prometheus')}"],
        # a single Alertmanager per host: no cluster gossip port
        "alertmanager": [f"--config.file={ETC}/alertmanager/alertmanager.yml", f"--storage.path={VAR}/alertmanager",
                         f"--web.listen-address=0.0.0.0:{gen.ALERTMANAGER_PORT}", f"--web.external-url={server.url('alertmanager')}",
                         "--cluster.listen-address="],
    }
    for comp, unit in UNITS.items():
        out[f"systemd/{unit}.conf"] = f"[Service]\nExecStart=\nExecStart=/usr/bin/{unit} {' '.join(args[comp])}\n"
    out["digest"] = hashlib.sha256(json.dumps(out, sort_keys=True).encode()).hexdigest()[:16] + "\n"
    return out


def _tar_b64(files: dict[str, str]) -> str:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for rel, text in sorted(files.items()):
            data = text.encode()
            info = tarfile.TarInfo(rel)
            info.size, info.mode, info.mtime = len(data), 0o644, int(time.time())
            tar.addfile(info, io.BytesIO(data))
    return base64.b64encode(buf.getvalue()).decode()


_UNITS = " ".join(UNITS.values())
_DROPINS = " ".join(DROPIN.format(unit=u) for u in UNITS.values())
# Unpack beside the live directory, check there, then swap: a bad bundle never replaces a good one.
INSTALL = f"""set -e
new={ETC}.new
rm -rf "$new"; mkdir -p "$new"; base64 -d | tar -xz -C "$new"
(cd "$new/prometheus" && promtool check config prometheus.yml) >&2 || {{ echo "promtool check config failed" >&2; exit 3; }}
amtool check-config "$new/alertmanager/alertmanager.yml" >&2 || {{ echo "amtool check-config failed" >&2; exit 3; }}
rm -rf {ETC}; mv "$new" {ETC}
install -d -o prometheus -g prometheus {VAR} {VAR}/prometheus {VAR}/alertmanager
for u in {_UNITS}; do install -D -m 0644 {ETC}/systemd/$u.conf /etc/systemd/system/$u.service.d/netops-monitor.conf; done
systemctl daemon-reload
systemctl enable -q {_UNITS}
systemctl restart {_UNITS}
"""
REMOVE = f"""systemctl disable -q --now {_UNITS} 2>/dev/null
rm -rf {ETC} {ETC}.new {VAR} {_DROPINS}
for u in {_UNITS}; do rmdir /etc/systemd/system/$u.service.d 2>/dev/null; done
systemctl daemon-reload; systemctl reset-failed {_UNITS} 2>/dev/null; true
"""
# anything of ours still on the node, one line each (empty when clean)
LEFTOVERS = f"""for p in {ETC} {ETC}.new {VAR} {_DROPINS}; do [ -e "$p" ] && echo "file $p"; done
for u in {_UNITS}; do systemctl -q is-active $u && echo "active $u"; systemctl -q is-enabled $u 2>/dev/null && echo "enabled $u"; done
true
"""


# --- host processes: the collectors (inside a monitor node's network namespace), the textfile server
@dataclass(frozen=True)
class Process:
    name: str               # "collect-<province>", "traps-<province>", "collect-ministry", "traps-ministry" or "textfile"
    cmd: list[str]
    listen: str             # ADDR:PORT it serves /metrics on
    netns: str | None       # the lab node's network namespace it runs in (None: the host's)
    node: str | None = None  # that lab node


def processes(inv: Inventory, lab: Lab, interval: float) -> list[Process]:
    out = []
    for s in servers(inv):
        scope, stop_at = gen.collector_scope(inv, s.key)
        verb = [sys.executable, "-m", "jinbao_netops.cli", "collect"]
        where = ["-i", str(inv.root), "--scope", scope, *(["--stop-at", stop_at.value] if stop_at else [])]
        listen, metrics = f"{s.address}:{gen.COLLECTOR_PORT}", f"{s.address}:{gen.TRAP_METRICS_PORT}"
        out += [Process(f"collect-{s.key}", [*verb, "serve", *where, "--listen", listen, "--interval", f"{interval:g}"],
                        listen, lab.node(s.node).ns, s.node),
                # the province's trap receiver, posting to the Alertmanager on the same host
                Process(f"traps-{s.key}", [*verb, "traps", *where, "--listen", f"{s.address}:{gen.TRAP_PORT}",
                                           "--metrics", metrics, "--alertmanager", s.url("alertmanager")],
                        metrics, lab.node(s.node).ns, s.node)]
    ops = inv.network.address_plan.ops_host if inv.network else None
    if ops is not None:  # the backup catalogue, where the province configs scrape it (generate: netops-backup)
        from jinbao_netops.backup.remote import state_dir

        listen = f"{ops}:{gen.NODE_EXPORTER_PORT}"
        out.append(Process("textfile", [sys.executable, "-m", "jinbao_netops.monitoring.textfile", "--listen", listen,
                                        "--dir", str(state_dir() / "metrics")], listen, None))
    return out


def _alive(pid: int | None, cmd: list[str]) -> bool:
    """True if pid runs exactly ``cmd`` (what this stack started; guards against pid reuse)."""
    return procs.ours(pid, lambda c: c == cmd)


def _in_netns(pid: int, netns: str | None) -> bool:
    """True if pid runs in the lab node's network namespace as it is now (not one a rebuilt lab replaced);
    a host process (``netns`` None) stays where it was started."""
    if netns is None:
        return True
    try:
        return os.stat(f"/proc/{pid}/ns/net").st_ino == os.stat(f"/run/netns/{netns}").st_ino
    except OSError:
        return False


def _end(pid: int, cmd: list[str]) -> None:
    procs.end([pid], lambda c: c == cmd)


# --- HTTP ----------------------------------------------------------------------------------------
def http_json(url: str, timeout: float = 5.0):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read())


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def _scraped(targets_url: str) -> bool:
    """Every target known and scraped once (up or down, no longer "unknown"): what `up` hands over is
    already data, not a map of grey sites waiting for their first scrape."""
    try:
        targets = http_json(targets_url)["data"]["activeTargets"]
    except (OSError, ValueError, KeyError):
        return False
    return bool(targets) and all(t.get("health") != "unknown" for t in targets)


# --- the stack -----------------------------------------------------------------------------------
class Stack:
    def __init__(self, inv: Inventory, lab: Lab):
        self.inv, self.lab = inv, lab
        # beside the lab's own directory, not in it: `lab down` removes that, and the processes
        # recorded here must still be found and ended by `monitor down` afterwards
        self.dir = state_root() / f".monitor-{lab.name}"
        self.state_file = self.dir / "state.json"
        self.servers = servers(inv)

    def _require_lab(self) -> None:
        self.lab.require_up()
        missing = [s.node for s in self.servers if s.node not in self.lab.nodes()]
        if missing:
            raise UsageError(f"monitor: lab {self.lab.name!r} has no node {', '.join(missing)} "
                             f"(it was built from another inventory: {self.lab.state().get('inventory')})")

    def state(self) -> dict:
        try:
            return json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return {}

    def _save(self, st: dict) -> None:
        write_atomic(self.state_file, json.dumps(st, indent=1), 0o600)

    def _node(self, server: Server, script: str, input: str | None = None, timeout: float = 120):
        try:
            return self.lab.node(server.node).exec(["sh", "-c", script], input=input, timeout=timeout)
        except LabError as e:
            raise MonitorError(f"{server.node}: {e}") from None

    # up ------------------------------------------------------------------------------------------
    def up(self, timing: gen.Timing, collect_interval: float, advance=lambda n=1, label=None: None) -> dict:
        self._require_lab()
        if collect_interval <= 0:
            raise UsageError(f"monitor up: --collect-interval {collect_interval:g}: must be positive")
        files = gen.files(self.inv, timing=timing.check())
        st = self.state()
        changed: list[str] = []

        def install(server: Server) -> None:
            b = bundle(server, files)
            have = self._node(server, f"cat {ETC}/digest 2>/dev/null; systemctl is-active {_UNITS}").stdout.split()
            if have == [b["digest"].strip(), "active", "active"]:
                return advance(label=server.node)
            r = self._node(server, INSTALL, input=_tar_b64(b))
            if r.returncode != 0:
                raise MonitorError(f"{server.node}: installing the configuration failed: "
                                   f"{' '.join((r.stderr or r.stdout).strip().splitlines()[-3:])}")
            changed.append(f"{server.node}: prometheus, alertmanager")
            advance(label=server.node)

        procs = processes(self.inv, self.lab, collect_interval)
        running = st.get("processes", {})
        for name in [n for n in running if n not in {p.name for p in procs}]:  # no longer wanted
            _end(running[name]["pid"], running.pop(name)["cmd"])
        self.dir.mkdir(parents=True, exist_ok=True)
        env, started = None, {}
        for proc in procs:
            rec = running.get(proc.name, {})
            if rec.get("cmd") == proc.cmd and _alive(rec.get("pid"), proc.cmd) and _in_netns(rec["pid"], proc.netns):
                advance(label=proc.name)
                continue
            if rec.get("pid"):
                _end(rec["pid"], rec["cmd"])
            env = env or self._collector_env()
            log = self.dir / f"{proc.name}.log"
            argv = self.lab.node(proc.node).netns_command(proc.cmd) if proc.node else proc.cmd
            with open(log, "ab") as fh:
                p = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=fh, stderr=fh,
                                     start_new_session=True)
            started[proc.name] = p
            running[proc.name] = {"pid": p.pid, "cmd": proc.cmd, "listen": proc.listen, "log": str(log)}
            self._save({"timing": asdict(timing), "collect_interval": collect_interval, "processes": running})
            changed.append(f"{proc.name}: pid {p.pid} on {proc.listen}")
            advance(label=proc.name)
        self._save({"timing": asdict(timing), "collect_interval": collect_interval, "processes": running})
        # the servers after what they scrape, so that no first scrape fails: the provinces' after the
        # collectors, the ministry's after the provinces'
        provinces = [s for s in self.servers if s.key != gen.MINISTRY]
        with ThreadPoolExecutor(max_workers=len(provinces)) as pool:
            list(pool.map(install, provinces))
        self._wait_ready(running, started, provinces)
        install(next(s for s in self.servers if s.key == gen.MINISTRY))
        self._wait_ready(running, started, self.servers)
        return {"lab": self.lab.name, "changed": changed, "endpoints": endpoints(self.inv),
                "timing": asdict(timing), "collect_interval": collect_interval,
                "message": (f"monitoring stack up: {len(self.servers)} × Prometheus + Alertmanager, "
                            f"{len(procs)} host processes" + ("" if changed else "; nothing changed"))}

    def _collector_env(self) -> dict[str, str]:
        """The lab's credentials, after making sure the databases have the monitoring role."""
        from jinbao_netops.collectors.db import prepare_lab

        rep = prepare_lab(self.inv, self.lab)
        if not rep["ok"]:
            raise MonitorError(f"preparing the database monitoring role failed: {'; '.join(rep['problems'])}")
        return {**os.environ, **self.lab.env()}  # the lab's env holds the role's password too

    def _wait_ready(self, running: dict, started: dict[str, subprocess.Popen], servers: list[Server]) -> None:
        urls = [f"{s.url(c)}/-/ready" for s in servers for c in UNITS]
        urls += [f"http://{r['listen']}/metrics" for r in running.values()]
        urls += [f"{s.url('prometheus')}/api/v1/targets" for s in servers]  # its targets scraped once
        deadline = time.monotonic() + READY_TIMEOUT
        while urls := [u for u in urls if not (_scraped(u) if u.endswith("/targets") else _ready(u))]:
            dead = [name for name, p in started.items() if p.poll() is not None]
            if dead:
                raise MonitorError(f"{', '.join(dead)} exited (see {self.dir / dead[0]}.log)")
            if time.monotonic() > deadline:
                raise MonitorError(f"not ready after {READY_TIMEOUT:g} s: {', '.join(urls)}")
            time.sleep(0.5)

    # down ----------------------------------------------------------------------------------------
    def down(self, advance=lambda n=1, label=None: None) -> dict:
        st = self.state()
        ended = []
        for name, r in st.get("processes", {}).items():
            if _alive(r["pid"], r["cmd"]):
                _end(r["pid"], r["cmd"])
                ended.append(f"{name} pid {r['pid']}")
            advance(label=name)
        lab_up = self.lab.is_up
        if lab_up:
            self._require_lab()
            with ThreadPoolExecutor(max_workers=len(self.servers)) as pool:
                list(pool.map(lambda s: (self._node(s, REMOVE), advance(label=s.node)), self.servers))
        left = self.leftovers()
        if left:
            raise MonitorError(f"monitor down left: {'; '.join(left)}")
        if self.dir.exists():
            for p in sorted(self.dir.iterdir()):
                p.unlink()
            self.dir.rmdir()
        return {"lab": self.lab.name, "ended": ended, "lab_up": lab_up,
                "message": "monitoring stack down; nothing left behind" if lab_up else
                           f"lab {self.lab.name!r} is not up; host processes ended: {len(ended)}"}

    def leftovers(self) -> list[str]:
        """Anything of the stack still running or installed (empty after a clean ``down``)."""
        left = [f"{name} pid {r['pid']}" for name, r in self.state().get("processes", {}).items()
                if _alive(r["pid"], r["cmd"])]
        if self.lab.is_up:
            for s in self.servers:
                left += [f"{s.node}: {line}" for line in self._node(s, LEFTOVERS).stdout.splitlines() if line.strip()]
        return left

    # status --------------------------------------------------------------------------------------
    def status(self) -> dict:
        if not self.lab.is_up:
            return {"lab": self.lab.name, "lab_up": False, "up": False, "ok": False, "installed": False, "servers": [],
                    "processes": []}
        self._require_lab()
        st = self.state()
        with ThreadPoolExecutor(max_workers=len(self.servers) + 4) as pool:
            srv = list(pool.map(self._server_status, self.servers))
            procs = list(pool.map(lambda p: _process_status(p, st.get("processes", {}).get(p.name)),
                                  processes(self.inv, self.lab, st.get("collect_interval") or gen.SCRAPE_INTERVAL)))
        up = all(c["ok"] for s in srv for c in (s["prometheus"], s["alertmanager"])) and all(p["ok"] for p in procs)
        # ok: the stack is up and sees nothing wrong (every target scraped, no alert firing)
        ok = up and not any(s["prometheus"].get("targets_down") or s["prometheus"].get("firing") for s in srv)
        return {"lab": self.lab.name, "lab_up": True, "up": up, "ok": ok, "installed": bool(st) or any(
                    c["service"] != "inactive" for s in srv for c in (s["prometheus"], s["alertmanager"])),
                "timing": st.get("timing"), "collect_interval": st.get("collect_interval"), "servers": srv, "processes": procs}

    def _server_status(self, server: Server) -> dict:
        services = self._node(server, f"systemctl is-active {_UNITS}").stdout.split() + ["unknown"] * 2
        out = {"key": server.key, "site": server.site, "node": server.node}
        for comp, service in zip(UNITS, services):
            url = server.url(comp)
            rec = {"url": url, "service": service, "ready": service == "active" and _ready(f"{url}/-/ready")}
            try:
                if rec["ready"] and comp == "prometheus":
                    targets = http_json(f"{url}/api/v1/targets?state=active")["data"]["activeTargets"]
                    rec["targets_up"] = sum(t["health"] == "up" for t in targets)
                    rec["targets_unscraped"] = sum(t["health"] == "unknown" for t in targets)  # just started
                    rec["targets_down"] = [f"{t['labels'].get('job')} {t['scrapeUrl']}: {t.get('lastError') or t['health']}"
                                           for t in targets if t["health"] == "down"]
                    alerts = http_json(f"{url}/api/v1/alerts")["data"]["alerts"]
                    rec["firing"] = [_alert_name(a["labels"]) for a in alerts if a["state"] == "firing"]
                    rec["pending"] = sum(a["state"] == "pending" for a in alerts)
                elif rec["ready"]:
                    alerts = http_json(f"{url}/api/v2/alerts")
                    rec["active"] = [_alert_name(a["labels"]) for a in alerts if a["status"]["state"] == "active"]
                    rec["suppressed"] = [_alert_name(a["labels"]) for a in alerts if a["status"]["state"] == "suppressed"]
            except (OSError, ValueError, KeyError) as e:
                rec["error"] = str(e)
            rec["ok"] = rec["ready"] and "error" not in rec
            out[comp] = rec
        return out


def _alert_name(labels: dict) -> str:
    where = labels.get("device") or labels.get("province") or ""
    return f"{labels.get('alertname')}({where}{' ' + labels['interface'] if 'interface' in labels else ''})"


def _process_status(proc: Process, rec: dict | None) -> dict:
    """A host process: running (the recorded pid, still running its command), and for a collector its
    last round's age, duration and failed targets from its own /metrics."""
    from prometheus_client.parser import text_string_to_metric_families

    rec = rec or {}
    out = {"name": proc.name, "listen": proc.listen, "pid": rec.get("pid"),
           "running": _alive(rec.get("pid"), rec.get("cmd", proc.cmd)) and _in_netns(rec["pid"], proc.netns)}
    if out["running"]:
        try:
            with urllib.request.urlopen(f"http://{proc.listen}/metrics", timeout=5) as r:
                text = r.read().decode()
            vals = {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples
                    if s.name.startswith("netops_collect_round_")}
            if vals.get("netops_collect_round_timestamp_seconds"):
                out["last_round_age_s"] = round(time.time() - vals["netops_collect_round_timestamp_seconds"], 1)
                out["round_s"] = round(vals["netops_collect_round_duration_seconds"], 2)
                out["failed_targets"] = int(vals["netops_collect_round_failed_targets"])
        except (OSError, ValueError) as e:
            out["error"] = str(e)
    out["ok"] = out["running"] and "error" not in out
    return out
