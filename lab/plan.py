"""What the lab twin of an inventory looks like: nodes, their namespaces and interfaces, the veth
pairs and LAN bridges between them, the management network, and each router's FRR config.

Pure functions of the inventory (no root, no side effects), so the plan is unit-tested and the
runtime only carries it out.
"""
from __future__ import annotations

import hashlib
import ipaddress
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from jinbao_netops import escape

from jinbao_netops.inventory.model import Level, LinkKind, LinkState, Role
from jinbao_netops.inventory.store import Inventory
from jinbao_netops.monitoring.generate import trap_receiver

TEMPLATES = Path(__file__).parent / "templates"
_LINUX_IFNAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,14}$")
MGMT_IFNAME = "mgmt0"
LINKTRAPS = "netops-linktraps"                    # the routers' link-trap watcher: its unit and program
# lldpd on the routers (what `inventory reconcile` reads their cabling from): on every link interface, present
# or cabled later, never the management interface to the host; the port id is the interface's name (lldpd's
# default is its MAC), so a neighbour names the port as the inventory does; sent every 5 s in the lab
LLDPD_CONF = (f"configure system interface pattern *,!{MGMT_IFNAME},!lo\nconfigure lldp portidsubtype ifname\n"
              "configure lldp tx-interval 5\n")  # the lab converges in seconds (lldpd's default: every 30 s)
LINKTRAPS_CONF = "/etc/jinbao-netops/linktraps"   # its snmptrap's SNMPCONFPATH: snmp.conf, the credentials
LINKTRAPS_STATE = "/var/lib/netops-linktraps"     # its SNMPv3 engine ID and boots, snmptrap's persistent files
LAB_NAME = re.compile(r"^[a-z][a-z0-9-]{0,11}$")


@dataclass
class NodeIf:
    name: str                 # inventory interface name
    linux: str                # name inside the node's namespace
    address: str | None       # CIDR, or None (planned or unaddressed)
    description: str | None
    bridge: bool = False      # a LAN hub: a bridge whose ports are veths to the LAN members
    ospf: bool = False        # runs OSPF (routers)
    passive: bool = False     # OSPF passive (a LAN with no other router)
    p2p: bool = False
    area: int = 0
    bandwidth_mbps: int | None = None  # of its link: OSPF cost follows it


@dataclass
class Login:
    """The operator account a node gets: its user, and the credential references (names of the
    variables the lab generates values for) of its SSH key and password."""
    username: str
    ssh_key: str | None = None
    password: str | None = None


@dataclass
class Snmp:
    """The node's snmpd: the suite's SNMPv3 user (and a v2c community where the inventory asks),
    with the references of the keys the lab generates."""
    user: str | None            # None: the profile gives no SNMPv3 user (a v2c-only device)
    auth_protocol: str
    priv_protocol: str
    auth_key: str | None
    priv_key: str | None
    community: str | None       # reference of the v2c community, None for v3 only
    location: str               # the site's display name
    management: str             # the management network (v2c is answered from there only)
    port: int = 161             # the device's snmp_port
    trap_sink: str | None = None  # the monitor host whose trap receiver hears it (monitoring.generate.trap_receiver)
    link_traps: bool = False    # a router: linkDown/linkUp as a link changes (LINKTRAPS, lab/linktraps.py)


@dataclass
class Node:
    device: str
    site: str
    role: str
    image: str                # "frr" or "linux" (platform table)
    ns: str                   # ip netns name
    machine: str              # systemd-nspawn machine name
    mgmt: str                 # management address CIDR on mgmt0
    host_veth: str            # host side of the management veth
    interfaces: list[NodeIf] = field(default_factory=list)
    gateway: str | None = None  # hosts: default route via their site router (or the boundary device of their segment)
    forwards: bool = False    # routes between its interfaces: a router, or a boundary device (firewall, 网闸)
    statics: list[tuple[str, str]] = field(default_factory=list)  # a router: (subnet, next hop) behind a boundary
    service_addresses: list[str] = field(default_factory=list)  # a replication pair member: the pair's service address
    loopback: str | None = None
    services: list[str] = field(default_factory=list)  # systemd units that must be active
    frr_conf: str | None = None
    login: Login | None = None
    snmp: Snmp | None = None


@dataclass
class NodeFile:
    """A file the lab writes into a node before it boots (a directory it creates for it is root's only)."""
    path: str                 # absolute, inside the node
    text: str
    mode: int = 0o644


