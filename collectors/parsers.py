"""Parsers for the SSH health commands the platform table names (``Platform.ssh_health``).

Each takes the command's text and returns a partial health record; the records of one device's
commands are merged. ntc-templates has no VRP/Comware CPU/memory/OSPF-peer templates, so these are
our own, checked against the fixtures in tests/fixtures/collect/.
"""
from __future__ import annotations

import json
import re


def _pct(text: str, pattern: str) -> float | None:
    m = re.search(pattern, text, re.M)
    return int(m.group(1)) / 100 if m else None


def _ospf_rows(rows) -> dict:
    return {"ospf_neighbors": [{"neighbor_id": n, "state": st.split("/")[0].strip().lower(), "interface": i,
                                "full": st.upper().startswith("FULL")} for n, st, i in rows]}


def ospf_frr(text: str) -> dict:
    # Neighbor ID  Pri State  Up Time  Dead Time Address  Interface  RXmtL RqstL DBsmL
    rows = re.findall(r"^(\d+\.\d+\.\d+\.\d+)\s+\d+\s+(\S+)\s+.*?\s(\d+\.\d+\.\d+\.\d+)\s+(\S+?)(?::\S+)?\s+\d+\s+\d+\s+\d+\s*$",
                      text, re.M)
    return _ospf_rows((n, st, i) for n, st, _, i in rows)


def ospf_ios(text: str) -> dict:
    rows = re.findall(r"^(\d+\.\d+\.\d+\.\d+)\s+\d+\s+(\S+(?:/\s*\S+)?)\s+\S+\s+\d+\.\d+\.\d+\.\d+\s+(\S+)\s*$", text, re.M)
    return _ospf_rows(rows)


def ospf_vrp(text: str) -> dict:
    rows = re.findall(r"^\s*\d+\.\d+\.\d+\.\d+\s+(\S+)\s+(\d+\.\d+\.\d+\.\d+)\s+(\S+)\s*$", text, re.M)
    return _ospf_rows((n, st, i) for i, n, st in rows)


def ospf_comware(text: str) -> dict:
    # State "Full/DR", or "Full/ -" on a point-to-point link (no DR)
    rows = re.findall(r"^\s*(\d+\.\d+\.\d+\.\d+)\s+\d+\.\d+\.\d+\.\d+\s+\d+\s+\d+\s+(\S+(?:/\s*-)?)\s+(\S+)\s*$",
                      text, re.M)
    return _ospf_rows(rows)


def cpu_vrp(text: str) -> dict:
    return {"cpu_ratio": _pct(text, r"^CPU Usage\s*:\s*(\d+)%")}


def mem_vrp(text: str) -> dict:
    return {"memory_ratio": _pct(text, r"Memory Using Percentage Is:\s*(\d+)%")}


def cpu_comware(text: str) -> dict:
    """The busiest CPU's last-minute figure across slots."""
    vals = [int(v) for v in re.findall(r"^\s*(\d+)% in last 1 minute", text, re.M)]
    return {"cpu_ratio": max(vals) / 100 if vals else None}


def mem_comware(text: str) -> dict:
    rows = re.findall(r"^Mem:\s+(\d+)\s+(\d+)\s+\d+", text, re.M)
    ratios = [int(used) / int(total) for total, used in rows if int(total)]
    return {"memory_ratio": max(ratios) if ratios else None}


def cpu_ios(text: str) -> dict:
    return {"cpu_ratio": _pct(text, r"one minute:\s*(\d+)%")}


def cpu_asa(text: str) -> dict:
    return {"cpu_ratio": _pct(text, r"\b1 minute:\s*(\d+)%")}


def linux(text: str) -> dict:
    """/proc/loadavg, free -b, df -P -B1 /, systemctl --failed --no-legend --plain."""
    out: dict = {}
    m = re.search(r"^(\d+\.\d+) (\d+\.\d+) (\d+\.\d+) \d+/\d+ \d+$", text, re.M)
    if m:
        out["load1"], out["load5"], out["load15"] = (float(x) for x in m.groups())
    m = re.search(r"^Mem:\s+(\d+)\s+\d+\s+\d+\s+\d+\s+\d+\s+(\d+)", text, re.M)
    if m and int(m.group(1)):
        total, available = int(m.group(1)), int(m.group(2))
        out["memory_ratio"] = round(1 - available / total, 4)
    m = re.search(r"^\S+\s+(\d+)\s+(\d+)\s+\d+\s+\d+%\s+/$", text, re.M)
    if m and int(m.group(1)):
        out["disk_used_ratio"] = round(int(m.group(2)) / int(m.group(1)), 4)
    out["failed_units"] = re.findall(r"^(\S+\.(?:service|socket|mount|timer|target|path))\s+loaded\s+failed", text, re.M)
    return out


