"""Real-time replication to the DR site on the live lab: `netops dr setup` builds PostgreSQL streaming
replication for the inventory's pairs (Guangdong synchronous, Sichuan asynchronous) idempotently, a write on
the primary reaches the standby, `dr status` reads lag < 1 s at rest, and a standby killed and restarted
catches up (the primary's slot kept its WAL) while `dr status` reports it broken meanwhile; the audit judges
8.1.4.9 b/c on what the primaries report; point-in-time recovery from the WAL archive; a sync pair fallen back to
async is read as such; the failover drill."""
from __future__ import annotations

import json
import time

import pytest

from .conftest import netops, until

pytestmark = pytest.mark.lab
SYNC, ASYNC = ("gd-db1", "gd-dr-db1"), ("sc-db1", "sc-dr-db1")
MDB = ("panyu-db1", "gd-db1")  # a county's MariaDB and its replica at the province data centre


def mariadb(node: str, sql: str, check: bool = True) -> str:
    r = netops("lab", "exec", node, "--", "mariadb", "-N", "-B", "-e", sql, check=False)
    if check:
        assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def psql(node: str, sql: str, db: str = "postgres", check: bool = True) -> str:
    r = netops("lab", "exec", node, "--", "runuser", "-u", "postgres", "--", "psql", "-X", "-A", "-t", "-q",
               "-v", "ON_ERROR_STOP=1", "-d", db, "-c", sql, check=False)
    if check:
        assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def audit(env, host: str) -> dict[str, dict]:
    r = netops("audit", "--scope", host, "--json", env=env)
    assert r.returncode in (0, 1), r.stderr
    h = next(h for h in json.loads(r.stdout)["hosts"] if h["host"] == host)
    assert h["status"] == "ok", h["error"]
    return {x["id"]: x for x in h["results"] if x["id"] in ("data-realtime", "hot-redundancy")}


def status(env) -> tuple[int, dict]:
    r = netops("dr", "status", "--json", env=env)
    return r.returncode, {p["standby"]: p for p in json.loads(r.stdout)["pairs"]}


@pytest.fixture(scope="module")
def replicated(lab):
    # the DR servers ran as standalone servers until now, and earlier tests (backup) seeded them: without
    # --force setup refuses to discard their databases
    refused = netops("dr", "setup", "--json", env=lab["env"], timeout=900)
    if refused.returncode:
        assert "--force" in refused.stdout, refused.stdout
    r = netops("dr", "setup", "--force", "--json", env=lab["env"], timeout=900)
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout)


def test_setup_is_idempotent_and_a_write_reaches_the_standby(lab, replicated):
    assert replicated["ok"] and {(p["standby"], p["service"]) for p in replicated["pairs"]} == {
        (SYNC[1], "postgresql"), (ASYNC[1], "postgresql"), (MDB[1], "mariadb"), ("sc-db1", "mariadb")}
    again = json.loads(netops("dr", "setup", "--json", env=lab["env"], check=True, timeout=900).stdout)
    assert again["changed"] is False, again["pairs"]
    for primary, standby in (SYNC, ASYNC):
        assert psql(standby, "SELECT pg_is_in_recovery()") == "t"
        psql(primary, "CREATE TABLE IF NOT EXISTS netops_dr_probe (n int PRIMARY KEY, at timestamptz DEFAULT now())")
        psql(primary, "INSERT INTO netops_dr_probe (n) SELECT COALESCE(max(n), 0) + 1 FROM netops_dr_probe")
        last = psql(primary, "SELECT max(n) FROM netops_dr_probe")
        until(f"{standby} has row {last}", lambda: psql(standby, "SELECT max(n) FROM netops_dr_probe", check=False) == last, 10)
    # the replication login is admitted from the standby's business address only, over TLS
    hba = netops("lab", "exec", SYNC[0], "--", "sh", "-c", "cat /etc/postgresql/*/main/pg_hba.conf", check=True).stdout
    assert "hostssl replication netops_replication 10.44.1.11/32 scram-sha-256" in hba
    assert psql(SYNC[0], "SELECT bool_and(ssl) FROM pg_stat_ssl JOIN pg_stat_replication USING (pid)") == "t"
    # verified TLS: each standby (and the WAL archive) checks the primary's certificate against the lab's CA and the
    # name it connects to; a client expecting another name (an impostor's) is refused before it authenticates
    for primary, standby in (SYNC, ASYNC):
        assert "sslmode=verify-full" in psql(standby, "SELECT conninfo FROM pg_stat_wal_receiver")
    wrong = netops("lab", "exec", SYNC[1], "--", "runuser", "-u", "postgres", "--", "psql", "-X", "-d",
                   "host=impostor hostaddr=10.44.0.10 port=5432 user=nobody dbname=postgres connect_timeout=5 "
                   "sslmode=verify-full sslrootcert=/var/lib/postgresql/.netops-tls/ca.crt", "-c", "SELECT 1")
    assert wrong.returncode != 0 and 'does not match host name "impostor"' in wrong.stderr, wrong.stderr


