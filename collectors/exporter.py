"""Prometheus exposition of the latest collection round (prometheus-client custom collector).

Scheduling is inside the collector, not per scrape: a background loop polls every ``interval``
seconds under a cycle deadline and a scrape only renders the last round. So scrape time is constant,
several Prometheus replicas do not multiply the load on device CPUs, and a dead device never makes a
scrape time out. The metric names, types and labels are listed in collectors/METRICS.md.
"""
from __future__ import annotations

import threading
import time

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from . import IF_STATUS
from .targets import LABELS
from .wire import DROP_REASONS

# an interface's identity is its ifIndex; its name stays on the series (links and rules join on it); its
# description and ifDescr only on netops_interface_info, so editing a description churns no series
IF_LABELS = (*LABELS, "ifindex", "interface")
ENVIRONMENT = {"temperature": ("netops_device_temperature_celsius", "Temperature per sensor (vendor entity / environment MIB)"),
               "fan": ("netops_device_fan_ok", "1 if the fan works (vendor fan state), 0 if not"),
               "power": ("netops_device_power_supply_ok", "1 if the power supply works (vendor state), 0 if not"),
               "rx_power": ("netops_device_optical_rx_power_dbm", "Optical transceiver receive power; sensor is the ifIndex (H3C), the transceiver's entPhysicalIndex (Huawei) or the sensor's (Cisco)"),
               "tx_power": ("netops_device_optical_tx_power_dbm", "Optical transceiver transmit power; sensor is the ifIndex (H3C), the transceiver's entPhysicalIndex (Huawei) or the sensor's (Cisco)")}
STATUS = {name: value for value, name in IF_STATUS.items()}
COUNTER_HELP = {
    "in_octets": "Octets received (ifHCInOctets)",
    "out_octets": "Octets sent (ifHCOutOctets)",
    "in_unicast_packets": "Unicast packets received (ifHCInUcastPkts)",
    "out_unicast_packets": "Unicast packets sent (ifHCOutUcastPkts)",
    "in_errors": "Inbound packets with errors (ifInErrors)",
    "out_errors": "Outbound packets with errors (ifOutErrors)",
    "in_discards": "Inbound packets discarded (ifInDiscards)",
    "out_discards": "Outbound packets discarded (ifOutDiscards)",
}
UNIT = {"octets": "bytes"}
SSH_COUNTERS = ("in_octets", "out_octets", "in_packets", "out_packets", "in_errors", "out_errors", "in_discards",
                "out_discards")


def counter_metric(col: str) -> str:
    direction, what = col.split("_", 1)
    return f"netops_interface_{direction}_{UNIT.get(what, what)}"


class Snapshot(Collector):
    """Holds the last round's results; ``collect`` renders them as metric families."""

    def __init__(self):
        self._lock = threading.Lock()
        self.snmp: list = []          # (labels, collectors.snmp.Result)
        self.db: list = []            # collectors.db health records
        self.ssh: list = []           # collectors.ssh records
        self.self_totals: dict = {}   # device → accumulated self-metric counters
        self.dropped: dict = dict.fromkeys(DROP_REASONS, 0)  # the SNMP client's dropped answers by reason, so far
        self.round = {"duration_s": 0.0, "finished": 0.0, "targets": 0, "failed": 0}

    def update(self, snmp: list, db: list, duration_s: float, ssh: list = (), dropped: dict | None = None) -> None:
        """The round's results; ``dropped`` is the SNMP client's running count of dropped answers by reason."""
        with self._lock:
            if dropped is not None:
                self.dropped = dict(dropped)
            for labels, r in snmp:
                tot = self.self_totals.setdefault(labels["device"], {"pdus": 0, "retries": 0, "timeouts": 0, "varbinds": 0})
                for k in tot:
                    tot[k] += getattr(r.stats, k)
            self.snmp, self.db, self.ssh = snmp, db, list(ssh)
            self.round = {"duration_s": duration_s, "finished": time.time(), "targets": len(snmp) + len(db) + len(ssh),
                          "failed": sum(not r.ok for _, r in snmp) + sum(not h["up"] for h in db)
                          + sum(not s["ok"] for s in ssh)}

    def collect(self):
        with self._lock:
            snmp, db, ssh = list(self.snmp), list(self.db), list(self.ssh)
            totals, rnd, dropped = dict(self.self_totals), dict(self.round), dict(self.dropped)
        yield from snmp_families(snmp, totals)
        c = CounterMetricFamily("netops_snmp_dropped_packets", "SNMP answers the collector dropped (not what the "
                                "request asked for, or undecodable), by reason", labels=["reason"])
        for reason, n in dropped.items():
            c.add_metric([reason], n)
        yield c
        yield from ssh_families(ssh)
        from .db import db_families

        yield from db_families(db)
        g = GaugeMetricFamily("netops_collect_round_duration_seconds", "Wall time of the last collection round")
        g.add_metric([], rnd["duration_s"])
        yield g
        g = GaugeMetricFamily("netops_collect_round_timestamp_seconds", "When the last collection round finished")
        g.add_metric([], rnd["finished"])
        yield g
        g = GaugeMetricFamily("netops_collect_round_failed_targets", "Targets that failed in the last round")
        g.add_metric([], rnd["failed"])
        yield g


