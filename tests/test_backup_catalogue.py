"""The backup catalogue is honest: a corrupt one is an error that keeps the file, never an empty
catalogue; it is rebuilt from real restic repositories and git archives on request, the old file
kept aside."""
from __future__ import annotations

import json
import secrets

import pytest
from conftest import clean_env

from jinbao_netops import inventory
from jinbao_netops.backup import catalogue
from jinbao_netops.backup.configs import backup_configs
from jinbao_netops.backup.jobs import Asset, fingerprint_digest, policy, run_store
from jinbao_netops.backup.rebuild import LOST, rebuild, refresh
from jinbao_netops.backup.restic import Repo, tags_of

INV = inventory.load(inventory.DEFAULT_INVENTORY)
PW = secrets.token_hex(16)


def with_mariadb(checksum):
    """Every "node" is this machine, and the engine table's MariaDB client (the database fingerprint taken
    with each dump and of each test restore) meets a database of one table, jfjl: 3 rows whose checksum is
    the file ``checksum``'s content; other scripts (create, drop, a dump loaded) are read and answer nothing
    — there is no MariaDB here."""
    return lambda device: ["sh", "-c", 'case "$0" in *" mariadb "*) s=$(cat); case "$s" in '
                           f'*"CHECKSUM TABLE"*) printf "3\\njfjl\\t%s\\n" "$(cat {checksum})" ;; '
                           '*information_schema.tables*) echo 6a666a6c ;; esac ;; *) exec sh -c "$0" ;; esac']


JFJL = {"jfjl": ["3", "1234567"]}  # the fingerprint of that database as _backed_up leaves it
CORRUPT = b'{"assets": {"huadu-srv1:files": {"device": "huadu-srv1", "snap'  # a write cut short


