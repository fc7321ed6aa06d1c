"""Drill scenarios: validation, scope enforcement, dry run and the report (no lab needed)."""
from __future__ import annotations

import json

import pytest

from jinbao_netops import inventory
from jinbao_netops.backup.drill import Journal, finish, load_scenario, plan, render_html
from jinbao_netops.errors import UsageError

from conftest import clean_env

INV = inventory.load(inventory.DEFAULT_INVENTORY)


BUILT_IN = ["city-router-lost", "county-db-lost", "province-db-failover", "province-dc-lost", "province-offsite-restore"]


@pytest.mark.parametrize("name", BUILT_IN)
def test_builtin_scenarios_load_and_stay_in_scope(name):
    sc = load_scenario(INV, name)
    scope = set(INV.descendants(sc["scope"]))
    named = {*sc["fault"].get("kill_services", {}), *sc["fault"].get("stop_services", {}), *sc["fault"].get("links_down", {}),
             *(sc[k] for k in ("source", "standby", "router") if k in sc)}
    assert all(INV.devices[d].site in scope for d in named)
    assert plan(sc)[-1].startswith("cleanup")


def write(tmp_path, text):
    p = tmp_path / "s.yml"
    p.write_text(text)
    return str(p)


BASE = """id: t
name: t
kind: database_restore
scope: panyu
source: panyu-db1
service: mariadb
standby: {standby}
fault: {{stop_services: {{panyu-db1: [mariadb]}}}}
targets: {{rto_seconds: 60}}
"""


def test_a_scenario_touching_a_node_outside_its_scope_is_refused(tmp_path):
    with pytest.raises(UsageError, match=r"s.yml:1: scenario 't': field 'standby': guangzhou-db1 is outside the scope panyu"):
        load_scenario(INV, write(tmp_path, BASE.format(standby="guangzhou-db1")))


@pytest.mark.parametrize("edit,field", [
    (("kind: database_restore", "kind: chaos"), "kind"),
    (("service: mariadb", "service: oracle"), "service"),
    (("rto_seconds: 60", "rto_seconds: -1"), "targets.rto_seconds"),
    (("rto_seconds: 60", "rto_seconds: 1e12"), "targets.rto_seconds"),
    (("stop_services", "unplug"), "fault.unplug"),
    (("scope: panyu", "scope: atlantis"), "scope"),
    (("id: t", "id: [t]"), "id"),
    (("standby: {standby}\n", ""), "standby"),
    (("[mariadb]", "mariadb"), "fault.stop_services.panyu-db1"),
])
def test_bad_scenarios_name_file_object_and_field(tmp_path, edit, field):
    text = BASE.replace(*edit).format(standby="panyu-r1")
    with pytest.raises(UsageError, match=rf"s.yml:\d+: scenario '.*': field '{field}': ") as e:
        load_scenario(INV, write(tmp_path, text))
    assert len(e.value.lines()) == 1


def _alias_bomb(levels: int = 9) -> str:
    """A few hundred bytes that expand to 9**9 (387 million) strings when walked."""
    lines = ['x0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"x{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


def _limited(netops_args, memory=1 << 30):
    """The CLI under a 1 GiB address-space limit: an unbounded expansion is a MemoryError, not a swapped-out host."""
    import resource
    import subprocess
    import sys

    from conftest import REPO

    return subprocess.run([sys.executable, "-m", "jinbao_netops.cli", *netops_args], cwd=REPO, env=clean_env(),
                          capture_output=True, text=True, timeout=120,
                          preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (memory, memory)))


@pytest.mark.parametrize("content, message", [
    # the alias bomb reached 2.2 GB, then a MemoryError traceback
    (_alias_bomb() + BASE.replace("name: t", "name: *a9").format(standby="panyu-r1"),
     ":1: YAML error: aliases expand the document by more than 100,000 nodes (an alias bomb)"),
    ("id: t\nname: \xe9t\xe9\n".encode("latin-1"), ":2: YAML error: not UTF-8 text (invalid continuation byte at byte 12)"),
    (b"x" * (64 << 10) + b": 1\n", ": document: field '(file)': larger than 65,536 bytes"),
    ("- a list, not a scenario\n", ": document: field '(top level)': expected a mapping of sections (id, name, kind, "),
    ("id: &a [t, *a]\n", ":1: YAML error: an alias refers to the node that contains it (recursive alias)"),
])
def test_hostile_scenario_files_are_one_line_exit_2(tmp_path, content, message):
    path = tmp_path / "s.yml"
    (path.write_bytes if isinstance(content, bytes) else path.write_text)(content)
    r = _limited(["drill", "run", str(path), "--dry-run"])
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert r.stderr.splitlines() == [r.stderr.strip()] and r.stderr.startswith(f"{path}{message}"), r.stderr


