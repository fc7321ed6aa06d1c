"""The log store without a lab: the seal script and `logs verify` agree on the hash chain and find the
first altered day and file; search and status read what the scripts print; the rendered rsyslog
configuration admits exactly the inventory's senders and carries hostile text as data."""
from __future__ import annotations

import gzip
import json
import re
import subprocess
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jinbao_netops import escape
from jinbao_netops.errors import UsageError
from jinbao_netops.inventory import load
from jinbao_netops.security import logstore

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def sh(script: str) -> str:
    return subprocess.run(["sh", "-s"], input=script, capture_output=True, text=True, check=True, timeout=60).stdout


def line(t: str, src: str, text: str) -> str:
    return f"{t} {src} claimed={src} app[1]: {text}\n"


@pytest.fixture
def store(tmp_path) -> Path:
    """Three rotated days of two sources (one day compressed, as logrotate leaves them) and the current files."""
    s = tmp_path / "remote"
    s.mkdir()
    for day in ("20261130", "20261201", "20261202"):
        iso = f"{day[:4]}-{day[4:6]}-{day[6:]}"
        for src in ("gd-db1", "huadu-srv1"):
            body = "".join(line(f"{iso}T0{h}:00:00+00:00", src, f"{src} hour {h} of {day}") for h in range(3))
            if day == "20261201":
                (s / f"{src}.log-{day}.gz").write_bytes(gzip.compress(body.encode()))
            else:
                (s / f"{src}.log-{day}").write_text(body)
    (s / "gd-db1.log").write_text(line("2026-12-03T11:30:00+00:00", "gd-db1", "today"))
    (s / "huadu-srv1.log").write_text(line("2026-12-03T09:00:00+00:00", "huadu-srv1", "today"))
    sh(logstore.seal_script(str(s)))
    return s


def verify(s: Path, horizon: str = "20260601") -> dict:
    return logstore.verify_chain(*logstore.parse_verify(sh(logstore.verify_script(str(s)))), horizon)


def test_the_seal_chains_every_day_and_verify_agrees(store):
    chain = (store / ".chain/chain").read_text().splitlines()
    assert [c.split()[0] for c in chain] == ["20261130", "20261201", "20261202"]
    assert chain[0].split()[1] == logstore.GENESIS
    assert [c.split()[1] for c in chain[1:]] == [c.split()[2] for c in chain[:-1]]  # each day includes the previous
    r = verify(store)
    assert r["ok"] and r["days"] == 3 and r["broken"] is None and r["head"] == chain[-1].split()[2]
    # sealing again changes nothing; a new rotated day is appended to the same chain
    sh(logstore.seal_script(str(store)))
    assert (store / ".chain/chain").read_text().splitlines() == chain
    (store / "gd-db1.log-20261203").write_text(line("2026-12-03T01:00:00+00:00", "gd-db1", "x"))
    assert verify(store)["unsealed"] == ["gd-db1.log-20261203"]
    sh(logstore.seal_script(str(store)))
    assert verify(store)["ok"] and verify(store)["days"] == 4


def test_a_modified_line_names_the_first_broken_day_and_file(store):
    f = store / "huadu-srv1.log-20261201.gz"
    text = gzip.decompress(f.read_bytes()).decode().replace("hour 1 of", "hour 1 0f")
    f.write_bytes(gzip.compress(text.encode()))
    (store / "gd-db1.log-20261202").write_text("rewritten\n")  # a later break is not the first one
    r = verify(store)
    assert not r["ok"]
    assert r["broken"]["day"] == "20261201" and r["broken"]["file"].endswith("/huadu-srv1.log-20261201")
    assert "altered" in r["broken"]["reason"]


def test_a_rewritten_manifest_or_a_removed_day_breaks_the_chain(store):
    m = store / ".chain/20261201.sha256"
    original = m.read_text()
    m.write_text(original.replace(original[:8], "0" * 8, 1))
    r = verify(store)
    assert r["broken"]["day"] == "20261201" and r["broken"]["file"].endswith(".chain/20261201.sha256")
    m.write_text(original)
    chain = store / ".chain/chain"
    lines = chain.read_text().splitlines()
    chain.write_text("\n".join([lines[0], lines[2]]) + "\n")
    r = verify(store)
    assert r["broken"]["day"] == "20261202" and "link" in r["broken"]["reason"]


def test_files_past_retention_may_go_files_within_it_may_not(store):
    (store / "gd-db1.log-20261130").unlink()
    assert verify(store, horizon="20261201")["ok"]
    r = verify(store, horizon="20261130")
    assert r["broken"]["day"] == "20261130" and "missing" in r["broken"]["reason"]