@dataclass
class Wire:
    """One veth pair: (node, linux ifname) at each end; ``bridge`` names a hub bridge the a-end joins."""
    link: str
    a: tuple[str, str]
    b: tuple[str, str]
    bridge: str | None = None
    planned: bool = False


@dataclass
class Secret:
    """A credential reference the lab generates a value for: an SSH key pair (``ssh_key``, named
    after its credentials profile) or a random token."""
    name: str                 # the reference (environment variable or vault name)
    kind: str                 # "ssh_key" or "token"
    profile: str
    env: bool                 # an {env: NAME} reference (exported by `netops lab env`)


@dataclass
class Reach:
    """What `lab reach` pings: every county's first server (its router when it has none) → the
    ministry's server across the routed WAN; ``owner`` names the device behind each address."""
    target: str
    address: str
    sources: list[tuple[str, str, str]]   # (county, display name, source device)
    owner: dict[str, str]


@dataclass
class Plan:
    lab: str
    bridge: str               # host-side management bridge
    ops_host: str             # its address (CIDR)
    nodes: dict[str, Node]
    wires: list[Wire]
    secrets: list[Secret] = field(default_factory=list)
    reach: Reach | None = None


def _short(*parts: str, n: int = 6) -> str:
    return hashlib.sha1("/".join(parts).encode()).hexdigest()[:n]


def host_veth(lab: str, device: str) -> str:
    """The host side of a node's management veth (the only link of a node in the host's namespace)."""
    return f"jm{_short(lab, device, n=10)}"


def linux_ifname(name: str, index: int) -> str:
    """Inventory interface name as a Linux netdev name: kept when valid, else ``if<index>``
    (the inventory name is then set as the interface's alias, visible as ifAlias in SNMP)."""
    return name if _LINUX_IFNAME.match(name) and name not in ("lo", MGMT_IFNAME) else f"if{index}"


def build(inv: Inventory, lab: str) -> Plan:
    if not LAB_NAME.match(lab):
        raise ValueError(f"lab name {lab!r}: use 1-12 lowercase letters, digits or '-', starting with a letter")
    net = inv.network
    mgmt_len = net.address_plan.management.prefixlen
    hubs = _lan_hubs(inv)
    nodes: dict[str, Node] = {}
    for d in sorted(inv.devices.values(), key=lambda d: d.id):
        plat = d.platform_info
        ifs = []
        for i, (name, itf) in enumerate(d.interfaces.items()):
            ifs.append(NodeIf(name=name, linux=linux_ifname(name, i), description=itf.description,
                              address=str(itf.address) if itf.address else None, bridge=(d.id, name) in hubs))
        services = ["ssh", "snmpd"] + (["frr", "lldpd"] if plat.lab_image == "frr" else []) + list(d.services)
        nodes[d.id] = Node(device=d.id, site=d.site, role=d.role.value, image=plat.lab_image,
                           ns=f"jb.{lab}.{d.id}", machine=f"{lab}-{d.id}"[:64],
                           mgmt=f"{d.management}/{mgmt_len}", host_veth=host_veth(lab, d.id),
                           interfaces=ifs, loopback=str(d.loopback) if d.loopback else None, services=services)
    for d in inv.devices.values():  # what the pair's clients connect to: in both members' certificates
        if d.replica is not None and d.replica.service_address is not None:
            for member in (d.id, d.replica.of):
                nodes[member].service_addresses.append(str(d.replica.service_address))
    wires = _wires(inv, nodes, hubs)
    _routing(inv, nodes)
    for node in nodes.values():
        if node.image == "frr":
            node.frr_conf = render_frr(inv, node)
        _access(inv, node)
        if node.snmp is not None and node.snmp.link_traps:
            node.services.append(LINKTRAPS)
    return Plan(lab=lab, bridge=f"jb-{lab}"[:15], ops_host=f"{net.address_plan.ops_host}/{mgmt_len}",
                nodes=nodes, wires=wires, secrets=_secrets(inv), reach=_reach(inv))


def _ref(ref) -> str | None:
    return (ref.env or ref.vault) if ref is not None else None