def test_cli_dry_run_touches_nothing_and_bad_scenario_is_exit_2(netops, tmp_path):
    r = netops("drill", "run", "province-offsite-restore", "--dry-run", "--json", env=clean_env(NETOPS_BACKUP_STATE=str(tmp_path)))
    assert r.returncode == 0 and any("DR site" in s for s in json.loads(r.stdout)["steps"])
    assert not list(tmp_path.iterdir())
    r = netops("drill", "run", "no-such-drill")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "no-such-drill" in r.stderr


def test_verdict_and_report(tmp_path, monkeypatch):
    monkeypatch.setenv("NETOPS_BACKUP_STATE", str(tmp_path))
    sc = load_scenario(INV, "county-db-lost")
    j = Journal(sc)
    j.step("steady", "ok")
    j.step("cleanup", "start mariadb on panyu-db1")
    good = finish(sc, j, {"ok": True, "rto_seconds": 42.0, "rpo_seconds": 600.0})
    assert good["passed"] and good["within_targets"] == {"rto": True, "rpo": True, "rto_network": True}
    page = open(good["report"]).read()
    assert "结论 Verdict: 通过 PASSED" in page and "42.0 s" in page and "<script" not in page
    assert json.loads(open(good["journal"]).read())["rto_seconds"] == 42.0
    slow = finish(sc, j, {"ok": True, "rto_seconds": 301.0, "rpo_seconds": 600.0})
    assert not slow["passed"] and slow["within_targets"]["rto"] is False
    j.step("cleanup", "link up", ok=False, error="boom")
    dirty = finish(sc, j, {"ok": True, "rto_seconds": 1.0, "rpo_seconds": 1.0})
    assert not dirty["passed"] and not dirty["cleanup_ok"]
    assert "&lt;b&gt;" in render_html({**good, "scenario": {**good["scenario"], "name": "<b>"}})


def test_a_lab_failure_mid_drill_still_writes_the_journal_and_restores_the_steady_state(tmp_path, monkeypatch):
    """The lab fails while the fault is being injected: the drill is 'aborted' with the step it reached,
    the fault is undone, and a failing steady-state check after it does not hide the original error."""
    from jinbao_netops.access import Access
    from jinbao_netops.backup import catalogue, drill
    from jinbao_netops.errors import LabError

    monkeypatch.setenv("NETOPS_BACKUP_STATE", str(tmp_path))
    with catalogue.edit() as cat:
        cat["assets"]["panyu-db1:mariadb:shebao"] = {"device": "panyu-db1", "service": "mariadb", "database": "shebao",
                                                      "snapshot": "abcd1234", "verify_ok": True}
    calls = []

    class Lab:
        def __init__(self, inv):
            pass

        def active(self, node, service):
            return True

        def run(self, node, *cmd, check=True):
            calls.append((node, cmd))
            if cmd[:2] == ("systemctl", "stop"):
                raise LabError(f"node {node!r} is not running")
            return ""

    monkeypatch.setattr(drill, "LabActions", Lab)
    monkeypatch.setattr(drill, "_settled", lambda *a: (_ for _ in ()).throw(LabError("the lab is gone")))
    jn = drill.run(Access(INV, {}), load_scenario(INV, "county-db-lost"), shell=lambda d: ["false"])
    assert jn["verdict"] == "aborted" and not jn["passed"]
    assert jn["aborted_at"].startswith("mariadb active on panyu-db1") and "is not running" in jn["error"]
    assert [s["phase"] for s in jn["steps"]] == ["steady", "abort", "cleanup", "cleanup"]
    assert ("panyu-db1", ("systemctl", "start", "mariadb")) in calls  # the fault undone
    assert "the steady state could not be checked: the lab is gone" in json.dumps(jn["steps"][-1], ensure_ascii=False)
    saved = json.loads(open(jn["journal"]).read())
    assert saved["verdict"] == "aborted" and "中止 ABORTED" in open(jn["report"]).read()