@pytest.fixture
def state(tmp_path, monkeypatch):
    monkeypatch.setenv("NETOPS_BACKUP_STATE", str(tmp_path / "state"))
    monkeypatch.setenv("RESTIC_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "state"


@pytest.mark.parametrize("content, why", [
    (CORRUPT, "not JSON: Unterminated string starting at, line 1 column 58"),
    (b"\xff\xfe{}", "not UTF-8 at byte 0"),
    (b'["assets"]', "not a JSON object"),
    (b'{"assets": {"a": 1}}', "field 'assets': not an object of asset entries"),
])
def test_a_corrupt_catalogue_fails_loudly_and_stays(netops, tmp_path, content, why):
    """It was read as empty: `backup status` said 0 assets (exit 0) and the next run overwrote it."""
    (tmp_path / "catalogue.json").write_bytes(content)
    env = clean_env(NETOPS_BACKUP_STATE=str(tmp_path))
    for verb in (["backup", "status"], ["backup", "run", "--kind", "files"], ["backup", "verify"]):
        r = netops(*verb, env=env)
        assert r.returncode == 4 and "Traceback" not in r.stderr, r.stderr
        assert r.stderr.splitlines() == [
            f"netops: {tmp_path / 'catalogue.json'}: the backup catalogue is corrupt 备份目录已损坏 ({why}); left as "
            "it is — `netops backup status --rebuild` rebuilds it from the backup repositories and keeps this file aside"]
    assert (tmp_path / "catalogue.json").read_bytes() == content
    assert sorted(p.name for p in tmp_path.iterdir()) == ["catalogue.json"]  # nothing written beside it


def test_a_catalogue_edit_never_overwrites_a_corrupt_one(state):
    state.mkdir()
    (state / "catalogue.json").write_bytes(CORRUPT)
    with pytest.raises(catalogue.CatalogueError), catalogue.edit() as cat:
        cat["assets"]["x"] = {}
    assert (state / "catalogue.json").read_bytes() == CORRUPT


def _backed_up(state, tmp_path):
    """gd-bak1: two server assets in restic with the off-site copy on gd-dr-bak1, and the guangdong
    routers' configs in git, pushed to both stores; sichuan's stores never backed up to."""
    data = tmp_path / "src"
    data.mkdir()
    (data / "a.conf").write_text("x = 1\n" * 100)
    repos = {sid: Repo(sid, str(tmp_path / "restic" / sid), PW) for sid in ("gd-bak1", "gd-dr-bak1", "sc-bak1", "sc-dr-bak1")}
    assets = [Asset("huadu-srv1:files", "huadu-srv1", "huadu", "guangdong", "files", f"tar -C {data} -cf - .",
                    "/huadu-srv1/files.tar"),
              Asset("panyu-db1:mariadb:jfjl", "panyu-db1", "panyu", "guangdong", "databases", "echo dump",
                    "/panyu-db1/mariadb/jfjl.sql", "mariadb", "jfjl")]
    (tmp_path / "checksum").write_text("1234567")
    out = run_store(repos["gd-bak1"], repos["gd-dr-bak1"], assets, with_mariadb(tmp_path / "checksum"), policy(),
                    ["files", "databases"])
    assert out["copied"] and all(a["ok"] for a in out["assets"]), out
    remotes = {sid: str(tmp_path / "git" / sid / "configs.git") for sid in repos}
    rep = backup_configs(INV, "guangdong", fetcher=lambda d: f"hostname {d.id}\ninterface eth0\n", remotes=remotes)
    assert rep["failed"] == 0 and rep["ok"] > 5
    return repos, remotes


KEPT = ("device", "site", "province", "kind", "store", "dr_store", "snapshot", "offsite", "filename", "service",
        "database", "last_ok")


def test_rebuild_from_the_repositories_keeps_the_corrupt_file_aside(state, tmp_path):
    repos, remotes = _backed_up(state, tmp_path)
    before = catalogue.load()["assets"]
    (state / "catalogue.json").write_bytes(CORRUPT)

    res = rebuild(INV, None, repos=repos, remotes=remotes)
    assert res["problems"] == [] and res["installed"] and res["read"] == ["gd-bak1 restic", "gd-bak1 configs.git"]
    after = catalogue.load()["assets"]
    assert sorted(after) == sorted(before) and len(after) == res["assets"]
    for aid, entry in before.items():
        assert {k: after[aid].get(k) for k in KEPT} == {k: entry.get(k) for k in KEPT}, aid
        assert abs(after[aid]["last_success"] - entry["last_success"]) < 120
    assert after["huadu-srv1:files"]["offsite"] is True and catalogue.derived(after["huadu-srv1:files"])["ok_321"] == 1
    assert after["guangzhou-r1:config"]["size"] == before["guangzhou-r1:config"]["size"]
    assert "verify_ok" not in after["huadu-srv1:files"]  # not in any repository: honestly unknown
    # the corrupt file is kept, byte for byte, and reported
    aside = state / res["aside"].rsplit("/", 1)[1]
    assert aside.name.startswith("catalogue.json.corrupt-") and aside.read_bytes() == CORRUPT
    assert 'asset="huadu-srv1:files"' in (state / "metrics/netops_backup.prom").read_text()


@pytest.mark.parametrize("old", [None, b'{"assets": {}, "verify_round": 3}', b""])
def test_replace_sets_aside_only_what_holds_something(state, old):
    """A missing or empty catalogue has nothing to keep (a .replaced copy of nothing is clutter); a file that
    does not read — even an empty one — is kept as corrupt."""
    state.mkdir()
    if old is not None:
        (state / "catalogue.json").write_bytes(old)
    aside = catalogue.replace({"assets": {"a": {"kind": "files"}}, "verify_round": 0})
    assert catalogue.load()["assets"] == {"a": {"kind": "files"}}
    if old == b"":
        assert aside.name.startswith("catalogue.json.corrupt-") and aside.read_bytes() == b""
    else:
        assert aside is None and [p.name for p in state.glob("catalogue.json*")] == ["catalogue.json"]


def test_a_store_that_cannot_be_read_leaves_a_good_catalogue_alone(state, tmp_path):
    repos, remotes = _backed_up(state, tmp_path)
    good = (state / "catalogue.json").read_bytes()
    repos["gd-bak1"] = Repo("gd-bak1", repos["gd-bak1"].url, "not-the-password")
    res = rebuild(INV, None, repos=repos, remotes=remotes)
    assert not res["installed"] and res["aside"] is None
    assert len(res["problems"]) == 1 and res["problems"][0].startswith("gd-bak1: restic repository 备份仓库: gd-bak1: restic")
    assert (state / "catalogue.json").read_bytes() == good
    # a corrupt one is replaced by what could be read (the configs), and kept aside
    (state / "catalogue.json").write_bytes(CORRUPT)
    res = rebuild(INV, None, repos=repos, remotes=remotes)
    assert res["installed"] and res["read"] == ["gd-bak1 configs.git"] and res["problems"]
    cat = catalogue.load()["assets"]
    assert cat and all(a["kind"] == "configs" for a in cat.values())
    assert json.loads(good)["assets"]["guangzhou-r1:config"]["snapshot"] == cat["guangzhou-r1:config"]["snapshot"]


def test_backup_status_rebuild(state, tmp_path, monkeypatch, capsys):
    """The verb: rebuilt, the old file named, what the repositories cannot give back said; then the table."""
    from jinbao_netops.backup import rebuild as rb
    from jinbao_netops.cli import main

    repos, remotes = _backed_up(state, tmp_path)
    (state / "catalogue.json").write_bytes(CORRUPT)
    real = rb.rebuild
    monkeypatch.setattr(rb, "rebuild", lambda inv, access: real(inv, access, repos=repos, remotes=remotes))
    assert main(["backup", "status", "--rebuild"]) == 0  # nothing failed or stale: verification is unknown, not failed
    out = capsys.readouterr().out
    [aside] = state.glob("catalogue.json.corrupt-*")
    assert "重建 rebuilt from gd-bak1 restic, gd-bak1 configs.git" in out and f"原目录已保留: {aside}" in out
    assert "not in the repositories 仓库中没有: verification state" in out and "huadu-srv1:files" in out
    assert main(["backup", "status", "--rebuild", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    replaced = state / doc["rebuild"]["aside"].rsplit("/", 1)[1]  # a good catalogue replaced: kept too
    assert doc["rebuild"]["installed"] and replaced.name.startswith("catalogue.json.replaced-") and replaced.exists()
    assert len(doc["assets"]) == doc["rebuild"]["assets"] and aside.read_bytes() == CORRUPT


def _on_the_monitor_host(state, tmp_path, monkeypatch):
    """The province's monitor host: the nodes' timers took guangdong's file and database backups, so its
    catalogue holds only the configs its own service archives and another province's entry; the stores'
    repositories are reached through the access layer (here: the local ones)."""
    repos, _ = _backed_up(state, tmp_path)
    here = {aid: a for aid, a in catalogue.load()["assets"].items() if a["kind"] == "configs"}
    here["pidu-srv1:files"] = {"device": "pidu-srv1", "province": "sichuan", "kind": "files", "store": "sc-bak1",
                               "snapshot": "0badc0de", "last_success": 1.0, "verify_ok": True, "verified_at": 2.0}
    with catalogue.edit() as cat:
        cat["assets"] = here
    monkeypatch.setattr(Repo, "on_store", classmethod(lambda cls, access, sid: repos[sid]))
    return repos, here


def test_verify_on_a_host_that_took_no_backup_reads_them_from_the_repositories(state, tmp_path, monkeypatch, capsys):
    """The service's daily `backup verify --scope P` on the monitor host failed every day with 'nothing to
    verify': its catalogue had none of P's backups. The scope's part now comes from the repositories."""
    from jinbao_netops.cli import main

    _, here = _on_the_monitor_host(state, tmp_path, monkeypatch)
    assert main(["backup", "verify", "--scope", "huadu", "--json"]) == 0
    cap = capsys.readouterr()
    doc = json.loads(cap.out)
    assert doc["ok"] and doc["refresh"] == {"added": ["huadu-srv1:files"], "updated": [], "read": ["gd-bak1 restic"],
                                            "problems": [], "lost": LOST}
    assert [(e["asset"], e["ok"]) for st in doc["stores"] for e in st["assets"]] == [("huadu-srv1:files", True)]
    assert "catalogue brought up to gd-bak1 restic: 1 added 新增, 0 moved to a newer snapshot" in cap.err
    assert "verification state" in cap.err
    after = catalogue.load()["assets"]
    assert after["huadu-srv1:files"]["verify_ok"] is True and after["huadu-srv1:files"]["offsite"] is True
    assert "panyu-db1:mariadb:jfjl" not in after  # guangdong's, but outside the scope
    assert {aid: after[aid] for aid in here} == here  # merged: the configs and sichuan's entry as they were
    assert [p.name for p in state.glob("catalogue.json*")] == ["catalogue.json"]  # nothing replaced, nothing set aside
    # the next day the catalogue holds them: verified without adding them again
    assert main(["backup", "verify", "--scope", "huadu", "--json"]) == 0
    cap = capsys.readouterr()
    assert json.loads(cap.out)["refresh"] == {"added": [], "updated": [], "read": ["gd-bak1 restic"], "problems": [],
                                              "lost": LOST}
    assert "1 added" not in cap.err and "not in the repositories" not in cap.err


def test_verify_whose_repositories_cannot_be_read_is_partial_not_nothing_to_verify(state, tmp_path, monkeypatch, capsys):
    from jinbao_netops.cli import main

    repos, here = _on_the_monitor_host(state, tmp_path, monkeypatch)
    wrong = Repo("gd-bak1", repos["gd-bak1"].url, "not-the-password")
    monkeypatch.setattr(Repo, "on_store", classmethod(lambda cls, access, sid: wrong if sid == "gd-bak1" else repos[sid]))
    assert main(["backup", "verify", "--scope", "guangdong", "--json"]) == 3
    env = json.loads(capsys.readouterr().out)
    assert env["code"] == 3 and env["error"].startswith(
        "nothing verified 未校验: the catalogue holds no backed-up asset in scope and the backup repositories could "
        "not be read 无法读取备份仓库: gd-bak1: restic repository 备份仓库: gd-bak1: restic snapshots")
    assert catalogue.load()["assets"] == here


def test_fill_adds_only_what_the_catalogue_lacks(state, tmp_path):
    """A backup recorded on this host (with what only the catalogue knows) is never overwritten by the
    repositories' view of it."""
    repos, _ = _backed_up(state, tmp_path)
    with catalogue.edit() as cat:
        del cat["assets"]["panyu-db1:mariadb:jfjl"]
        cat["assets"]["huadu-srv1:files"].update(last_ok=False, verify_ok=False, verify_error="restic check failed")
        ours = cat["assets"]["huadu-srv1:files"]
    res = refresh(INV, None, set(INV.scope("guangdong")), repos=repos)
    assert res == {"added": ["panyu-db1:mariadb:jfjl"], "updated": [], "read": ["gd-bak1 restic"], "problems": [],
                   "lost": LOST}
    after = catalogue.load()["assets"]
    assert after["huadu-srv1:files"] == ours and after["panyu-db1:mariadb:jfjl"]["database"] == "jfjl"


def test_a_database_snapshot_carries_the_digest_of_its_source_fingerprint(state, tmp_path):
    """The source's fingerprint at backup time lived only in the catalogue of the host that took the backup:
    a catalogue filled from the repositories could not check a restored database. A tag now carries its
    digest — and retention, which grouped snapshots by their tags, still forgets the older ones."""
    repos, _ = _backed_up(state, tmp_path)
    db = Asset("panyu-db1:mariadb:jfjl", "panyu-db1", "panyu", "guangdong", "databases", "echo dump2",
               "/panyu-db1/mariadb/jfjl.sql", "mariadb", "jfjl")
    (tmp_path / "checksum").write_text("7654321")  # the table changed since the first backup
    out = run_store(repos["gd-bak1"], None, [db], with_mariadb(tmp_path / "checksum"), policy(), ["databases"])
    assert out["assets"][0]["ok"]
    [snap] = repos["gd-bak1"].snapshots("asset=panyu-db1:mariadb:jfjl")  # keep_daily: today's newest only
    assert snap["id"][:8] == out["assets"][0]["snapshot"]
    assert tags_of(snap)["fingerprint"] == fingerprint_digest({"jfjl": ["3", "7654321"]})
    assert fingerprint_digest(JFJL) != fingerprint_digest({"jfjl": ["3", "7654321"]})
    assert "fingerprint" not in tags_of(repos["gd-bak1"].snapshots("asset=huadu-srv1:files")[0])  # databases only


def test_verify_checks_a_database_from_the_repositories_against_its_snapshots_digest(state, tmp_path, monkeypatch, capsys):
    """After a fill every database asset's verification said 'no source fingerprint recorded at backup
    time' (exit 1), every day: the monitor host never took the backup."""
    from jinbao_netops.backup import jobs
    from jinbao_netops.cli import main

    _on_the_monitor_host(state, tmp_path, monkeypatch)
    monkeypatch.setattr(jobs, "ssh_shell", lambda access: with_mariadb(tmp_path / "checksum"))
    assert main(["backup", "verify", "--scope", "panyu", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    [ev] = doc["stores"][0]["assets"]
    assert ev["ok"] and ev["asset"] == "panyu-db1:mariadb:jfjl" and ev["restored_fingerprint"] == JFJL
    assert ev["source_fingerprint"] is None and ev["source_fingerprint_sha256"] == fingerprint_digest(JFJL)
    entry = catalogue.load()["assets"]["panyu-db1:mariadb:jfjl"]
    assert entry["fingerprint_digests"] == {ev["snapshot"]: fingerprint_digest(JFJL)} and entry["verify_ok"] is True
    # restored from the off-site copy on this host, checked against the copy's tag too (was: "differs from the source")
    from jinbao_netops.access import Access
    from jinbao_netops.backup.restore import restore

    res = restore(Access(INV), "panyu-db1:mariadb:jfjl", "panyu-db1", from_dr=True,
                  shell=with_mariadb(tmp_path / "checksum"))
    assert res["repo"] == "gd-dr-bak1" and res["matches_source"] is True and res["fingerprint"] == JFJL
    # a restored copy that is not the source's is found, if not which table
    (tmp_path / "checksum").write_text("7654321")
    assert main(["backup", "verify", "--scope", "panyu", "--json"]) == 1
    [ev] = json.loads(capsys.readouterr().out)["stores"][0]["assets"]
    assert not ev["ok"] and ev["error"].startswith("restored data differs from the source at backup time: its "
                                                   "fingerprint's digest is not the one the snapshot's tag recorded")


def test_the_catalogues_per_table_fingerprint_comes_first_and_an_untagged_snapshot_has_none(state, tmp_path):
    from jinbao_netops.backup.verify import verify_store

    repos, _ = _backed_up(state, tmp_path)  # on the host that took it: per table, in the catalogue
    entry = catalogue.load()["assets"]["panyu-db1:mariadb:jfjl"]
    node = with_mariadb(tmp_path / "checksum")
    (tmp_path / "checksum").write_text("7654321")
    entry["fingerprint_digests"] = {entry["snapshot"]: fingerprint_digest({"jfjl": ["3", "7654321"]})}  # not consulted
    [ev] = verify_store(repos["gd-bak1"], None, {"panyu-db1:mariadb:jfjl": entry}, node, 7, 0)["assets"]
    assert ev["error"] == "restored data differs from the source at backup time in 1 table(s): jfjl"
    # a snapshot taken before the tag, in a catalogue that did not take it: as before
    del entry["fingerprints"], entry["fingerprint_digests"]
    [ev] = verify_store(repos["gd-bak1"], None, {"panyu-db1:mariadb:jfjl": entry}, node, 7, 0)["assets"]
    assert not ev["ok"] and ev["error"] == "no source fingerprint recorded at backup time"


def _the_nodes_back_up_again(state, tmp_path, monkeypatch, repos):
    """The next day's timer on the nodes: a new snapshot of huadu-srv1's files, recorded in the catalogue of
    the host that took it (not this one); retention forgets the older one."""
    (tmp_path / "src" / "a.conf").write_text("x = 2\n" * 100)
    monkeypatch.setenv("NETOPS_BACKUP_STATE", str(tmp_path / "the-nodes"))
    a = Asset("huadu-srv1:files", "huadu-srv1", "huadu", "guangdong", "files", f"tar -C {tmp_path / 'src'} -cf - .",
              "/huadu-srv1/files.tar")
    out = run_store(repos["gd-bak1"], repos["gd-dr-bak1"], [a], with_mariadb(tmp_path / "checksum"), policy(), ["files"])
    monkeypatch.setenv("NETOPS_BACKUP_STATE", str(state))
    assert out["copied"] and out["assets"][0]["ok"]
    assert [s["id"][:8] for s in repos["gd-bak1"].snapshots("asset=huadu-srv1:files")] == [out["assets"][0]["snapshot"]]
    return out["assets"][0]["snapshot"]


def test_verify_moves_to_the_newer_snapshots_the_nodes_took(state, tmp_path, monkeypatch, capsys):
    """The catalogue was filled once; the nodes' newer snapshots were never picked up, and once retention
    forgot the filled one verify failed every day on a snapshot that no longer exists."""
    from jinbao_netops.cli import main

    repos, here = _on_the_monitor_host(state, tmp_path, monkeypatch)
    assert main(["backup", "verify", "--scope", "huadu", "--json"]) == 0
    old = json.loads(capsys.readouterr().out)["stores"][0]["assets"][0]["snapshot"]
    new = _the_nodes_back_up_again(state, tmp_path, monkeypatch, repos)

    assert main(["backup", "verify", "--scope", "huadu", "--json"]) == 0
    cap = capsys.readouterr()
    doc = json.loads(cap.out)
    assert doc["ok"] and doc["refresh"] == {"added": [], "updated": ["huadu-srv1:files"], "read": ["gd-bak1 restic"],
                                            "problems": [], "lost": LOST}
    assert [(e["snapshot"], e["ok"], e["files"]) for e in doc["stores"][0]["assets"]] == [(new, True, 2)]
    assert "catalogue brought up to gd-bak1 restic: 0 added 新增, 1 moved to a newer snapshot" in cap.err
    entry = catalogue.load()["assets"]["huadu-srv1:files"]
    assert entry["snapshot"] == new and entry["offsite"] is True and entry["verified"] == {old: True, new: True}
    assert {aid: catalogue.load()["assets"][aid] for aid in here} == here


def test_refresh_keeps_what_only_the_catalogue_knows(state, tmp_path, monkeypatch):
    repos, _ = _backed_up(state, tmp_path)
    with catalogue.edit() as cat:
        files, db = cat["assets"]["huadu-srv1:files"], cat["assets"]["panyu-db1:mariadb:jfjl"]
        old = files["snapshot"]
        files.update(verify_ok=True, verified={old: True}, verified_at=5.0, last_success=files["last_success"] - 10,
                     last_attempt=files["last_success"] - 9, last_ok=False, last_error="ssh: timed out")
        db.update(snapshot="c0ffee00", last_success=db["last_success"] + 3600)  # newer than the repository's: kept
        db_before = dict(db)
    new = _the_nodes_back_up_again(state, tmp_path, monkeypatch, repos)
    res = refresh(INV, None, set(INV.scope("guangdong")), repos=repos)
    assert (res["added"], res["updated"]) == ([], ["huadu-srv1:files"])
    after = catalogue.load()["assets"]
    assert after["panyu-db1:mariadb:jfjl"] == db_before
    f = after["huadu-srv1:files"]
    assert f["snapshot"] == new and f["last_success"] > files["last_success"] and f["offsite"] is True
    assert f["last_ok"] is True and "last_error" not in f  # the newer snapshot is a later success
    assert "verify_ok" not in f and f["verified"] == {old: True} and f["verified_at"] == 5.0  # the new one: unverified
    assert refresh(INV, None, set(INV.scope("guangdong")), repos=repos)["updated"] == []  # once