def _access(inv: Inventory, node: Node) -> None:
    """The node's operator login and snmpd user, from its credentials profile."""
    d = inv.devices[node.device]
    cred = inv.credentials[d.credentials]
    node.login = Login(cred.username, _ref(cred.ssh_key), _ref(cred.password))
    snmp = cred.snmp
    if snmp is not None:
        community = _ref(snmp.community) if d.snmp_version == "v2c" else None
        sink = trap_receiver(inv, d.id)
        node.snmp = Snmp(snmp.user, snmp.auth_protocol, snmp.priv_protocol, _ref(snmp.auth_key), _ref(snmp.priv_key),
                         community, inv.sites[d.site].name, str(inv.network.address_plan.management), d.snmp_port, sink,
                         node.image == "frr" and sink is not None and (community or snmp.user) is not None)


def _secrets(inv: Inventory) -> list[Secret]:
    """Every credential reference of the inventory's profiles, once each."""
    out: dict[str, Secret] = {}
    for cred in inv.credentials.values():
        refs = [("ssh_key", cred.ssh_key), ("token", cred.password), ("token", cred.db_password),
                ("token", cred.restic_password), ("token", cred.replication_password)]
        if cred.snmp:
            refs += [("token", cred.snmp.auth_key), ("token", cred.snmp.priv_key), ("token", cred.snmp.community)]
        for kind, ref in refs:
            if ref is not None and _ref(ref) not in out:
                out[_ref(ref)] = Secret(_ref(ref), kind, cred.id, bool(ref.env))
    return list(out.values())


def _reach(inv: Inventory) -> Reach | None:
    if (target := inv.reach_target()) is None:
        return None
    sources = [(s.id, s.name, src) for s in inv.sites_in_order()
               if s.level == Level.county and (src := inv.reach_source(s.id))]
    owner = {str(i.address.ip): d.id for d in inv.devices.values() for i in d.interfaces.values() if i.address}
    return Reach(*target, sources, owner)


def _lan_hubs(inv: Inventory) -> set[tuple[str, str]]:
    """Interfaces that are an end of two or more LAN links: they become bridges."""
    count: dict[tuple[str, str], int] = defaultdict(int)
    for link in inv.links.values():
        if link.kind == LinkKind.lan:
            for e in link.ends():
                count[(e.device, e.interface)] += 1
    return {k for k, n in count.items() if n > 1}


def _ifmap(nodes: dict[str, Node], device: str, name: str) -> NodeIf:
    return next(i for i in nodes[device].interfaces if i.name == name)


def _wires(inv: Inventory, nodes: dict[str, Node], hubs: set) -> list[Wire]:
    wires, port = [], defaultdict(int)
    for link in sorted(inv.links.values(), key=lambda lk: lk.id):
        a, b = link.a, link.b
        if (b.device, b.interface) in hubs:  # keep the hub on the a-side
            a, b = b, a
        la = _ifmap(nodes, a.device, a.interface).linux
        lb = _ifmap(nodes, b.device, b.interface).linux
        bridge = None
        if (a.device, a.interface) in hubs:
            port[a.device] += 1
            bridge, la = la, f"bp{port[a.device]}"
        wires.append(Wire(link=link.id, a=(a.device, la), b=(b.device, lb), bridge=bridge,
                          planned=link.state == LinkState.planned))
    return wires


def _routing(inv: Inventory, nodes: dict[str, Node]) -> None:
    """OSPF per router interface, and each host's default gateway: its site router on the LAN, else the boundary
    device its segment hangs off (a 外网 segment behind a firewall). A router sharing a LAN with a boundary device
    routes the boundary's other subnets to it, statically, redistributed into OSPF: replies find their way back
    through the boundary from anywhere in the network (the boundary's rules decide what crosses, not routing)."""
    routers_on: dict[ipaddress.IPv4Network, list[str]] = defaultdict(list)
    boundaries_on: dict[ipaddress.IPv4Network, list[str]] = defaultdict(list)
    for d in inv.devices.values():
        on = routers_on if d.role == Role.router else boundaries_on if d.boundary else None
        if on is not None:
            for itf in d.interfaces.values():
                if itf.address:
                    on[itf.address.network].append(d.id)
    link_of: dict[tuple[str, str], object] = {}
    for link in inv.links.values():
        for e in link.ends():
            link_of[(e.device, e.interface)] = link
    for node in nodes.values():
        d = inv.devices[node.device]
        node.forwards = node.image == "frr" or d.boundary
        for nif in node.interfaces:
            itf = d.interfaces[nif.name]
            if itf.address is None:
                continue
            if d.role == Role.router:
                link = link_of.get((d.id, nif.name))
                nif.bandwidth_mbps = link.bandwidth_mbps if link is not None else None
                nif.ospf = True
                nif.p2p = link is not None and link.kind != LinkKind.lan
                nif.passive = not nif.p2p and len(routers_on[itf.address.network]) < 2
                nif.area = inv.link_area(link) if link is not None else inv.site_area(d.site)
                for b in boundaries_on[itf.address.network]:
                    bdev = inv.devices[b]
                    hop = next(str(i.address.ip) for i in bdev.interfaces.values()
                               if i.address and i.address.network == itf.address.network)
                    node.statics += [(str(i.address.network), hop) for i in bdev.interfaces.values()
                                     if i.address and i.address.network != itf.address.network
                                     and not routers_on[i.address.network]]
            elif node.gateway is None:
                net = itf.address.network
                gw = [r for r in (*routers_on[net], *boundaries_on[net]) if inv.devices[r].site == d.site and r != d.id]
                if gw:
                    rdev = inv.devices[gw[0]]
                    node.gateway = next(str(i.address.ip) for i in rdev.interfaces.values()
                                        if i.address and i.address.network == net)