def snmp_families(snmp: list, totals: dict):
    lab = list(LABELS)
    fam = {
        "up": GaugeMetricFamily("netops_snmp_up", "1 if the device answered SNMP in the last round", labels=lab),
        "dur": GaugeMetricFamily("netops_snmp_scrape_duration_seconds", "Time to poll the device", labels=lab),
        "uptime": GaugeMetricFamily("netops_device_uptime_seconds", "sysUpTime", labels=lab),
        "info": GaugeMetricFamily("netops_device_info", "sysName, sysObjectID and the vendor platform it maps to",
                                  labels=[*lab, "sys_name", "sys_object_id", "vendor"]),
        "cpu": GaugeMetricFamily("netops_device_cpu_utilization_ratio", "CPU utilisation 0-1 (vendor entity MIB or hrProcessorLoad)", labels=lab),
        "mem": GaugeMetricFamily("netops_device_memory_utilization_ratio", "Memory utilisation 0-1", labels=lab),
        "ssize": GaugeMetricFamily("netops_storage_size_bytes", "hrStorageSize × units", labels=[*lab, "storage"]),
        "sused": GaugeMetricFamily("netops_storage_used_bytes", "hrStorageUsed × units", labels=[*lab, "storage"]),
        "oper": GaugeMetricFamily("netops_interface_oper_status", "ifOperStatus (1 up, 2 down, 7 lowerLayerDown…)", labels=list(IF_LABELS)),
        "admin": GaugeMetricFamily("netops_interface_admin_status", "ifAdminStatus (1 up, 2 down)", labels=list(IF_LABELS)),
        "speed": GaugeMetricFamily("netops_interface_speed_bits_per_second", "ifHighSpeed × 10^6 (else ifSpeed)", labels=list(IF_LABELS)),
        "ifinfo": GaugeMetricFamily("netops_interface_info", "ifAlias and ifDescr of an interface",
                                    labels=[*IF_LABELS, "alias", "descr"]),
        "table": GaugeMetricFamily("netops_snmp_table_up", "1 if the table answered in full in the last round",
                                   labels=[*lab, "table"]),
        **{k: GaugeMetricFamily(n, h, labels=[*lab, "sensor"]) for k, (n, h) in ENVIRONMENT.items()},
    }
    counters = {c: CounterMetricFamily(counter_metric(c), h + "; monotonic across wraps and agent restarts",
                                       labels=list(IF_LABELS)) for c, h in COUNTER_HELP.items()}
    self_m = {k: CounterMetricFamily(f"netops_snmp_{k}", h, labels=lab) for k, h in
              {"pdus": "SNMP request PDUs sent", "retries": "SNMP requests retried",
               "timeouts": "SNMP requests that timed out", "varbinds": "Varbinds received"}.items()}
    for labels, r in snmp:
        lv = [labels[k] for k in LABELS]
        fam["up"].add_metric(lv, 1 if r.ok else 0)
        fam["dur"].add_metric(lv, r.duration_s)
        for k, f in self_m.items():
            f.add_metric(lv, totals.get(labels["device"], {}).get(k, 0))
        if not r.ok:
            continue
        s = r.system
        if s["uptime_s"] is not None:
            fam["uptime"].add_metric(lv, s["uptime_s"])
        for table, why in r.tables.items():
            fam["table"].add_metric([*lv, table], 0 if why else 1)
        for kind, sensors in r.environment.items():
            for sensor, v in sensors.items():
                fam[kind].add_metric([*lv, sensor], float(v))
        fam["info"].add_metric([*lv, s["name"] or "", s["object_id"] or "", s["vendor"] or ""], 1)
        if r.cpu_ratio is not None:
            fam["cpu"].add_metric(lv, r.cpu_ratio)
        if r.memory_ratio is not None:
            fam["mem"].add_metric(lv, r.memory_ratio)
        for st in r.storage:
            fam["ssize"].add_metric([*lv, st["storage"]], st["size_bytes"])
            fam["sused"].add_metric([*lv, st["storage"]], st["used_bytes"])
        for i in r.interfaces.values():
            il = [*lv, str(i["index"]), i["name"]]
            fam["ifinfo"].add_metric([*il, i["alias"], i["descr"]], 1)
            fam["oper"].add_metric(il, STATUS.get(i["oper_status"], 4))
            fam["admin"].add_metric(il, STATUS.get(i["admin_status"], 4))
            if i["speed_bps"] is not None:
                fam["speed"].add_metric(il, i["speed_bps"])
            for c, v in i["counters"].items():
                counters[c].add_metric(il, v)
    yield from fam.values()
    yield from counters.values()
    yield from self_m.values()


