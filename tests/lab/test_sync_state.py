"""A synchronous pair that silently falls back to async, on the live lab: the collector reads from the real
PostgreSQL how many standbys gd-db1's commits wait for (netops_pg_sync_standbys) while its standby keeps streaming,
and `dr status` reports the standby's sync_state. The rule that turns the reading into SyncReplicationDegraded is
tested by promtool (tests/fixtures/monitor/guangdong_test.yml), the map's judgement by tests/test_monitor_web.py."""
from __future__ import annotations

import json

import pytest

from .conftest import netops, until
from .test_dr import SYNC, psql, replicated, status  # noqa: F401  (the fixture: the pairs `dr setup` built)

pytestmark = pytest.mark.lab


def readings(env) -> dict:
    """gd-db1's replication readings, as one collection round of its province takes them."""
    p = netops("collect", "once", "--json", "--scope", "guangdong", "--no-ssh", "--timeout", "5", "--retries", "2",
               "--device-deadline", "60", "--deadline", "120", env=env, timeout=300)
    assert p.returncode in (0, 3), p.stderr
    (h,) = [h for h in json.loads(p.stdout)["databases"] if h["device"] == SYNC[0]]
    assert h["up"], h["error"]
    return h["metrics"]


@pytest.mark.usefixtures("replicated")
def test_a_sync_primary_that_stops_waiting_for_its_standby_is_read_as_such(lab):
    netops("collect", "prepare-lab", "--json", env=lab["env"], timeout=600, check=True)  # the monitoring role
    until("dr status all ok", lambda: status(lab["env"])[0] == 0, 60)
    m = readings(lab["env"])
    assert m["replicas"] == 1 and m["sync_standbys"] == 1, m
    try:
        psql(SYNC[0], "ALTER SYSTEM SET synchronous_standby_names = ''")  # emptied by hand
        psql(SYNC[0], "SELECT pg_reload_conf()")
        m = until("gd-db1 waits for no standby", lambda: (lambda m: m if m["sync_standbys"] == 0 else None)(readings(lab["env"])), 60)
        assert m["replicas"] == 1, m  # still streaming: SyncReplicationDegraded's case, not ReplicationBroken's
        rc, pairs = status(lab["env"])
        assert rc == 1 and pairs[SYNC[1]]["state"] == "streaming" and pairs[SYNC[1]]["sync_state"] == "async", pairs
    finally:
        psql(SYNC[0], "ALTER SYSTEM RESET synchronous_standby_names")  # back to what `dr setup` wrote
        psql(SYNC[0], "SELECT pg_reload_conf()")
    until("dr status all ok again", lambda: status(lab["env"])[0] == 0, 60)
    assert readings(lab["env"])["sync_standbys"] == 1