def links_linux(text: str) -> dict:
    """`ip -s -j link` (FRR routers and Linux hosts): state and 64-bit kernel counters per interface.
    FRR's own `show interface` prints no counters on Linux; the kernel's are the ones it would show."""
    start, end = text.find("["), text.rfind("]")
    try:
        links = json.loads(text[start:end + 1]) if 0 <= start < end else []
    except ValueError:
        links = []
    out = []
    for link in links if isinstance(links, list) else []:
        st = link.get("stats64") or {}
        rx, tx = st.get("rx") or {}, st.get("tx") or {}
        if "ifname" not in link:
            continue
        out.append({"name": link["ifname"], "oper_status": str(link.get("operstate", "unknown")).lower(),
                    "counters": {"in_octets": rx.get("bytes"), "out_octets": tx.get("bytes"),
                                 "in_packets": rx.get("packets"), "out_packets": tx.get("packets"),
                                 "in_errors": rx.get("errors"), "out_errors": tx.get("errors"),
                                 "in_discards": rx.get("dropped"), "out_discards": tx.get("dropped")}})
    return {"interfaces": out} if out else {}


# --- reconciliation (``Platform.reconcile``): interfaces with their state and addresses, LLDP neighbours ---
# An interface record: name (as the device prints it), admin_up, oper_up (the line protocol), addresses
# ("10.0.0.1/31"; IOS's brief view prints no mask: "10.0.0.1"). An LLDP record: the local interface, the
# neighbour's system name and port. A parser finds no LLDP table where the device runs no LLDP: no record.

def _iface(name: str, admin_up: bool, oper_up: bool, address: str | None) -> dict:
    return {"name": name, "admin_up": admin_up, "oper_up": oper_up, "addresses": [address] if address else []}


def _json_doc(text: str, open_: str, close: str):
    start, end = text.find(open_), text.rfind(close)
    try:
        return json.loads(text[start:end + 1]) if 0 <= start < end else None
    except ValueError:
        return None


def addrs_linux(text: str) -> dict:
    """`ip -j addr` (FRR routers: zebra's interfaces are the kernel's): admin state from the UP flag, the
    line from operstate (UNKNOWN, as a loopback reports it, counts as up when the carrier is: LOWER_UP)."""
    links = _json_doc(text, "[", "]")
    out = []
    for link in links if isinstance(links, list) else []:
        if not isinstance(link, dict) or "ifname" not in link:
            continue
        flags = link.get("flags") or []
        oper = str(link.get("operstate", "")).upper()
        out.append({"name": link["ifname"], "admin_up": "UP" in flags,
                    "oper_up": oper == "UP" or (oper == "UNKNOWN" and "LOWER_UP" in flags),
                    "addresses": [f"{a['local']}/{a['prefixlen']}" for a in link.get("addr_info") or []
                                  if a.get("family") == "inet" and "local" in a and "prefixlen" in a]})
    return {"interface_state": out} if out else {}


def ip_brief_vrp(text: str) -> dict:
    """`display ip interface brief` (VRP): Interface, IP Address/Mask, Physical (*down: shut down), Protocol."""
    rows = re.findall(r"^(\S+)\s+(\d+\.\d+\.\d+\.\d+/\d+|unassigned)\s+(\*?\^?down|up)\s+(up|down)(?:\(\w\))?\s*$", text, re.M)
    return {"interface_state": [_iface(n, not ph.startswith("*"), pr == "up", None if a == "unassigned" else a)
                                for n, a, ph, pr in rows]} if rows else {}


def ip_brief_comware(text: str) -> dict:
    """`display ip interface brief` (Comware 7): Interface, Physical (*down: shut down), Protocol,
    IP address/Mask, VPN instance, Description."""
    rows = re.findall(r"^(\S+)\s+(\*?down|up)\s+(up|down)(?:\(\w\))?\s+(\d+\.\d+\.\d+\.\d+/\d+|--)(?:\s.*)?$", text, re.M)
    return {"interface_state": [_iface(n, not ph.startswith("*"), pr == "up", None if a == "--" else a)
                                for n, ph, pr, a in rows]} if rows else {}


