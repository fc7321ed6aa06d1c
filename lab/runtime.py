"""Carrying out a lab plan on this machine: namespaces, overlays, veths, systemd-nspawn nodes.

Everything the lab creates is named after the lab (netns ``jb.<lab>.<device>``, host bridge
``jb-<lab>``, machines ``<lab>-<device>``, files under ``<state root>/<lab>``), so ``down`` finds
and removes all of it even when the state file is gone. Only processes this lab started
(recorded pids, checked against their command line) are ever signalled.
"""
from __future__ import annotations

import fcntl
import hashlib
import ipaddress
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from jinbao_netops.inventory.store import Inventory
from jinbao_netops.files import write_atomic
from jinbao_netops import escape, procs
from jinbao_netops.errors import LabError, UsageError

from . import plan as planmod
from .base import ensure_image

MAX_PARALLEL_BOOTS = 6
INOTIFY_PER_NODE = 2  # a running node's systemd holds 2 (the mount table, /etc/localtime)
INOTIFY_PER_BOOT = 1  # and briefly one more while it boots
NODE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def state_root() -> Path:
    return Path(os.environ.get("NETOPS_LAB_DIR", "/var/lib/jinbao-netops/labs"))


def _run(cmd: list[str], *, input: str | None = None, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
    try:
        p = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise LabError(f"{' '.join(cmd[-4:])}: no answer within {timeout:.0f} s") from None
    if check and p.returncode != 0:
        last = ((p.stderr or p.stdout).strip().splitlines() or ["failed"])[-1]
        raise LabError(f"{' '.join(cmd[:6])}{' …' if len(cmd) > 6 else ''}: {last}")
    return p


def _ids(root: Path, user: str) -> tuple[int, int]:
    """uid and primary gid as the node's own /etc/passwd knows them."""
    for line in (root / "etc/passwd").read_text().splitlines():
        f = line.split(":")
        if f[0] == user:
            return int(f[2]), int(f[3])
    raise LabError(f"{root}: no user {user!r} in the node image")


class Lab:
    def __init__(self, name: str):
        if not planmod.LAB_NAME.match(name):
            raise UsageError(f"lab name {name!r}: use 1-12 lowercase letters, digits or '-', starting with a letter")
        self.name = name
        self.dir = state_root() / name
        self.state_file = self.dir / "state.json"

    def lock(self):
        """Exclusive hold on this lab for one up/down: two at once would race over the same names."""
        state_root().mkdir(parents=True, exist_ok=True)
        fh = open(state_root() / f".{self.name}.lock", "w")
        fcntl.flock(fh, fcntl.LOCK_EX)
        return fh

    @classmethod
    def open(cls, inv: Inventory, name: str | None = None) -> Lab:
        """The lab of an inventory (named after its network unless ``name`` is given)."""
        return cls(name or inv.network.id)

    # --- the handle API ------------------------------------------------------------------------
    @property
    def is_up(self) -> bool:
        return self.state() is not None

    def require_up(self) -> None:
        """A command that needs the lab when it is down: bad usage (exit 2), say how to bring it up."""
        if self.state() is None:
            raise UsageError(f"lab {self.name!r} is not up (netops lab up)")

    def nodes(self) -> list[str]:
        return sorted((self.state() or {}).get("nodes", {}))

    def node(self, name: str) -> Node:
        """A handle on node ``name``; UsageError when the lab is down or has no such node."""
        self.require_up()
        st = self.state()
        if name not in st["nodes"]:
            raise UsageError(f"lab {self.name!r}: node {name!r}: no such node")
        return Node(self, name, st["nodes"][name])

    # --- state ------------------------------------------------------------------------------
    def state(self) -> dict | None:
        try:
            return json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return None

    def _save(self, state: dict) -> None:
        write_atomic(self.state_file, json.dumps(state, indent=1, ensure_ascii=False), 0o600)

    def secrets(self) -> dict[str, str]:
        try:
            return json.loads((self.dir / "secrets.json").read_text())
        except (OSError, ValueError):
            return {}

    def env(self) -> dict[str, str]:
        """Environment variables that make the inventory's credential references resolve to this lab."""
        st = self.state() or {}
        out = {k: v for k, v in self.secrets().items() if k in st.get("env_refs", [])}
        out["ANSIBLE_SSH_COMMON_ARGS"] = f"-o UserKnownHostsFile={self.dir / 'known_hosts'} -o StrictHostKeyChecking=yes"
        return out

    # --- processes --------------------------------------------------------------------------
    def _ours(self, pid: int, machine: str) -> bool:
        """True if pid is the systemd-nspawn this lab started for ``machine`` (guards against pid reuse)."""
        procs.reap(pid)  # a node that exited while this process was its parent (lab up) is collected
        return procs.ours(pid, lambda cmd: "systemd-nspawn" in cmd[0] and f"--machine={machine}" in cmd)

    def leader(self, pid: int) -> int | None:
        """The node's init (systemd): the child of its systemd-nspawn."""
        try:
            kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            return None
        return int(kids[0]) if kids else None

    def node_pid(self, device: str) -> int | None:
        st = self.state() or {}
        n = st.get("nodes", {}).get(device)
        if n and n.get("pid") and self._ours(n["pid"], n["machine"]):
            return n["pid"]
        return None

    def node_command(self, device: str, cmd: list[str]) -> list[str]:
        """The host command line that runs ``cmd`` as root inside the node (all its namespaces)."""
        pid = self.node_pid(device)
        leader = self.leader(pid) if pid else None
        if not leader:
            raise LabError(f"node {device!r} is not running")
        return ["nsenter", "-t", str(leader), "-a", "--", "env", "-i", f"PATH={NODE_PATH}", "LANG=C.UTF-8",
                "HOME=/root", f"TERM={os.environ.get('TERM', 'dumb')}", *cmd]

    def _nsenter(self, device: str, cmd: list[str], timeout: float = 30, check: bool = False, input: str | None = None):
        return _run(self.node_command(device, cmd), check=check, timeout=timeout, input=input)

    # --- up ---------------------------------------------------------------------------------
    def up(self, inv: Inventory, note=lambda m: None, progress=None, keep_on_failure: bool = False) -> dict:
        """Realise the inventory's plan (built here; the runtime works from the plan alone)."""
        _preflight()
        plan = planmod.build(inv, self.name)
        with self.lock():
            return self._up(plan, str(inv.root), note, progress, keep_on_failure)

    def _up(self, plan: planmod.Plan, source: str, note, progress, keep_on_failure: bool) -> dict:
        digest = _digest(plan)
        st = self.state()
        if st and st.get("digest") != digest:
            raise UsageError(f"lab {self.name!r} is up with a different inventory or plan ({st.get('inventory')}); "
                             f"run `netops lab down` first")
        if st and all(self.node_pid(d) for d in plan.nodes):
            return {"lab": self.name, "changed": False, "nodes": len(plan.nodes),
                    "message": f"lab {self.name!r} is already up: {len(plan.nodes)} nodes running, nothing changed"}
        _budget(len([d for d in plan.nodes if not self.node_pid(d)]))
        if fresh := st is None:
            _address_free(plan)
        image, built = ensure_image(note)
        step = progress or (lambda n=1, label=None: None)
        started = time.monotonic()
        try:
            if fresh:
                st = {"lab": self.name, "digest": digest, "inventory": source, "image": str(image),
                      "bridge": plan.bridge, "created": time.time(), "nodes": {}}
                self.dir.mkdir(parents=True, exist_ok=True)
                os.chmod(self.dir, 0o700)
                self._save(st)  # from here on, `down` knows what to remove
                secret_values = self._make_secrets(plan)
                st["env_refs"] = [s.name for s in plan.secrets if s.env]
                self._host_bridge(plan)
                for node in plan.nodes.values():
                    self._make_node(plan, node, image, secret_values)
                    st["nodes"][node.device] = {"ns": node.ns, "machine": node.machine, "pid": None,
                                                "mgmt": node.mgmt, "services": node.services, "image": node.image}
                    step(1, node.device)
                self._save(st)
                self._wire(plan)
            note("booting nodes and waiting for routing to converge…")
            problems = self._boot_all(plan, st, step)
            if problems:
                raise LabError("; ".join(problems))
        except BaseException as e:
            if keep_on_failure:
                raise
            self._down()
            if isinstance(e, (LabError, UsageError)):
                raise LabError(f"lab up failed and was cleaned up: {e}") from None
            raise
        return {"lab": self.name, "changed": True, "nodes": len(plan.nodes), "image_built": built,
                "seconds": round(time.monotonic() - started, 1),
                "message": f"lab {self.name!r} is up: {len(plan.nodes)} nodes, {len(plan.wires)} links"}

    def _make_secrets(self, plan: planmod.Plan) -> dict[str, str]:
        """Per-lab values for every credential reference of the plan; never in the repository."""
        values: dict[str, str] = {}
        sshdir = self.dir / "ssh"
        sshdir.mkdir(mode=0o700, exist_ok=True)
        for s in plan.secrets:
            if s.kind == "ssh_key":
                key = sshdir / s.profile
                _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"netops-lab-{self.name}-{s.profile}", "-f", str(key)])
                values[s.name] = str(key)
            else:
                values[s.name] = secrets.token_hex(12)
        write_atomic(self.dir / "secrets.json", json.dumps(values, indent=1), 0o600)
        self._make_ca()
        return values

    def _make_ca(self) -> None:
        """The lab's own certificate authority (the province PKI's part): it signs every node's TLS
        certificate (RELP over TLS); its key stays in the lab's 0700 directory, 0600."""
        tls = self.dir / "tls"
        tls.mkdir(mode=0o700, exist_ok=True)
        _run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(tls / "ca.key")])
        os.chmod(tls / "ca.key", 0o600)
        _run(["openssl", "req", "-x509", "-new", "-key", str(tls / "ca.key"), "-days", "3650", "-subj",
              f"/O=jinbao-netops lab/CN=lab {self.name} CA", "-out", str(tls / "ca.crt")])

    def _node_cert(self, node: planmod.Node, root: Path) -> None:
        """The node's TLS key (generated in its root-only directory, 0600) and certificate: its name is the
        inventory device id (what a log host's allowlist admits), with its management address, every business
        address and a replication pair's service address (a database client verifies the server's certificate
        against the address it connects to)."""
        ca, d = self.dir / "tls", root / "etc/jinbao-netops/tls"
        d.mkdir(mode=0o700, parents=True, exist_ok=True)
        key, csr = d / "node.key", self.dir / "tls" / f"{node.device}.csr"
        _run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(key)])
        os.chmod(key, 0o600)
        _run(["openssl", "req", "-new", "-key", str(key), "-subj", f"/CN={node.device}", "-out", str(csr)])
        ips = [node.mgmt, *(i.address for i in node.interfaces if i.address), *node.service_addresses]
        san = ",".join([f"DNS:{node.device}", *(f"IP:{a.split('/')[0]}" for a in ips)])
        ext = f"subjectAltName={san}\nextendedKeyUsage=serverAuth,clientAuth\n"
        _run(["openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca / "ca.crt"), "-CAkey", str(ca / "ca.key"),
              "-CAcreateserial", "-days", "825", "-extfile", "/dev/stdin", "-out", str(d / "node.crt")], input=ext)
        csr.unlink()
        write_atomic(d / "ca.crt", (ca / "ca.crt").read_text())

    def _host_bridge(self, plan: planmod.Plan) -> None:
        if _run(["ip", "link", "show", plan.bridge], check=False).returncode != 0:
            _run(["ip", "link", "add", plan.bridge, "type", "bridge"])
        _run(["ip", "addr", "replace", plan.ops_host, "dev", plan.bridge])
        _run(["ip", "link", "set", plan.bridge, "up"])

    def _make_node(self, plan: planmod.Plan, node: planmod.Node, image: Path, values: dict) -> None:
        ns = node.ns
        _run(["ip", "netns", "add", ns])
        lines = [f"link add {node.host_veth} type veth peer name {planmod.MGMT_IFNAME} netns {ns}",
                 f"link set {node.host_veth} master {plan.bridge}", f"link set {node.host_veth} up"]
        _run(["ip", "-batch", "-"], input="\n".join(lines) + "\n")
        inner = ["link set lo up", f"addr add {node.mgmt} dev {planmod.MGMT_IFNAME}", f"link set {planmod.MGMT_IFNAME} up"]
        _run(["ip", "-n", ns, "-batch", "-"], input="\n".join(inner) + "\n")
        # Kernel settings of the node's own namespace, set from outside: /proc/sys is read-only inside.
        sysctls = ["net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"]
        if node.forwards:
            sysctls += ["net.ipv4.ip_forward=1", "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0"]
        _run(["ip", "netns", "exec", ns, "sysctl", "-q", "-w", *sysctls])
        ndir = self.dir / "nodes" / node.device
        for sub in ("upper", "work", "root"):
            (ndir / sub).mkdir(parents=True, exist_ok=True)
        _run(["mount", "-t", "overlay", f"lab-{node.machine}"[:60], "-o",
              f"lowerdir={image},upperdir={ndir / 'upper'},workdir={ndir / 'work'}", str(ndir / "root")])
        self._prepare(node, ndir / "root", values)

    def _prepare(self, node: planmod.Node, root: Path, values: dict) -> None:
        """Node identity and configuration, written into its overlay before it boots."""
        login = node.login
        write_atomic(root / "etc/hostname", node.device + "\n")
        write_atomic(root / "etc/hosts", f"127.0.0.1 localhost\n127.0.1.1 {node.device}\n")
        write_atomic(root / "etc/machine-id", uuid.uuid4().hex + "\n", 0o444)
        # operator account (the base image has `netops`; other profile names are added)
        if f"\n{login.username}:" not in "\n" + (root / "etc/passwd").read_text():
            _run(["chroot", str(root), "useradd", "--create-home", "--shell", "/bin/bash", "--groups", "sudo", login.username])
        uid, gid = _ids(root, login.username)
        if login.ssh_key:
            home = root / ("home/" + login.username)
            pub = Path(values[login.ssh_key] + ".pub").read_text()
            (home / ".ssh").mkdir(mode=0o700, exist_ok=True)
            os.chown(home / ".ssh", uid, gid)
            write_atomic(home / ".ssh/authorized_keys", pub, 0o600, (uid, gid))
        if login.password:
            _run(["chroot", str(root), "chpasswd"], input=f"{login.username}:{values[login.password]}\n")
        # ssh host keys of its own, and the lab's known_hosts entry for its management address
        for kind in ("ed25519", "ecdsa"):
            key = root / f"etc/ssh/ssh_host_{kind}_key"
            if not key.exists():
                _run(["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", f"root@{node.device}", "-f", str(key)])
        write_atomic(root / "etc/ssh/sshd_config.d/00-lab-hostkeys.conf",
               "HostKey /etc/ssh/ssh_host_ed25519_key\nHostKey /etc/ssh/ssh_host_ecdsa_key\n")
        mgmt_ip = node.mgmt.split("/")[0]
        kind, key = (root / "etc/ssh/ssh_host_ed25519_key.pub").read_text().split()[:2]
        with open(self.dir / "known_hosts", "a") as kh:
            kh.write(f"{mgmt_ip} {kind} {key}\n")
        self._node_cert(node, root)
        # snmpd: v3 authPriv user (and v2c only where the inventory says so)
        _, snmp_gid = _ids(root, "Debian-snmp")
        write_atomic(root / "etc/snmp/snmpd.conf", planmod.render_snmpd(node, values), 0o640, (0, snmp_gid))
        if node.snmp.link_traps:  # routers: the linkDown/linkUp watcher, enabled with the services below
            for f in planmod.link_trap_files(node, values):
                path = root / f.path.lstrip("/")
                path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                write_atomic(path, f.text, f.mode)
        # routing
        if node.frr_conf:
            fuid, fgid = _ids(root, "frr")
            daemons = (root / "etc/frr/daemons").read_text().replace("ospfd=no", "ospfd=yes")
            write_atomic(root / "etc/frr/daemons", daemons, 0o640, (fuid, fgid))
            write_atomic(root / "etc/frr/frr.conf", node.frr_conf, 0o640, (fuid, fgid))
        if "lldpd" in node.services:
            write_atomic(root / "etc/lldpd.d/lab.conf", planmod.LLDPD_CONF)
        # which services start
        units = [u for u in node.services if u not in ("ssh", "snmpd")]
        if units:
            _run(["systemctl", f"--root={root}", "enable", *units], timeout=60)

    def _wire(self, plan: planmod.Plan) -> None:
        """Every inventory link as a veth pair between the two nodes' namespaces (planned ones
        too: the line is delivered but unconfigured); LAN hubs become bridges."""
        bridges: dict[str, set[str]] = {}
        lines = []
        for w in plan.wires:
            (da, ia), (db, ib) = w.a, w.b
            lines.append(f"link add {ia} netns {plan.nodes[da].ns} type veth peer name {ib} netns {plan.nodes[db].ns}")
            if w.bridge:
                bridges.setdefault(da, set()).add(w.bridge)
        _run(["ip", "-batch", "-"], input="\n".join(lines) + "\n")
        for node in plan.nodes.values():
            inner = []
            for br in sorted(bridges.get(node.device, ())):
                inner.append(f"link add {br} type bridge")
            for w in plan.wires:
                for dev, ifname in (w.a, w.b):
                    if dev == node.device:
                        if w.bridge and (dev, ifname) == w.a:
                            inner.append(f"link set {ifname} master {w.bridge}")
                        inner.append(f"link set {ifname} up")
            present = {name for w in plan.wires for dev, name in (w.a, w.b) if dev == node.device}
            present |= bridges.get(node.device, set())
            for nif in node.interfaces:
                if nif.linux not in present:
                    continue  # declared but not cabled to anything: no netdev in the twin
                alias = nif.name if nif.linux != nif.name else nif.description
                if alias:
                    inner.append(f"link set {nif.linux} alias {escape.ip_batch(alias)}")
                inner.append(f"link set {nif.linux} up")
                # hosts are configured from outside; routers get their addresses from FRR (zebra)
                if node.image != "frr" and nif.address:
                    inner.append(f"addr add {nif.address} dev {nif.linux}")
            if node.gateway:
                inner.append(f"route add default via {node.gateway}")
            if inner:
                _run(["ip", "-n", node.ns, "-batch", "-"], input="\n".join(inner) + "\n")

    def _boot(self, node: planmod.Node) -> int:
        root = self.dir / "nodes" / node.device / "root"
        log = open(self.dir / "nodes" / node.device / "console.log", "ab")
        # Each node gets a cgroup of its own (nspawn puts its payload under the caller's cgroup,
        # and without a host systemd every node would share it). nspawn runs in a private mount
        # namespace with its own /run, so it leaves no state under the host's /run; it runs in
        # the node's network namespace (handed over as fd 3) under a sysfs mounted from there,
        # so the node's /sys/class/net lists its own interfaces, not the host's.
        cgroups = [h / node.ns for h in _cgroup_hierarchies()]
        for cg in cgroups:
            cg.mkdir(exist_ok=True)
        join = "".join(f"echo $$ > {cg}/cgroup.procs && " for cg in cgroups)
        inner = ('mount -t sysfs lab-sys /sys && mount --rbind /run/lab-cgroup /sys/fs/cgroup && '
                 'exec systemd-nspawn --network-namespace-path=/proc/self/fd/3 "$@"')
        script = (join + 'exec 3</run/netns/"$1"; shift; mount -t tmpfs -o mode=0755 lab-run /run && '
                  'mkdir /run/lab-cgroup && mount --rbind /sys/fs/cgroup /run/lab-cgroup && '
                  f"exec nsenter --net=/proc/self/fd/3 -- sh -c '{inner}' sh \"$@\"")
        cmd = ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", script, "sh", node.ns,
               "--boot", "--keep-unit", "--register=no", f"--machine={node.machine}", f"--directory={root}",
               f"--hostname={node.device}", "--resolv-conf=off", "--timezone=off", "--link-journal=no",
               # the node manages its own network namespace (zebra, ospfd); nspawn keeps this
               # capability only for networks it creates itself
               "--capability=CAP_NET_ADMIN",
               # read-only: nspawn drains the node's console into console.log (an unread pty
               # fills up and blocks every process that writes to it, systemd included)
               "--console=read-only", "--kill-signal=SIGRTMIN+3",
               # a monitor node stands for an ops host with the suite installed (playbooks/serve.yml runs
               # `netops serve` there): it sees this machine's installation, read-only, at the same paths
               *(f"--bind-ro={p}" for p in (suite_paths() if node.role == "monitor" else [])),
               "systemd.show_status=0"]
        # legacy cgroups in the node (where the host has them): its systemd then needs one inotify
        # instance fewer, and the host's per-uid inotify budget (fs.inotify.max_user_instances)
        # is what limits the size of a lab
        env = dict(os.environ, SYSTEMD_NSPAWN_UNIFIED_HIERARCHY="0") if (CGROUP_FS / "systemd").is_dir() else None
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env)
        log.close()
        return p.pid

    def _boot_all(self, plan: planmod.Plan, st: dict, step, timeout: float = 300) -> list[str]:
        """Boot the nodes that are not running, a few at a time (boot is when a node's systemd
        needs the most of the host's inotify budget), then wait for OSPF and sshd."""
        deadline = time.monotonic() + timeout
        boot_timeout = float(os.environ.get("NETOPS_LAB_BOOT_TIMEOUT", "90"))
        pending = [d for d in plan.nodes if not self.node_pid(d)]
        booting: dict[str, float] = {}
        while pending or booting:
            while pending and len(booting) < MAX_PARALLEL_BOOTS:
                device = pending.pop(0)
                st["nodes"][device]["pid"] = self._boot(plan.nodes[device])
                self._save(st)
                booting[device] = time.monotonic()
            time.sleep(0.3)
            for device in list(booting):
                pid = self.node_pid(device)
                if not pid:
                    return [f"{device}: systemd-nspawn exited (see {self.dir}/nodes/{device}/console.log)"]
                if not self.leader(pid):
                    continue
                state = self._nsenter(device, ["systemctl", "is-system-running"]).stdout.strip()
                if state == "degraded":
                    failed = self._nsenter(device, ["systemctl", "--failed", "--plain", "--no-legend"]).stdout.split("\n")
                    return [f"{device}: failed units: {', '.join(ln.split()[0] for ln in failed if ln.strip())}"]
                if state == "running":
                    del booting[device]
                    step(1, f"{device} booted")
                    if problem := self._services_problem(device, plan.nodes[device].services):
                        return [problem]
                elif time.monotonic() - booting[device] > boot_timeout:
                    return [f"{device}: still {state or 'starting'} after {boot_timeout:g} s"]
        expected = _expected_neighbours(plan)
        while True:
            missing = {}
            for device, want in expected.items():
                full = self.node(device).ospf_full()
                if full < want:
                    missing[device] = f"{full}/{want}"
            if not missing:
                break
            if time.monotonic() > deadline:
                return [f"OSPF adjacencies not Full on {', '.join(f'{d} ({v})' for d, v in sorted(missing.items()))}"]
            time.sleep(1)
        for node in plan.nodes.values():  # sshd answers on every management address
            ip = node.mgmt.split("/")[0]
            while not _tcp_open(ip, 22):
                if time.monotonic() > deadline:
                    return [f"{node.device}: sshd does not answer on {ip}:22"]
                time.sleep(0.5)
        return []

    def _services_problem(self, device: str, services: list[str]) -> str | None:
        r = self._nsenter(device, ["systemctl", "is-active", *services])
        states = r.stdout.split()
        bad = [f"{s}={st}" for s, st in zip(services, states) if st != "active"]
        return f"{device}: services not active: {', '.join(bad)}" if bad else None

    # --- down -------------------------------------------------------------------------------
    def down(self) -> dict:
        _preflight(image=False)
        with self.lock():
            return self._down()

    def _down(self) -> dict:
        st = self.state() or {}
        removed = {"processes": 0, "mounts": 0, "namespaces": 0, "links": 0}
        pids = [(n["pid"], n["machine"]) for n in st.get("nodes", {}).values() if n.get("pid")]
        pids += [(pid, m) for pid, m in self._scan_processes() if (pid, m) not in pids]
        # a pidfd per node process, taken while it is known to be ours: it tells when that very
        # process has exited (its command line empties while it tears down, so /proc alone cannot)
        live = {pid: fd for pid, m in pids if self._ours(pid, m) and (fd := procs.pidfd(pid)) is not None}
        for pid in live:
            procs.kill(pid, signal.SIGTERM)  # nspawn turns this into an orderly poweroff of the node
        left = procs.wait_exit(live, 20)
        for pid in left:  # did not power off in time
            for victim in (self.leader(pid), pid):
                if victim:
                    procs.kill(victim, signal.SIGKILL)
        stuck = sorted(procs.wait_exit(left, 10))  # killed processes still hold mounts and cgroups until gone
        for fd in live.values():
            os.close(fd)
        removed["processes"] = len(pids) + self._end_guests()
        for mnt in sorted(self._mounts(), key=len, reverse=True):
            if _run(["umount", mnt], check=False).returncode != 0:
                _run(["umount", "-l", mnt], check=False)
            removed["mounts"] += 1
        for ns in self._namespaces():
            _run(["ip", "netns", "del", ns], check=False)
            removed["namespaces"] += 1
        # the management veths, deleted from the host's side: a node's namespace can outlive `ip netns del` with no
        # process left in it (seen for both database servers after a failover drill: the kernel still held them), and
        # its veth with it, whose name the next `lab up` then found taken ("ip -batch -: Command failed -:1")
        for device in st.get("nodes", {}):
            veth = planmod.host_veth(self.name, device)
            if _run(["ip", "link", "show", veth], check=False).returncode == 0:
                _run(["ip", "link", "del", veth], check=False)
                removed["links"] += 1
        for cg in self._cgroups():  # the nodes' cgroup trees, innermost first
            for d in sorted((p for p in cg.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True) + [cg]:
                try:
                    d.rmdir()
                except OSError:
                    pass
        bridge = st.get("bridge") or f"jb-{self.name}"[:15]
        if _run(["ip", "link", "show", bridge], check=False).returncode == 0:
            _run(["ip", "link", "del", bridge], check=False)
            removed["links"] += 1
        shutil.rmtree(self.dir, ignore_errors=True)
        left = self.leftovers() + ([f"node processes {stuck} did not exit"] if stuck else [])
        if left:
            raise LabError(f"lab {self.name!r} down left: {'; '.join(left)}")
        return {"lab": self.name, "removed": removed, "message": f"lab {self.name!r} is down; nothing left behind"}

    def _scan_processes(self) -> list[tuple[int, str]]:
        out = []
        for p in Path("/proc").iterdir():
            if not p.name.isdigit():
                continue
            try:
                cmd = (p / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if cmd and b"systemd-nspawn" in cmd[0] and f"--directory={self.dir}/".encode() in b" ".join(cmd):
                machine = next((a.decode().split("=", 1)[1] for a in cmd if a.startswith(b"--machine=")), "")
                out.append((int(p.name), machine))
        return out

    def _guests(self) -> list[int]:
        """Host processes still inside one of the lab's network namespaces once its nodes are gone:
        started there by the suite (e.g. `monitor up`'s collectors); they would keep the namespace and
        its veths alive after `ip netns del`."""
        inodes = set()
        for ns in self._namespaces():
            try:
                inodes.add(os.stat(f"/run/netns/{ns}").st_ino)
            except OSError:
                pass
        out = []
        for p in Path("/proc").iterdir():
            if p.name.isdigit():
                try:
                    if os.stat(p / "ns/net").st_ino in inodes:
                        out.append(int(p.name))
                except OSError:
                    continue
        return out

    def _end_guests(self) -> int:
        """End the host processes the suite started inside the lab's namespaces (they are the lab's)."""
        guests = self._guests()
        procs.end(guests, lambda cmd: True, timeout=5)
        return len(guests)

    def _mounts(self) -> list[str]:
        prefix = str(self.dir) + "/"
        return [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()
                if line.split()[1].startswith(prefix)]

    def _namespaces(self) -> list[str]:
        r = _run(["ip", "netns", "list"], check=False)
        return [line.split()[0] for line in r.stdout.splitlines() if line.startswith(f"jb.{self.name}.")]

    def _cgroups(self) -> list[Path]:
        return sorted(cg for h in _cgroup_hierarchies() for cg in h.glob(f"jb.{self.name}.*"))

    def leftovers(self) -> list[str]:
        """Anything of this lab still on the machine (empty after a clean ``down``)."""
        left = []
        if procs := self._scan_processes():
            left.append(f"processes {[p for p, _ in procs]}")
        if mounts := self._mounts():
            left.append(f"mounts {mounts}")
        if nss := self._namespaces():
            left.append(f"namespaces {nss}")
        if cgs := self._cgroups():
            left.append(f"cgroups {[str(c) for c in cgs]}")
        bridge = f"jb-{self.name}"[:15]
        if _run(["ip", "link", "show", bridge], check=False).returncode == 0:
            left.append(f"bridge {bridge}")
        if self.dir.exists():
            left.append(f"directory {self.dir}")
        return left

    # --- status -----------------------------------------------------------------------------
    def status(self) -> dict:
        st = self.state()
        if not st:
            return {"lab": self.name, "up": False, "nodes": []}

        def one(item):
            device, n = item
            rec = {"node": device, "machine": n["machine"], "management": n["mgmt"].split("/")[0],
                   "state": "stopped", "system": None, "services": {}, "addresses": {}}
            addrs = _run(["ip", "-j", "-n", n["ns"], "addr", "show"], check=False)
            try:
                for itf in json.loads(addrs.stdout or "[]"):
                    if itf["ifname"] in ("lo",):
                        continue
                    rec["addresses"][itf["ifname"]] = [f"{a['local']}/{a['prefixlen']}" for a in itf.get("addr_info", [])
                                                       if a.get("family") == "inet"]
            except (ValueError, KeyError):
                pass
            if self.node_pid(device):
                rec["state"] = "running"
                try:
                    rec["system"] = self._nsenter(device, ["systemctl", "is-system-running"]).stdout.strip()
                    states = self._nsenter(device, ["systemctl", "is-active", *n["services"]]).stdout.split()
                    rec["services"] = dict(zip(n["services"], states))
                except LabError:
                    rec["state"] = "stopped"
            return rec

        with ThreadPoolExecutor(max_workers=16) as pool:
            nodes = list(pool.map(one, sorted(st["nodes"].items())))
        return {"lab": self.name, "up": True, "inventory": st.get("inventory"), "nodes": nodes}

    # --- reachability -------------------------------------------------------------------------
    def reach(self, inv: Inventory) -> list[dict]:
        """Every county → the ministry's server, pinged across the routed WAN from the county's
        server (its router when it has none), as the inventory's plan says."""
        self.require_up()
        r = planmod.build(inv, self.name).reach
        if r is None:
            raise LabError(f"the ministry site {inv.ministry.id!r} has no addressed server to reach")
        nodes = set(self.nodes())

        def path(src: Node) -> list[str]:
            """The routed path as the nodes' own tables give it, hop by hop."""
            hops, node = [src.name], src
            for _ in range(16):
                route = _run(["ip", "-n", node.ns, "route", "get", r.address], check=False).stdout.split()
                if "via" not in route:
                    break  # the target is on a connected network of this node
                hop = route[route.index("via") + 1]
                hops.append(r.owner.get(hop, hop))
                if hops[-1] not in nodes:
                    break
                node = self.node(hops[-1])
            return hops + ([r.target] if hops[-1] != r.target else [])

        def one(source):
            county, name, device = source
            src = self.node(device)
            for _ in range(5):
                res = src.run_in_netns(["ping", "-n", "-c", "2", "-i", "0.2", "-W", "1", r.address])
                if res.returncode == 0:
                    break
                time.sleep(1)
            rtt = next((ln.split("=")[1].split("/")[1] for ln in res.stdout.splitlines() if "min/avg" in ln), None)
            return {"county": county, "name": name, "from": device, "to": r.target, "address": r.address,
                    "path": path(src), "ok": res.returncode == 0, "rtt_ms": float(rtt) if rtt else None}

        with ThreadPoolExecutor(max_workers=8) as pool:
            return list(pool.map(one, r.sources))


class Node:
    """A handle on one node of a running lab: its namespace, management address, state, and
    commands run inside it. Other rooms reach the lab's nodes only through this."""

    def __init__(self, lab: Lab, name: str, record: dict):
        self.lab, self.name = lab, name
        self.ns: str = record["ns"]
        self.address: str = record["mgmt"].split("/")[0]
        self.services: list[str] = list(record.get("services", []))
        # the node's writable layer over the shared base image: every file it changed, added or
        # deleted since the lab made it (what a read-only check compares before and after)
        self.changes: Path = lab.dir / "nodes" / name / "upper"

    @property
    def running(self) -> bool:
        return self.lab.node_pid(self.name) is not None

    def command(self, cmd: list[str]) -> list[str]:
        """The host command line that runs ``cmd`` as root inside the node (all its namespaces)."""
        return self.lab.node_command(self.name, cmd)

    def exec(self, cmd: list[str], timeout: float = 30, check: bool = False, input: str | None = None):
        """Run ``cmd`` inside the node as root; CompletedProcess (text). ``check``: LabError on non-zero."""
        return _run(self.command(cmd), check=check, timeout=timeout, input=input)

    def netns_command(self, cmd: list[str]) -> list[str]:
        """A host command line that runs ``cmd`` in the node's network namespace only (the host's
        filesystem and tools): how the suite starts its own processes inside the lab."""
        return ["nsenter", f"--net=/run/netns/{self.ns}", "--", *cmd]

    def run_in_netns(self, cmd: list[str], timeout: float = 60):
        return _run(self.netns_command(cmd), check=False, timeout=timeout)

    def ospf_full(self) -> int:
        """OSPF neighbours in state Full, as the node's FRR reports them."""
        r = self.exec(["vtysh", "-H", "/dev/null", "-c", "show ip ospf neighbor json"])
        try:
            data = json.loads(r.stdout or "{}")
        except ValueError:
            return 0
        return sum(1 for lst in data.get("neighbors", {}).values() for n in lst
                   if str(n.get("nbrState") or n.get("state", "")).startswith("Full"))


def _expected_neighbours(plan: planmod.Plan) -> dict[str, int]:
    on_net: dict[ipaddress.IPv4Network, list[str]] = {}
    for node in plan.nodes.values():
        for nif in node.interfaces:
            if nif.ospf and not nif.passive and nif.address:
                on_net.setdefault(ipaddress.ip_interface(nif.address).network, []).append(node.device)
    want: dict[str, int] = {}
    for members in on_net.values():
        for m in members:
            want[m] = want.get(m, 0) + len(members) - 1
    return {d: n for d, n in want.items() if n}


def _digest(plan: planmod.Plan) -> str:
    """What a running lab cannot change without being rebuilt: its nodes and its cabling. Config
    (addresses, routing) is excluded: provisioning changes it live, and the lab stays the same lab."""
    shape = {"bridge": plan.bridge, "ops_host": plan.ops_host,
             "nodes": {d: [n.ns, n.mgmt, n.image, n.services, [i.linux for i in n.interfaces]] for d, n in plan.nodes.items()},
             "wires": [[w.a, w.b, w.bridge] for w in plan.wires]}
    return hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()[:16]


CGROUP_FS = Path("/sys/fs/cgroup")


def suite_paths() -> list[str]:
    """The directories this installation of the suite runs from: its virtualenv and its source (an editable
    install's repository), none inside another. Never the system's own directories (the interpreter's base
    prefix, /usr): binding the host's /usr over a node's would replace every program the node has (its sshd,
    Prometheus) with the host's. The virtualenv's base interpreter is the node's own python3, the same Debian
    release's (playbooks/serve.yml checks that the suite's Python runs on the host)."""
    import jinbao_netops

    system = {Path(p) for p in ("/", "/usr", "/usr/local")}
    found = sorted({Path(sys.prefix).resolve(), Path(jinbao_netops.__file__).resolve().parents[1]} - system)
    return [str(p) for p in found if not any(p != q and p.is_relative_to(q) for q in found)]


def _cgroup_hierarchies() -> list[Path]:
    """The hierarchies systemd-nspawn places nodes in: the named systemd one (legacy/hybrid host)
    and the unified one (mounted at /sys/fs/cgroup/unified on a hybrid host, at the root on v2)."""
    return [h for h in (CGROUP_FS / "systemd", CGROUP_FS / "unified", CGROUP_FS)
            if (h / "cgroup.procs").exists() and (h != CGROUP_FS or (h / "cgroup.controllers").exists())]


def _tcp_open(ip: str, port: int) -> bool:
    try:
        with socket.create_connection((ip, port), timeout=0.5):
            return True
    except OSError:
        return False


def _inotify_in_use_by_root() -> int:
    n = 0
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            if p.stat().st_uid != 0:
                continue
            n += sum(1 for fd in (p / "fd").iterdir() if os.readlink(fd) == "anon_inode:inotify")
        except OSError:
            continue
    return n


def _budget(new_nodes: int) -> None:
    """Refuse, before creating anything, a lab that would exhaust root's inotify budget: every
    node's systemd draws on it, and we never raise the host's limit ourselves."""
    limit = int(Path("/proc/sys/fs/inotify/max_user_instances").read_text())
    used = _inotify_in_use_by_root()
    need = new_nodes * INOTIFY_PER_NODE + min(new_nodes, MAX_PARALLEL_BOOTS) * INOTIFY_PER_BOOT
    if used + need > limit:
        raise UsageError(f"{new_nodes} more nodes need about {need} inotify instances, but root already uses {used} "
                         f"of fs.inotify.max_user_instances={limit}; scope the inventory down, stop another lab, "
                         f"or have the host's administrator raise that limit")


def _address_free(plan: planmod.Plan) -> None:
    """Two labs cannot share a management network on one host."""
    ip = plan.ops_host.split("/")[0]
    r = _run(["ip", "-j", "-4", "addr", "show"], check=False)
    for itf in json.loads(r.stdout or "[]"):
        if itf["ifname"] != plan.bridge and any(a.get("local") == ip for a in itf.get("addr_info", [])):
            raise UsageError(f"the management address {ip} (address_plan.ops_host) is already on {itf['ifname']}: "
                             f"another lab of this network is up; take it down first")


def _preflight(image: bool = True) -> None:
    if os.geteuid() != 0:
        raise UsageError("the lab needs root (namespaces, mounts, systemd-nspawn): run as root")
    tools = ["ip", "unshare", "nsenter", "mount", "umount"] + (["systemd-nspawn", "ssh-keygen"] if image else [])
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        raise UsageError(f"missing tools: {', '.join(missing)} (run ./install.sh)")