def test_drill_list_names_the_built_in_scenarios(netops):
    r = netops("drill", "list", "--json")
    assert r.returncode == 0, r.stderr
    assert sorted(s["id"] for s in json.loads(r.stdout)) == BUILT_IN


FAILOVER = """id: f
name: f
kind: database_failover
scope: guangdong
source: gd-db1
service: postgresql
standby: gd-dr-db1
fault: {kill_services: {gd-db1: [postgresql@15-main]}}
targets: {rto_seconds: 30, rpo_transactions: 0}
"""


@pytest.mark.parametrize("edit,field,message", [
    (("standby: gd-dr-db1", "standby: gd-dr-bak1"), "standby", "gd-dr-bak1 is not a standby of gd-db1"),
    (("service: postgresql", "service: mariadb"), "service", "promotes a PostgreSQL streaming standby"),
    (("rpo_transactions: 0", "rpo_transactions: -1"), "targets.rpo_transactions", ""),
    (("[postgresql@15-main]", "[\"postgresql; reboot\"]"), "fault.kill_services.gd-db1.0", ""),
])
def test_a_failover_scenario_needs_the_standby_of_its_source(tmp_path, edit, field, message):
    assert load_scenario(INV, write(tmp_path, FAILOVER))["kind"] == "database_failover"
    with pytest.raises(UsageError, match=rf"s.yml:\d+: scenario 'f': field '{field}': .*{message}") as e:
        load_scenario(INV, write(tmp_path, FAILOVER.replace(*edit)))
    assert len(e.value.lines()) == 1


def test_a_failover_drill_passes_only_with_no_acknowledged_commit_lost(tmp_path, monkeypatch):
    monkeypatch.setenv("NETOPS_BACKUP_STATE", str(tmp_path))
    sc = load_scenario(INV, "province-db-failover")
    assert any("kill -9 postgresql@15-main on gd-db1" in s for s in plan(sc))
    j = Journal(sc)
    j.step("steady", "ok")
    good = finish(sc, j, {"ok": True, "rto_seconds": 8.0, "rpo_seconds": 0.0, "rpo_transactions": 0, "failback_seconds": 40.0})
    assert good["passed"] and all(good["within_targets"].values()) and good["rpo_transactions"] == 0
    page = open(good["report"]).read()
    assert "丢失已确认提交" in page and "40.0 s" in page
    lost = finish(sc, j, {"ok": True, "rto_seconds": 8.0, "rpo_seconds": None, "rpo_transactions": 1})
    assert not lost["passed"] and lost["within_targets"]["rpo"] is False
    # aborted before anything was measured: no figure is a figure within target
    assert finish(sc, j, {"ok": False, "aborted_at": "x"})["within_targets"] == {"rto": False, "rpo": False,
                                                                                 "rto_network": True}
    # province-dc-lost also targets the network: the last county must reach the moved address in time
    dc = load_scenario(INV, "province-dc-lost")
    assert any("service address moves to gd-dr-db1" in s for s in plan(dc)) and any("links down on gd-r1" in s for s in plan(dc))
    slow = finish(dc, Journal(dc), {"ok": True, "rto_seconds": 2.0, "rpo_seconds": 0.0, "rpo_transactions": 0,
                                    "rto_network_seconds": 16.0, "per_county": {"panyu": 3.0, "huadu": 16.0}})
    assert not slow["passed"] and slow["within_targets"]["rto_network"] is False
    assert "huadu" in open(slow["report"]).read()


def _pair(**kw):
    from dataclasses import replace

    from jinbao_netops.backup.replication import pairs

    return replace(next(p for p in pairs(INV) if p.standby == "gd-dr-db1"), **kw)


@pytest.mark.parametrize("kw,rto,net,rpo,level,why", [
    ({}, 1.0, 3.0, 0.0, 5, "no automatic failover"),              # the lab: sync, address moved; never a cluster
    ({}, 1.0, None, 0.0, 3, "RTO - s over 172800 s"),             # a county never reached the moved address
    ({}, 1.0, 3.0, 2400.0, 4, "RPO 2400 s over 1800 s"),          # an async pair that lost 40 minutes
    ({"service_address": None}, 1.0, None, 0.0, 4, "no service address"),  # clients cannot follow
])
def test_the_gb_t_20988_level_rests_on_measures_and_deployment(kw, rto, net, rpo, level, why):
    from jinbao_netops.backup.drill import dr_level

    lv = dr_level(_pair(**kw), rto, net, rpo)
    assert lv["level"] == level, lv
    assert why in next(c for c in lv["criteria"] if c["level"] == level + 1)["why_not"], lv["criteria"]
    assert [c["met"] for c in lv["criteria"]] == [True] * level + [False] * (6 - level)