def test_search_reads_rotated_and_current_files_with_a_hostile_pattern_as_data(store, tmp_path):
    canary = tmp_path / "canary"
    pattern = f"hour 2|today|'; touch {canary}; '$(touch {canary})"
    out = sh(logstore.search_script(["gd-db1", "huadu-srv1"], date(2026, 12, 1), pattern, 100, str(store)))
    assert not canary.exists()
    rows = logstore.parse_search(out, datetime(2026, 12, 1, 1, tzinfo=UTC))
    assert [(r["source"], r["time"][:13]) for r in rows] == [
        ("gd-db1", "2026-12-01T02"), ("huadu-srv1", "2026-12-01T02"), ("gd-db1", "2026-12-02T02"),
        ("huadu-srv1", "2026-12-02T02"), ("huadu-srv1", "2026-12-03T09"), ("gd-db1", "2026-12-03T11")]
    # the day filter skips older rotated files entirely
    assert "20261130" not in out and "of 20261130" not in out


def test_since_accepts_durations_and_dates_and_names_a_bad_value():
    assert logstore.parse_since("6h", NOW) == datetime(2026, 12, 3, 6, tzinfo=UTC)
    assert logstore.parse_since("2d", NOW) == datetime(2026, 12, 1, 12, tzinfo=UTC)
    assert logstore.parse_since("2026-12-01T08:00", NOW) == datetime(2026, 12, 1, 8, tzinfo=UTC)
    with pytest.raises(UsageError, match="--since: 'yesterday'"):
        logstore.parse_since("yesterday", NOW)


def test_status_shows_last_message_gaps_missing_days_volume_and_the_disk_estimate(store):
    (store / "huadu-srv1.log-20261201.gz").unlink()
    out = sh(logstore.status_script(str(store)))
    out += f"{logstore.MARK}rotate\n" + "\n".join(logstore.render_logrotate({"dengbao_log_retention_days": 180}).splitlines()[1:]) + "\n"
    st = logstore.parse_status(out, ["gd-db1", "huadu-srv1", "panyu-db1"], NOW, 180, 60)
    by = {s["source"]: s for s in st["sources"]}
    assert by["gd-db1"]["last_message"] == "2026-12-03T11:30:00+00:00" and not by["gd-db1"]["gap"]
    assert by["huadu-srv1"]["silent_minutes"] == 180 and by["huadu-srv1"]["gap"]
    assert by["huadu-srv1"]["missing_days"] == ["20261201"] and by["gd-db1"]["missing_days"] == []
    assert by["panyu-db1"]["gap"] and by["panyu-db1"]["last_message"] is None  # expected, never heard
    files = [p for p in store.iterdir() if p.is_file()]
    assert st["bytes"] == sum(p.stat().st_size for p in files)
    assert st["rotation"] == {"period_days": 1, "rotate": 180, "maxage": 180, "kept_days": 180, "compress": True}
    assert st["retention_ok"] and st["oldest_day"] == "20261130"
    assert st["disk"]["needed_for_retention"] == int(st["bytes"] / 3 * 180) and st["disk"]["available"] > 0


def test_retention_below_the_parameter_or_uncompressed_is_not_ok():
    assert logstore.parse_rotate("weekly\nrotate 4\ncompress\n")["kept_days"] == 28
    assert logstore.parse_rotate("daily\nrotate 365\nmaxage 90\ncompress\n")["kept_days"] == 90
    assert not logstore.parse_rotate("daily\nrotate 200\n")["compress"]


# ------------------------------------------------------------------------------------ rendering
@pytest.fixture(scope="module")
def inv():
    return load(None)


def test_the_receiver_admits_exactly_its_senders_and_files_by_source(inv):
    files = logstore.render_receiver(inv, "gd-mon1")
    conf = files[logstore.RECEIVE]
    relp_input = next(ln for ln in conf.splitlines() if ln.startswith('input(type="imrelp"'))
    peers = re.search(r"tls\.permittedPeer=\[(.*?)\]", relp_input).group(1)
    servers = sorted(d for d in inv.scope("guangdong") if inv.devices[d].platform_info.kind == "server" and d != "gd-mon1")
    assert json.loads(f"[{peers}]") == servers
    assert 'tls="on"' in relp_input and 'tls.authMode="name"' in relp_input and 'port="2514"' in relp_input
    assert "sc-db1" not in conf and "bu-srv1" not in conf  # another province's and the ministry's are not admitted
    relp = json.loads(files[logstore.TABLES["relp"]])
    assert {r["value"]: r["index"] for r in relp["table"]} == {d: str(inv.devices[d].management) for d in servers}
    assert relp["nomatch"] == ""
    assert 'if $.src == "" then stop' in conf and "%$.src%.log" in conf and "%HOSTNAME%.log" not in conf.upper()
    udp = json.loads(files[logstore.TABLES["udp"]])
    assert {r["value"] for r in udp["table"]} == {d for d in inv.scope("guangdong") if inv.devices[d].platform_info.kind != "server"}
    # security streams relayed to the ministry's log host over RELP/TLS, its certificate name checked
    relay = next(ln for ln in conf.splitlines() if 'type="omrelp"' in ln)
    assert 'target="10.254.0.22"' in relay and 'tls.permittedPeer=["bu-mon1"]' in relay and "call dengbao_relay" in conf
    assert "rotate 180" in files[logstore.ROTATE] and "compress" in files[logstore.ROTATE]