def _env(target) -> Environment:
    """A Jinja environment for one target syntax: every value goes through its escape function."""
    env = Environment(loader=FileSystemLoader(TEMPLATES), undefined=StrictUndefined, trim_blocks=True,
                      lstrip_blocks=True, keep_trailing_newline=True, **escape.jinja(target))
    env.filters["area"] = lambda n: str(ipaddress.IPv4Address(n))
    return env


_frr_env, _conf_env = _env(escape.cli), _env(escape.conf)


def render_frr(inv: Inventory, node: Node) -> str:
    return _frr_env.get_template("frr.conf.j2").render(node=node, ospf=inv.network.ospf,
                                                   loopback_area=inv.site_area(node.site))


def _snmp_values(node: Node, secrets: dict[str, str]) -> dict:
    """What the node's SNMP configurations are rendered from: its plan and the lab's generated values."""
    s = node.snmp
    return {"device": node.device, "snmp": s, "auth_key": secrets.get(s.auth_key), "priv_key": secrets.get(s.priv_key),
            "community": secrets[s.community] if s.community else None}


def render_snmpd(node: Node, secrets: dict[str, str]) -> str:
    """The node's snmpd.conf from its plan and the lab's generated values."""
    return _conf_env.get_template("snmpd.conf.j2").render(**_snmp_values(node, secrets))


def link_trap_files(node: Node, secrets: dict[str, str]) -> list[NodeFile]:
    """A router's link-trap watcher (lab/linktraps.py, which replaces snmpd's DisMan monitor: see its docstring):
    the program, its unit and the 0600 snmp.conf its snmptrap reads the credentials from (they are in no command
    line), sending as the node's snmpd sends (trapsess, informsink): SNMPv3 authPriv, or v2c informs."""
    s = node.snmp
    version = "v2c" if s.community else "v3"
    words = [f"/usr/local/sbin/{LINKTRAPS}", "--sink", f"{s.trap_sink}:162", "--version", version,
             "--ignore", MGMT_IFNAME, "--state", LINKTRAPS_STATE]
    unit = "\n".join([
        "# rendered by netops lab",
        "[Unit]",
        "Description=netops lab: linkDown/linkUp traps of the data interfaces (ip monitor, snmptrap)",
        "StartLimitIntervalSec=0",
        "",
        "[Service]",
        "Type=exec",
        "Environment=" + " ".join(escape.systemd(v) for v in (f"SNMPCONFPATH={LINKTRAPS_CONF}",
                                                                f"SNMP_PERSISTENT_DIR={LINKTRAPS_STATE}")),
        "ExecStart=" + " ".join(escape.systemd(w) for w in words),
        f"StateDirectory={LINKTRAPS_STATE.removeprefix('/var/lib/')}",
        "StateDirectoryMode=0700",
        "UMask=0077",
        "Restart=always",
        "RestartSec=1",
        "",
        "[Install]",
        "WantedBy=multi-user.target",
        ""])
    conf = _conf_env.get_template("linktraps-snmp.conf.j2").render(**_snmp_values(node, secrets))
    return [NodeFile(f"/usr/local/sbin/{LINKTRAPS}", (Path(__file__).parent / "linktraps.py").read_text(), 0o755),
            NodeFile(f"/etc/systemd/system/{LINKTRAPS}.service", unit),
            NodeFile(f"{LINKTRAPS_CONF}/snmp.conf", conf, 0o600)]
