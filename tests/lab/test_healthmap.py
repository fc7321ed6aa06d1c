"""The health map live: `netops monitor web` over the lab's monitoring stack (real Prometheus per
province from `netops monitor up`), opened in real headless Chromium. The page shows every site of the
embedded default, turns a county red when its router is stopped (every interface down, management
included: a router that is off), lists the NodeDown alert, and everything is restored afterwards.

The screenshot is kept as a test artifact in ``$NETOPS_TEST_ARTIFACTS`` (default ``out/test-artifacts``,
outside git; pytest's own temporary directories are rotated away by later sessions); the test prints
its path (run with -s to see it)."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from cdp import Chromium

from jinbao_netops import inventory
from jinbao_netops.lab.runtime import Lab

from .conftest import REPO, netops, until as wait_until

pytestmark = pytest.mark.lab
INV = inventory.load(inventory.DEFAULT_INVENTORY)
FAST = ["--scrape-interval", "5", "--collect-interval", "5", "--max-for", "10"]  # the lab's short faults
WAIT = 150  # generous: 40 nodes share this 2-core machine with whatever else runs
ROUTER, SITE = "huadu-r1", "huadu"
ARTIFACTS = Path(os.environ.get("NETOPS_TEST_ARTIFACTS", REPO / "out" / "test-artifacts"))


def health(url: str) -> dict:
    with urllib.request.urlopen(url + "api/health", timeout=30) as r:
        return json.loads(r.read())


def until(what: str, fn, timeout: float = WAIT):
    return wait_until(what, fn, timeout)


@pytest.fixture(scope="module")
def healthmap(lab):
    """The stack up (taken down again at the end), and the map serving on loopback."""
    r = netops("monitor", "up", "--json", *FAST, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k != "NETOPS_INVENTORY"}
    web = subprocess.Popen([sys.executable, "-m", "jinbao_netops.cli", "monitor", "web", "--json", "--refresh", "2",
                            "--listen", f"127.0.0.1:{port}"], cwd=REPO, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    try:
        first = json.loads(web.stdout.readline() or "{}")
        assert first.get("ok"), web.stderr.read() if web.poll() is not None else first
        assert {s["scope"] for s in first["sources"]} == {"guangdong", "sichuan", INV.ministry.id}
        # the baseline: every Prometheus answers and every site has data, the ministry's own included
        until("every site has live data",
              lambda: (h := health(first["url"])) and all(s["ok"] for s in h["sources"])
              and all(h["sites"][s]["health"] != "unknown" for s in INV.sites) and h)
        yield first["url"]
    finally:
        web.send_signal(signal.SIGTERM)
        code = web.wait(timeout=30)
        down = netops("monitor", "down", "--json", timeout=300)
    assert code == 0, web.stderr.read()
    assert down.returncode == 0, down.stdout + down.stderr


def test_check_prints_the_address_and_reads_every_prometheus(healthmap):
    r = netops("monitor", "web", "--check", "--json", "--listen", "127.0.0.1:0")
    rep = json.loads(r.stdout)
    assert rep["served"] and rep["url"].startswith("http://127.0.0.1:")
    assert [(s["scope"], s["ok"]) for s in rep["sources"]] == [("guangdong", True), ("sichuan", True), (INV.ministry.id, True)]
    assert r.returncode in (0, 1)  # 1 only if a site is down right now (another test's fault); not partial


def test_router_stopped_turns_its_site_red(healthmap):
    lab = Lab(INV.network.id)
    names = [i["ifname"] for i in json.loads(lab.node(ROUTER).exec(["ip", "-j", "link", "show"], check=True).stdout)
             if i["ifname"] != "lo"]
    assert "mgmt0" in names and set(INV.devices[ROUTER].interfaces) <= set(names)
    before = full_neighbours(lab)
    assert before >= 1
    with Chromium() as page:
        page.goto(healthmap)
        page.wait_for("document.body.dataset.ready === '1'", 60)
        drawn = {}
        for place in sorted({s.parent for s in INV.sites.values() if s.parent}):  # the map draws one place at a time
            page.eval(f"location.hash = '#/{place}'")
            page.wait_for(f"document.body.dataset.view === '{place}'", 30)
            drawn.update(page.eval("Object.fromEntries([...document.querySelectorAll('g.site')].map(g => [g.dataset.site, g.dataset.health]))"))
        assert set(drawn) == set(INV.sites) and len(drawn) == 17
        assert drawn[SITE] == "ok", drawn
        assert all(drawn[s] != "unknown" for s in INV.sites), drawn
        page.eval(f"location.hash = '#/{SITE}'")  # its city: the county, its uplink and the city's alerts
        page.wait_for(f"document.body.dataset.place === '{SITE}'", 30)
        try:
            for n in names:
                lab.node(ROUTER).exec(["ip", "link", "set", n, "down"], check=True)
            page.wait_for(f"document.querySelector('g.site[data-site=\"{SITE}\"]').dataset.health === 'down'", WAIT)
            page.wait_for("[...document.querySelectorAll('#alert-list li.firing')].some(li => li.innerText.includes('NodeDown'))", WAIT)
            assert page.eval("document.querySelector('path.link[data-link=\"huadu-up1\"]').dataset.health") == "down"
            page.eval(f"document.querySelector('g.site[data-site=\"{SITE}\"]').dispatchEvent(new MouseEvent('click'))")
            assert ROUTER in page.eval("document.getElementById('detail').innerText")
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            shot = page.screenshot(ARTIFACTS / f"healthmap-{SITE}-down.png")
            print(f"\nscreenshot 截图: {shot}")
            assert shot.stat().st_size > 20_000
        finally:
            for n in names:
                lab.node(ROUTER).exec(["ip", "link", "set", n, "up"], check=True)
        page.wait_for(f"document.querySelector('g.site[data-site=\"{SITE}\"]').dataset.health === 'ok'", WAIT)
    # routing is back too, for the tests after this one
    until(f"{ROUTER}'s OSPF adjacencies Full again", lambda: full_neighbours(lab) == before)


def full_neighbours(lab: Lab) -> int:
    r = lab.node(ROUTER).exec(["vtysh", "-c", "show ip ospf neighbor json"], check=True)
    return sum((n.get("nbrState") or n.get("state") or "").startswith("Full")
               for ns in json.loads(r.stdout)["neighbors"].values() for n in ns)


def test_replication_pairs_on_the_map(healthmap, lab):
    """The inventory's pairs streaming (`dr setup`, idempotent) are ok on the map with the inventory's primaries
    serving; the asynchronous standby's database stopped turns its pair broken (a finding of --check), and it
    comes back. (Not the synchronous one: its primary's commits would wait for it.)"""
    r = netops("dr", "setup", "--json", env=lab["env"], timeout=900)
    if r.returncode:  # the DR servers still standalone and seeded by earlier tests (as test_dr.py does)
        r = netops("dr", "setup", "--force", "--json", env=lab["env"], timeout=900)
    assert r.returncode == 0, r.stdout + r.stderr
    h = until("both pairs ok on the map", lambda: (h := health(healthmap))
              and all(p["state"] == "ok" for p in h["replication"].values()) and h)
    assert {pid: p["serving"] for pid, p in h["replication"].items()} == {
        "gd-dr-db1": "gd-db1", "sc-dr-db1": "sc-db1", "gd-db1": "panyu-db1", "sc-db1": "shuangliu-db1"}
    try:
        netops("lab", "exec", "sc-dr-db1", "--", "systemctl", "stop", "postgresql", check=True)
        # a MariaDB replica whose SQL thread stopped (the county's copy no longer applied): its pair broken too
        netops("lab", "exec", "sc-db1", "--", "mariadb", "-e", "STOP REPLICA SQL_THREAD", check=True)
        until("both pairs broken on the map", lambda: all(health(healthmap)["replication"][pid]["state"] == "broken"
                                                          for pid in ("sc-dr-db1", "sc-db1")))
        check = netops("monitor", "web", "--check", "--json", "--listen", "127.0.0.1:0")
        assert check.returncode == 1 and {"sc-dr-db1", "sc-db1"} <= set(json.loads(check.stdout)["broken_pairs"]), check.stdout
    finally:
        netops("lab", "exec", "sc-dr-db1", "--", "systemctl", "start", "postgresql", check=True)
        netops("lab", "exec", "sc-db1", "--", "mariadb", "-e", "START REPLICA SQL_THREAD", check=True)
    until("both caught up and ok on the map", lambda: all(health(healthmap)["replication"][pid]["state"] == "ok"
                                                          for pid in ("sc-dr-db1", "sc-db1")))