def test_status_at_rest_then_a_killed_standby_is_reported_and_catches_up(lab, replicated, tmp_path):
    rc, pairs = status(lab["env"])
    assert rc == 0, pairs
    assert pairs[SYNC[1]]["sync_state"] == "sync" and pairs[ASYNC[1]]["sync_state"] == "async"
    assert all(p["state"] == "streaming" and p["lag_seconds"] < 1 and bool(p["slot_active"]) is (p["service"] == "postgresql")
               for p in pairs.values()), pairs
    # the audit asks the primaries themselves: streaming within the lag target is 符合; no failover drill yet (an
    # empty drill record: the machine's own may hold a main job's drills, which made this 符合 after one had run)
    no_drills = {**lab["env"], "NETOPS_BACKUP_STATE": str(tmp_path)}
    for primary in (SYNC[0], ASYNC[0]):
        v = audit(no_drills, primary)
        assert v["data-realtime"]["verdict"] == "符合", v["data-realtime"]["findings"]
        assert v["hot-redundancy"]["verdict"] == "部分符合", v["hot-redundancy"]["findings"]
    assert audit(lab["env"], SYNC[1])["data-realtime"]["verdict"] == "不适用"  # the standby: its primary is judged

    primary, standby = ASYNC  # the asynchronous pair: the primary keeps committing while its standby is down
    netops("lab", "exec", standby, "--", "systemctl", "kill", "-s", "KILL", "postgresql@15-main", check=True)
    rc, pairs = until("dr status reports the killed standby", lambda: (lambda s: s if s[0] == 1 else None)(status(lab["env"])), 30)
    assert not pairs[standby]["ok"] and pairs[standby]["state"] == "disconnected" and pairs[SYNC[1]]["ok"], pairs
    v = audit(lab["env"], primary)["data-realtime"]
    assert v["verdict"] == "不符合" and "state disconnected" in json.dumps(v["findings"]), v["findings"]
    psql(primary, "INSERT INTO netops_dr_probe (n) SELECT max(n) + 1 FROM netops_dr_probe")
    last = psql(primary, "SELECT max(n) FROM netops_dr_probe")
    netops("lab", "exec", standby, "--", "systemctl", "start", "postgresql@15-main", check=True)
    until(f"{standby} caught up to row {last}", lambda: psql(standby, "SELECT max(n) FROM netops_dr_probe", check=False) == last, 60)
    until("dr status all ok again", lambda: status(lab["env"])[0] == 0, 30)


