"""SNMP traps in the lab: the routers' snmpd send to their province's trap receiver (`monitor up` runs it beside
the collector), which posts to the province's Alertmanager. The collector polls every 10 minutes here, so an alert
seen within seconds of a change came from the trap, before the next poll. Each test restores what it changed."""
from __future__ import annotations

import json
import time
from datetime import datetime, timezone
import urllib.request

import pytest

from jinbao_netops import inventory
from jinbao_netops.lab.runtime import Lab
from jinbao_netops.monitoring import generate as gen
from jinbao_netops.monitoring.stack import Stack, endpoints, http_json

from .conftest import netops, until

pytestmark = pytest.mark.lab
INV = inventory.load(inventory.DEFAULT_INVENTORY)
GD = endpoints(INV)["guangdong"]
MON = str(INV.devices[GD["monitor"]].management)
SLOW_POLL = ["--scrape-interval", "5", "--collect-interval", "600", "--max-for", "10"]
ROUTER, IFACE = "guangzhou-r1", "eth6"   # the planned link longgang-up2: down and up again changes no route


@pytest.fixture(scope="module")
def stack(lab):
    r = netops("monitor", "up", "--json", *SLOW_POLL, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    try:
        yield json.loads(r.stdout)
    finally:
        down = netops("monitor", "down", "--json", timeout=300)
    assert down.returncode == 0, down.stdout + down.stderr
    assert Stack(INV, Lab("jinbao")).leftovers() == []


def trap_alerts(alertname: str, device: str, **labels: str) -> list[dict]:
    return [a for a in http_json(f"{GD['alertmanager']}/api/v2/alerts")
            if a["labels"].get("alertname") == alertname and a["labels"].get("device") == device
            and all(a["labels"].get(k) == v for k, v in labels.items())]


def metrics(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://{MON}:{port}/metrics", timeout=5) as r:
        return {ln.rsplit(" ", 1)[0]: float(ln.rsplit(" ", 1)[1]) for ln in r.read().decode().splitlines()
                if ln and not ln.startswith("#")}


def test_link_down_trap_is_an_alert_before_the_next_poll(stack):
    node = Lab("jinbao").node(ROUTER)
    last_poll = metrics(gen.COLLECTOR_PORT)["netops_collect_round_timestamp_seconds"]
    changed, start = time.time(), time.monotonic()
    node.exec(["ip", "link", "set", IFACE, "down"], check=True)
    try:
        [alert] = until(f"TrapLinkDown of {ROUTER} {IFACE} in guangdong's Alertmanager",
                        lambda: trap_alerts("TrapLinkDown", ROUTER, ifname=IFACE), 30)
        took = time.monotonic() - start
        labels = dict(alert["labels"])
        assert labels.pop("ifindex").isdigit()
        assert labels == {"alertname": "TrapLinkDown", "severity": "critical", "source": "snmp-trap", "level": "city",
                          "province": "guangdong", "city": "guangzhou", "site": "guangzhou", "device": ROUTER,
                          "ifname": IFACE}
        # no poll in between: the collector's last round is still the one from before the change
        assert metrics(gen.COLLECTOR_PORT)["netops_collect_round_timestamp_seconds"] == last_poll < changed
        assert took < 30
        assert metrics(gen.TRAP_METRICS_PORT)['netops_trap_received_total{version="v3"}'] >= 1
    finally:
        node.exec(["ip", "link", "set", IFACE, "up"], check=True)
    until("linkUp ends the alert", lambda: not trap_alerts("TrapLinkDown", ROUTER, ifname=IFACE), 30)


def test_v2c_device_cold_start_arrives_as_an_acknowledged_inform(stack):
    legacy = next(d for d, dev in INV.devices.items() if dev.snmp_version == "v2c" and gen.trap_receiver(INV, d) == MON)
    before = datetime.now(timezone.utc)
    Lab("jinbao").node(legacy).exec(["systemctl", "restart", "snmpd"], check=True, timeout=60)

    def fresh() -> list[dict]:  # this restart's cold start, not an older alert
        return [a for a in trap_alerts("TrapColdStart", legacy) if datetime.fromisoformat(a["startsAt"].replace("Z", "+00:00")) >= before]

    [alert] = until(f"TrapColdStart of {legacy}", fresh, 30)
    assert alert["labels"]["site"] == INV.devices[legacy].site and alert["labels"]["severity"] == "warning"
    assert metrics(gen.TRAP_METRICS_PORT)['netops_trap_received_total{version="v2c"}'] >= 1
