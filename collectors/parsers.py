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
    rows = re.findall(r"^\s*(\d+\.\d+\.\d+\.\d+)\s+\d+\.\d+\.\d+\.\d+\s+\d+\s+\d+\s+(\S+)\s+(\S+)\s*$", text, re.M)
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


PARSERS = {f.__name__: f for f in (ospf_frr, ospf_ios, ospf_vrp, ospf_comware, cpu_vrp, mem_vrp, cpu_comware,
                                   mem_comware, cpu_ios, cpu_asa, linux, links_linux)}