def test_a_county_mariadb_replicates_by_gtid_over_verified_tls_and_a_killed_replica_catches_up(lab, replicated):
    """panyu-db1's MariaDB → gd-db1: the replica applies the primary's binary log by GTID over TLS it verifies
    (the lab CA, the primary's address), as an account admitted from the replica's address only; a write reaches
    it; killed, `dr status` reports it, the primary keeps committing, and restarted it catches up."""
    primary, replica = MDB
    st = netops("lab", "exec", replica, "--", "mariadb", "--vertical", "-e", "SHOW REPLICA STATUS", check=True).stdout
    for want in ("Master_Host: 10.44.17.10", "Using_Gtid: Slave_Pos", "Master_SSL_Verify_Server_Cert: Yes",
                 "Master_SSL_CA_File: /etc/mysql/netops-tls/ca.crt", "Slave_IO_Running: Yes", "Slave_SQL_Running: Yes"):
        assert want in st, st
    # admitted from the replica's business address, and the binary log archive's store (gd-bak1's management address)
    assert mariadb(primary, "SELECT host, ssl_type FROM mysql.user WHERE user = 'netops_replication' ORDER BY host") == \
        "10.254.44.14\tANY\n10.44.0.10\tANY"
    assert mariadb(replica, "SELECT @@read_only") == "1"
    mariadb(primary, "CREATE DATABASE IF NOT EXISTS netops_dr_probe; "
                     "CREATE TABLE IF NOT EXISTS netops_dr_probe.t (n int PRIMARY KEY); "
                     "INSERT INTO netops_dr_probe.t SELECT COALESCE(max(n), 0) + 1 FROM netops_dr_probe.t")
    last = mariadb(primary, "SELECT max(n) FROM netops_dr_probe.t")
    until(f"{replica} has row {last}", lambda: mariadb(replica, "SELECT max(n) FROM netops_dr_probe.t", check=False) == last, 10)

    netops("lab", "exec", replica, "--", "systemctl", "kill", "-s", "KILL", "mariadb", check=True)
    rc, pairs = until("dr status reports the killed replica", lambda: (lambda s: s if s[0] == 1 else None)(status(lab["env"])), 30)
    assert not pairs[replica]["ok"] and pairs[SYNC[1]]["ok"], pairs
    mariadb(primary, "INSERT INTO netops_dr_probe.t SELECT max(n) + 1 FROM netops_dr_probe.t")
    last = mariadb(primary, "SELECT max(n) FROM netops_dr_probe.t")
    netops("lab", "exec", replica, "--", "systemctl", "start", "mariadb", check=True)
    until(f"{replica} caught up to row {last}", lambda: mariadb(replica, "SELECT max(n) FROM netops_dr_probe.t", check=False) == last, 60)
    rc, pairs = until("dr status all ok again", lambda: (lambda s: s if s[0] == 0 else None)(status(lab["env"])), 30)
    assert pairs[replica]["state"] == "streaming" and pairs[replica]["lag_bytes"] == 0, pairs[replica]
    mariadb(primary, "DROP DATABASE netops_dr_probe")


def archive(env, server: str = SYNC[0]) -> dict:
    (row,) = [a for a in json.loads(netops("dr", "status", "--json", env=env).stdout)["archives"] if a["server"] == server]
    return row