def ssh_families(ssh: list):
    lab = list(LABELS)
    fam = {
        "up": GaugeMetricFamily("netops_ssh_up", "1 if the SSH health commands ran in the last round", labels=lab),
        "nbr": GaugeMetricFamily("netops_ospf_neighbors", "OSPF neighbours by state (over SSH)", labels=[*lab, "state"]),
        "load1": GaugeMetricFamily("netops_host_load1", "1-minute load average", labels=lab),
        "disk": GaugeMetricFamily("netops_host_root_filesystem_used_ratio", "Root file system used 0-1", labels=lab),
        "failed": GaugeMetricFamily("netops_host_failed_units", "systemd units in the failed state", labels=lab),
        "cpu": GaugeMetricFamily("netops_ssh_cpu_utilization_ratio", "CPU 0-1 from the device CLI", labels=lab),
        "mem": GaugeMetricFamily("netops_ssh_memory_utilization_ratio", "Memory 0-1 from the device CLI / free", labels=lab),
    }
    il = [*lab, "interface"]
    fam["ifup"] = GaugeMetricFamily("netops_ssh_interface_oper_up", "1 if the kernel's operstate is UP (ip -s -j link)",
                                    labels=il)
    counters = {c: CounterMetricFamily(f"netops_ssh_{counter_metric(c)[len('netops_'):]}",
                                       f"{c.replace('_', ' ')}: the device kernel's 64-bit counter (ip -s -j link)",
                                       labels=il) for c in SSH_COUNTERS}
    for s in ssh:
        lv = [s.get(k, "") for k in LABELS]
        fam["up"].add_metric(lv, 1 if s["ok"] else 0)
        if not s["ok"]:
            continue
        for i in s.get("interfaces", []):
            fam["ifup"].add_metric([*lv, i["name"]], 1 if i["oper_status"] == "up" else 0)
            for c, v in i["counters"].items():
                if v is not None:
                    counters[c].add_metric([*lv, i["name"]], v)
        if "ospf_neighbors" in s:
            states: dict[str, int] = {}
            for n in s["ospf_neighbors"]:
                states[n["state"]] = states.get(n["state"], 0) + 1
            for st, c in sorted(states.items()):
                fam["nbr"].add_metric([*lv, st], c)
        for key, f in (("load1", "load1"), ("disk_used_ratio", "disk"), ("cpu_ratio", "cpu"), ("memory_ratio", "mem")):
            if s.get(key) is not None:
                fam[f].add_metric(lv, s[key])
        if "failed_units" in s:
            fam["failed"].add_metric(lv, len(s["failed_units"]))
    yield from fam.values()
    yield from counters.values()