def ip_brief_ios(text: str) -> dict:
    """`show ip interface brief` (IOS): Interface, IP-Address, OK?, Method, Status, Protocol."""
    rows = re.findall(r"^(\S+)\s+(\d+\.\d+\.\d+\.\d+|unassigned)\s+(?:YES|NO)\s+\S+\s+"
                      r"(up|down|administratively down|deleted)\s+(up|down)\s*$", text, re.M)
    return {"interface_state": [_iface(n, st != "administratively down", pr == "up", None if a == "unassigned" else a)
                                for n, a, st, pr in rows if st != "deleted"]} if rows else {}


def _lldp_rows(rows) -> dict:
    return {"lldp_neighbors": [{"interface": i, "system": s, "port": p} for i, s, p in rows]}


def _after(text: str, header: str) -> str | None:
    """The text after the table's header line; None where the header is not there (no LLDP)."""
    m = re.search(header, text, re.M)
    return text[m.end():] if m else None


def lldp_lldpd(text: str) -> dict:
    """`lldpcli -f json0 show neighbors`: {"lldp": [{"interface": [{"name", "chassis": [{"name": [{"value"}]}],
    "port": [{"id": [{"type", "value"}], "descr": [{"value"}]}]}]}]}; the port is its id where that is an
    interface name (``portidsubtype ifname``), else its description (lldpd's default id is the MAC)."""
    doc = _json_doc(text, "{", "}")
    if not isinstance(doc, dict) or "lldp" not in doc:
        return {}

    def first(items, key="value"):
        return (items or [{}])[0].get(key) if isinstance(items, list) else None

    rows = []
    for block in doc["lldp"] if isinstance(doc["lldp"], list) else []:
        for itf in block.get("interface") or [] if isinstance(block, dict) else []:
            chassis, port = (itf.get("chassis") or [{}])[0], (itf.get("port") or [{}])[0]
            pid = (port.get("id") or [{}])[0]
            name = pid.get("value") if pid.get("type") in ("ifname", "local") else first(port.get("descr"))
            rows.append((itf.get("name", ""), first(chassis.get("name")) or "", name or ""))
    return _lldp_rows(rows)


def lldp_vrp(text: str) -> dict:
    """`display lldp neighbor brief` (VRP8): Local Interface, Exptime(s), Neighbor Interface, Neighbor Device."""
    body = _after(text, r"^\s*Local Interface\s+Exptime\(s\)\s+Neighbor Interface\s+Neighbor Device\s*$")
    if body is None:
        return {}
    return _lldp_rows((i, d, p) for i, p, d in re.findall(r"^(\S+)\s+\d+\s+(\S+)\s+(\S+)\s*$", body, re.M))


def lldp_comware(text: str) -> dict:
    """`display lldp neighbor-information list` (Comware 7): System Name, Local Interface, Chassis ID, Port ID."""
    body = _after(text, r"^\s*System Name\s+Local Interface\s+Chassis ID\s+Port ID\s*$")
    if body is None:
        return {}
    return _lldp_rows((i, s, p) for s, i, p in re.findall(r"^(\S+)\s+(\S+)\s+\S+\s+(\S+)\s*$", body, re.M))


def lldp_ios(text: str) -> dict:
    """`show lldp neighbors` (IOS): Device ID, Local Intf, Hold-time, Capability, Port ID."""
    body = _after(text, r"^Device ID\s+Local Intf\s+Hold-time\s+Capability\s+Port ID\s*$")
    if body is None:
        return {}
    return _lldp_rows((i, d, p) for d, i, p in
                      re.findall(r"^(\S+)\s+(\S+)\s+\d+\s+(?:[A-Z](?:,[A-Z])*\s+)?(\S+)\s*$", body, re.M))


PARSERS = {f.__name__: f for f in (ospf_frr, ospf_ios, ospf_vrp, ospf_comware, cpu_vrp, mem_vrp, cpu_comware,
                                   mem_comware, cpu_ios, cpu_asa, linux, links_linux, addrs_linux, ip_brief_vrp,
                                   ip_brief_comware, ip_brief_ios, lldp_lldpd, lldp_vrp, lldp_comware, lldp_ios)}


def parse_outputs(commands: tuple[tuple[str, str], ...], outputs: dict[str, str]) -> dict:
    """A platform's (command, parser name) list applied to what its commands printed, merged; a command
    not run adds nothing."""
    rec: dict = {}
    for command, parser in commands:
        if command in outputs:
            rec.update(PARSERS[parser](outputs[command]))
    return rec