def test_mariadb_point_in_time_recovery_from_the_archived_binary_log(lab, replicated, tmp_path):
    """panyu-db1: a base backup (every database, its GTID position), transaction 1, the target, transaction 2: the
    recovery on the store (the base loaded into a scratch instance, the archived binary log applied up to the target)
    holds 1 and not 2, in a 0600 dump; panyu-db1 itself is untouched. Binary log events carry whole seconds: the
    transactions are seconds apart."""
    env, server = lab["env"], MDB[0]
    r = netops("backup", "run", "--scope", server, "--kind", "databases", "--json", env=env, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"{server}:mariadb:basebackup" in r.stdout
    mariadb(server, "CREATE DATABASE IF NOT EXISTS pitr_probe; CREATE TABLE pitr_probe.t (n int PRIMARY KEY); "
                    "INSERT INTO pitr_probe.t VALUES (1)")
    time.sleep(2.2)
    target = mariadb(server, "SELECT DATE_FORMAT(UTC_TIMESTAMP(6), '%Y-%m-%dT%H:%i:%s.%f+00:00')")
    time.sleep(2.2)
    mariadb(server, "INSERT INTO pitr_probe.t VALUES (2)")
    row = until("the archive has all of panyu-db1's binary log", lambda: (a := archive(env, server))["lag_bytes"] == 0 and a, 30)
    assert row["ok"] and row["state"] == "streaming" and row["base_backups"] >= 1 and row["pitr_from"], row
    out = tmp_path / "panyu-db1.sql"
    r = netops("dr", "pitr", server, "--to", target, "--out", str(out), "--json", env=env, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    rep = json.loads(r.stdout)
    assert rep["service"] == "mariadb" and rep["store"] == "gd-bak1" and rep["last_transaction"] < target, rep
    dump = out.read_text()
    assert "Current Database: `mysql`" not in dump  # the business databases only
    probe = dump.split("Current Database: `pitr_probe`")[1].split("Current Database:")[0].replace("VALUES\n", "VALUES ")
    assert "INSERT INTO `t` VALUES (1);" in probe, probe
    assert out.stat().st_mode & 0o777 == 0o600
    assert mariadb(server, "SELECT group_concat(n ORDER BY n) FROM pitr_probe.t") == "1,2"
    mariadb(server, "DROP DATABASE pitr_probe")
    # the collector counts who reads panyu-db1's binary log (BinlogReadersMissing's reading): its replica and its archive
    netops("collect", "prepare-lab", "--json", env=env, timeout=600, check=True)
    assert readings(env, server, "mariadb")["binlog_readers"] == 2


def test_point_in_time_recovery_finds_exactly_the_earlier_transaction(lab, replicated, tmp_path):
    """A base backup, transaction 1, the target time, transaction 2: gd-db1 recovered to the target on its backup
    store (base backup + the WAL its store received) holds 1 and not 2, in a 0600 dump; gd-db1 itself is untouched.
    `dr status` shows the archive receiving, and the window opened by the base backup."""
    env, server = lab["env"], SYNC[0]
    assert [(a["server"], a["service"], a["store"]) for a in replicated["archives"]] == [
        (server, "postgresql", "gd-bak1"), (MDB[0], "mariadb", "gd-bak1")], replicated["archives"]
    r = netops("backup", "run", "--scope", server, "--kind", "databases", "--json", env=env, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    psql(server, "CREATE TABLE netops_pitr_probe (n int PRIMARY KEY, at timestamptz DEFAULT clock_timestamp())")
    psql(server, "INSERT INTO netops_pitr_probe (n) VALUES (1)")
    time.sleep(1.5)
    target = psql(server, "SELECT clock_timestamp()")  # the server's clock: the one its commits are stamped with
    time.sleep(1.5)
    psql(server, "INSERT INTO netops_pitr_probe (n) VALUES (2)")
    # everything the server wrote is flushed on the store, as the server sees its receiver
    row = until("the archive has all of gd-db1's WAL", lambda: (a := archive(env))["lag_bytes"] == 0 and a, 30)
    assert row["ok"] and row["state"] == "streaming" and row["base_backups"] >= 1 and row["pitr_from"], row
    out = tmp_path / "gd-db1.sql"
    r = netops("dr", "pitr", server, "--to", target, "--out", str(out), "--json", env=env, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    rep = json.loads(r.stdout)
    assert rep["store"] == "gd-bak1" and rep["last_transaction"] and rep["last_transaction"] < target, rep
    dump = out.read_text()
    copy = dump[dump.index("COPY public.netops_pitr_probe"):]
    assert [ln.split("\t")[0] for ln in copy.splitlines()[1:copy.splitlines().index("\\.")]] == ["1"], copy[:300]
    assert out.stat().st_mode & 0o777 == 0o600 and "SCRAM-SHA-256$" not in dump  # no role password hashes
    assert psql(server, "SELECT string_agg(n::text, ',' ORDER BY n) FROM netops_pitr_probe") == "1,2"
    # a time the archive has not reached (its receiver stopped, then a commit): refused, saying what to do, nothing written
    netops("lab", "exec", "gd-bak1", "--", "systemctl", "stop", "netops-wal@gd-db1", env=env, check=True)
    try:
        psql(server, "INSERT INTO netops_pitr_probe (n) VALUES (3)")
        time.sleep(1.5)
        late = psql(server, "SELECT clock_timestamp()")
        r = netops("dr", "pitr", server, "--to", late, "--out", str(tmp_path / "late.sql"), env=env, timeout=600)
        assert r.returncode == 2 and "pick an earlier time" in r.stderr, r.stdout + r.stderr
        assert not (tmp_path / "late.sql").exists() and "Traceback" not in r.stderr
    finally:
        netops("lab", "exec", "gd-bak1", "--", "systemctl", "start", "netops-wal@gd-db1", env=env, check=True)


def readings(env, device: str = SYNC[0], service: str = "postgresql") -> dict:
    """A database's readings (gd-db1's PostgreSQL by default), as one collection round of its province takes them."""
    p = netops("collect", "once", "--json", "--scope", "guangdong", "--no-ssh", "--timeout", "5", "--retries", "2",
               "--device-deadline", "60", "--deadline", "120", env=env, timeout=300)
    assert p.returncode in (0, 3), p.stderr
    (h,) = [h for h in json.loads(p.stdout)["databases"] if h["device"] == device and h["service"] == service]
    assert h["up"], h["error"]
    return h["metrics"]


def test_a_sync_primary_that_stops_waiting_for_its_standby_is_read_as_such(lab, replicated):
    """A synchronous pair that silently falls back to async: the collector reads from the real PostgreSQL how many
    standbys gd-db1's commits wait for (netops_pg_sync_standbys) while its standby keeps streaming, and `dr status`
    reports the standby's sync_state (the rule: promtool; the map: tests/test_monitor_web.py)."""
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


def test_the_failover_drill_promotes_the_standby_loses_nothing_and_fails_back(lab, replicated, tmp_path):
    """province-db-failover: gd-db1 killed and fenced while a writer commits; gd-dr-db1 promoted takes the writes
    with no acknowledged commit lost (a synchronous pair); failback restores the roles with equal checksums, and
    the audit's hot redundancy (8.1.4.9 c) then has its drill."""
    env = {**lab["env"], "NETOPS_BACKUP_STATE": str(tmp_path)}
    r = netops("drill", "run", "province-db-failover", "--json", env=env, timeout=600)
    jn = json.loads(r.stdout)
    assert r.returncode == 0 and jn["passed"], json.dumps(jn["steps"], ensure_ascii=False, indent=1)
    assert jn["rpo_transactions"] == 0 and jn["committed"]["primary"] >= 20 and 0 < jn["rto_seconds"] <= 30, jn
    # the service address followed the primary: released by the fenced one, every county reached it at the DR site
    assert sorted(jn["per_county"]) == ["baoan", "huadu", "longgang", "panyu"] and jn["rto_network_seconds"] < 30, jn
    verify = next(s for s in jn["steps"] if s["phase"] == "verify")["evidence"]
    assert verify["last_present"] == verify["rows"] >= verify["last_acknowledged"], verify  # no gap, nothing lost
    back = [s for s in jn["steps"] if s["phase"] == "failback"][-1]["evidence"]
    assert back["primary"] == back["standby"] and back["primary"]["public.jiaofei"][0] == str(jn["committed"]["standby"]), back
    assert [s["phase"] for s in jn["steps"]].count("failback") == 3 and all(s["ok"] for s in jn["steps"])
    # the roles are the inventory's again, streaming in sync, and the scratch database is gone from both
    rc, pairs = status(lab["env"])
    assert rc == 0 and pairs[SYNC[1]]["sync_state"] == "sync", pairs
    # the promoted-and-failed-back primary lost its receiver's slot: the drill started its WAL archive again
    assert archive(lab["env"])["state"] == "streaming"
    assert any(c.startswith("gd-bak1: archive restarted") for c in back["changed"]), back["changed"]
    assert psql(SYNC[0], "SELECT pg_is_in_recovery()") == "f" and psql(SYNC[1], "SELECT pg_is_in_recovery()") == "t"
    assert psql(SYNC[1], "SELECT count(*) FROM pg_database WHERE datname = 'netops_drill'") == "0"
    held = {n: netops("lab", "exec", n, "--", "ip", "-o", "-4", "addr", "show").stdout for n in SYNC}
    assert "10.44.0.100/24" in held[SYNC[0]] and "10.44.0.100" not in held[SYNC[1]], held
    route = netops("lab", "exec", "gd-dr-r1", "--", "vtysh", "-c", "show running-config").stdout
    assert "10.44.0.100" not in route and "redistribute static" not in route, route
    fence = netops("lab", "exec", SYNC[0], "--", "systemctl", "is-enabled", "postgresql@15-main").stdout.strip()
    assert "masked" not in fence, fence  # the fence is lifted
    v = audit(env, SYNC[0])["hot-redundancy"]
    assert v["verdict"] == "符合" and "province-db-failover passed" in json.dumps(v["findings"]), v["findings"]