def test_the_firewall_admits_each_log_port_from_exactly_the_addresses_the_receiver_files(inv):
    """A sender's source is its management address (it reaches the log host's management address over its
    management interface): the firewall admits those, per transport, and no network wider than them."""
    files = logstore.render_receiver(inv, "gd-mon1")
    tables = {k: {r["index"] for r in json.loads(files[logstore.TABLES[k]])["table"]} for k in ("relp", "udp")}
    admit = {(a["proto"], a["port"]): a["sources"] for a in logstore.admitted(inv, "gd-mon1")}
    assert {k: set(v) for k, v in admit.items()} == {("tcp", 2514): tables["relp"], ("udp", 514): tables["udp"]}
    assert all(a.startswith("10.254.") for v in admit.values() for a in v)  # the management network's, never LAN or WAN
    assert logstore.admitted(inv, "huadu-srv1") == []  # not a log host: nothing to admit


def test_the_ministry_receives_from_the_province_log_hosts_and_relays_nothing(inv):
    conf = logstore.render_receiver(inv, "bu-mon1")[logstore.RECEIVE]
    assert '"gd-mon1"' in conf and '"sc-mon1"' in conf and "dengbao_relay" not in conf


def test_a_sender_forwards_with_relp_over_tls_and_a_disk_assisted_queue(inv):
    files = logstore.render_sender(inv, "huadu-srv1")
    action = files[logstore.FORWARD].splitlines()[1]
    for part in ('type="omrelp"', 'target="10.254.44.15"', 'port="2514"', 'tls="on"', 'tls.authMode="name"',
                 'tls.permittedPeer=["gd-mon1"]', 'tls.myPrivKey="/etc/jinbao-netops/tls/node.key"', 'queue.filename="dengbao_fwd"',
                 'queue.saveOnShutdown="on"', 'action.resumeRetryCount="-1"'):
        assert part in action, part
    assert files[logstore.OMRELP].endswith('module(load="omrelp")\n')
    assert logstore.render_sender(inv, "bu-mon1") == {}  # the top of the chain forwards nowhere


def test_hostile_parameters_stay_inside_their_rsyslog_strings():
    hostile = '/etc/x"\n) module(load="omprog" binary="/bin/sh -c id") #%hostname%\\'
    p = {"dengbao_log_tls_dir": hostile, "dengbao_log_relp_port": 2514, "dengbao_log_queue_max": '1g" queue.type="Direct'}
    text = logstore.forward_action("10.0.0.1", 'peer"]', p, "q")
    assert "\n" not in text and 'module(load="omprog"' not in text and "%hostname%" not in text
    # every value is one string constant: outside them, only the action's own keywords remain
    outside = re.sub(r'"(?:[^"\\]|\\.)*"', '""', text)
    assert outside == ('action(type="" target="" port="" tls="" tls.caCert="" tls.myCert="" tls.myPrivKey="" tls.authMode="" '
                       'tls.permittedPeer=[""] queue.type="" queue.filename="" queue.maxDiskSpace="" queue.saveOnShutdown="" '
                       'action.resumeRetryCount="" action.resumeInterval="")')


@given(st.text())
def test_rsyslog_strings_are_one_closed_constant(text):
    q = escape.rsyslog(text)
    assert q.startswith('"') and q.endswith('"') and "\n" not in q and "%" not in q
    body = q[1:-1]
    assert re.fullmatch(r'(?:[^"\\]|\\["\\])*', body, re.DOTALL)  # every quote and backslash inside is escaped
    unescaped = re.sub(r"\\(.)", r"\1", body)
    assert unescaped == escape.one_line(text).replace("%", "％")


def test_the_playbooks_filter_renders_through_the_same_functions(monkeypatch):
    import importlib.util

    spec = importlib.util.spec_from_file_location("dengbao_logs", Path(__file__).parents[1] / "playbooks/filter_plugins/dengbao_logs.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    monkeypatch.delenv("NETOPS_INVENTORY", raising=False)
    f = mod.FilterModule().filters()["dengbao_log_files"]
    inv = load(None)
    assert f("gd-mon1", "receiver") == logstore.render_receiver(inv, "gd-mon1")
    assert f("huadu-srv1", "receiver") == {}  # not a log host: no receiver files
    assert f("huadu-srv1", "sender") == logstore.render_sender(inv, "huadu-srv1")
    admit = mod.FilterModule().filters()["dengbao_peer_admit"]
    assert admit("gd-mon1") == logstore.admitted(inv, "gd-mon1") and admit("huadu-srv1") == []