def _fake_psql(tmp_path, answers: int) -> list[str]:
    """A client that acknowledges ``answers`` INSERTs (echoing the number, as psql -At does for RETURNING), then
    loses its server the way psql does: a message on stderr, exit 2."""
    import sys

    prog = ("import re, sys\n"
            f"for i, line in enumerate(sys.stdin):\n"
            f"    if i == {answers}: sys.exit('server closed the connection unexpectedly')\n"
            "    print(re.search(r'VALUES \\((\\d+),', line).group(1), flush=True)\n")
    return [sys.executable, "-c", prog]


def test_the_writer_counts_only_acknowledged_commits(tmp_path):
    from jinbao_netops.backup.drill import Writer

    w = Writer(_fake_psql(tmp_path, 7), 41)
    w.start()
    w.join(20)
    assert not w.is_alive() and (w.acked, w.count) == (47, 7) and w.first_ack is not None
    assert w.error.startswith("commit 48 not acknowledged") and "server closed the connection" in w.error
    w = Writer(_fake_psql(tmp_path, 1000), 1, limit=3)  # a bounded run ends by itself, cleanly
    w.start()
    w.join(20)
    assert (w.acked, w.error) == (3, "")



def recording_lab(monkeypatch) -> list:
    """The drill's lab actions replaced by a recorder: the list of (node, command) they were asked to run."""
    from jinbao_netops.backup import drill

    lab: list = []

    class Lab:
        def __init__(self, inv):
            pass

        def run(self, node, *cmd, check=True):
            lab.append((node, cmd))
            return ""

    monkeypatch.setattr(drill, "LabActions", Lab)
    return lab

def test_a_failover_drill_on_a_pair_that_does_not_stream_touches_nothing(tmp_path, monkeypatch):
    """The steady state is the primary's own view of its standby: disconnected, the drill stops before the
    scratch database, the writer or the fault, and says to run dr setup."""
    import sys

    from jinbao_netops.access import Access
    from jinbao_netops.backup import drill

    monkeypatch.setenv("NETOPS_BACKUP_STATE", str(tmp_path))
    ran, lab = tmp_path / "ran", recording_lab(monkeypatch)
    prog = f"import sys; open({str(ran)!r}, 'a').write(sys.argv[1] + sys.stdin.read()); print('-;1 4096')"
    jn = drill.run(Access(INV, {"NETOPS_DB_REPLICATION_PASSWORD": "pw"}), load_scenario(INV, "province-db-failover"),
                   shell=lambda d: [sys.executable, "-c", prog])
    assert jn["verdict"] == "aborted" and "netops dr setup" in jn["error"] and "disconnected" in jn["error"]
    assert lab == [] and "CREATE DATABASE" not in ran.read_text() and jn["cleanup_ok"]


def test_a_failover_drill_whose_dr_router_cannot_announce_the_address_stops_before_its_first_step(tmp_path, monkeypatch):
    """The service address cannot be announced at the standby's site (a platform without host-route forms): the
    drill is refused before it reads or changes anything, not after the primary is failed and the standby promoted."""
    import copy
    import sys

    from jinbao_netops.access import Access
    from jinbao_netops.backup import drill

    monkeypatch.setenv("NETOPS_BACKUP_STATE", str(tmp_path))
    ran, lab = tmp_path / "ran", recording_lab(monkeypatch)
    inv = copy.deepcopy(INV)
    inv.devices["gd-dr-r1"] = inv.devices["gd-dr-r1"].model_copy(update={"platform": "cisco_asa"})
    jn = drill.run(Access(inv, {"NETOPS_DB_REPLICATION_PASSWORD": "pw"}), load_scenario(inv, "province-db-failover"),
                   shell=lambda d: [sys.executable, "-c", f"open({str(ran)!r}, 'a').write('ran')"])
    assert jn["verdict"] == "aborted" and "device 'gd-dr-r1': field 'platform'" in jn["error"], jn
    assert lab == [] and not ran.exists()
