"""Maintenance windows against a real Alertmanager (Debian's prometheus-alertmanager on loopback): `netops monitor
silence list | add | expire`, a silence that silences exactly the devices it names (hostile names too), the window
a provisioning run opens before its push and expires when it ends (also when it fails or is interrupted), and a
change that goes ahead with a warning when no Alertmanager answers."""
from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.parse
import urllib.request

import pytest
import test_drift as dt
import test_harden_devices as hdt
import test_provision_push as ppt

from jinbao_netops import escape
from jinbao_netops.cli import main
from jinbao_netops.inventory import load
from jinbao_netops.monitoring import generate as gen
from jinbao_netops.monitoring import silences as sil
from jinbao_netops.output import Out
from jinbao_netops.topology.provision import commands as link_commands
from jinbao_netops.topology.provision import drift_commands
from jinbao_netops.topology.provision import engine as en
from jinbao_netops.topology.provision import harden as hd

env, net = ppt.env, ppt.net          # the vendor doubles of the provisioning tests
harden_net = hdt.net                 # … and of the hardening tests (with a monitor host at the province)

CONFIG = 'route:\n  receiver: "null"\nreceivers:\n  - name: "null"\n'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def alertmanager(tmp_path_factory):
    """A real Alertmanager on a free loopback port, no clustering, for the whole module."""
    d = tmp_path_factory.mktemp("am")
    (d / "am.yml").write_text(CONFIG)
    url = f"http://127.0.0.1:{free_port()}"
    proc = subprocess.Popen(["/usr/bin/prometheus-alertmanager", f"--config.file={d / 'am.yml'}", f"--storage.path={d / 'data'}",
                             f"--web.listen-address={url[7:]}", "--cluster.listen-address="],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        until(lambda: _ready(url), proc)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/-/ready", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def until(cond, proc=None, tries=300):
    for _ in range(tries):
        v = cond()
        if v:
            return v
        assert proc is None or proc.poll() is None, proc.stderr.read().decode()
        time.sleep(0.1)
    raise AssertionError("condition not met")


def closed_url() -> str:
    return f"http://127.0.0.1:{free_port()}"  # nothing listens there: connection refused


def by_id(url: str, sid: str) -> dict:
    return next(s for s in sil.silences(url) if s["id"] == sid)


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    cap = capsys.readouterr()
    return code, cap.out, cap.err


# --- the verbs ------------------------------------------------------------------------------------------

def test_add_list_expire(alertmanager, capsys, monkeypatch):
    rc, out, _ = cli(capsys, "monitor", "silence", "add", "--device", "guangzhou-r1", "--device", "gd-r1", "--duration", "1h30m",
                     "--comment", "CHG-1234 更换光模块", "--author", "zhangsan", "--alertmanager", alertmanager, "--json")
    assert rc == 0
    [made] = json.loads(out)["silences"]
    sid = made["id"]
    rc, out, _ = cli(capsys, "monitor", "silence", "list", "--alertmanager", alertmanager, "--json")
    doc = json.loads(out)
    assert rc == 0 and doc["ok"] and doc["unreachable"] == {}
    s = next(s for s in doc["silences"] if s["id"] == sid)
    assert (s["state"], s["matchers"], s["createdBy"], s["comment"]) == \
        ("active", ["device=~gd-r1|guangzhou-r1"], "zhangsan", "CHG-1234 更换光模块")
    # endsAt bounded by --duration (the clocks of this process and Alertmanager's are one)
    from datetime import datetime
    span = datetime.fromisoformat(s["endsAt"]) - datetime.fromisoformat(s["startsAt"])
    assert 5390 <= span.total_seconds() <= 5400
    rc, out, _ = cli(capsys, "monitor", "silence", "list", "--alertmanager", alertmanager)
    assert rc == 0 and sid in out and "CHG-1234" in out
    # $NETOPS_ALERTMANAGER names the Alertmanager when --alertmanager does not
    monkeypatch.setenv(sil.ENV, alertmanager)
    rc, out, err = cli(capsys, "monitor", "silence", "expire", sid.upper())
    assert rc == 0 and sid in out, err
    assert by_id(alertmanager, sid)["state"] == "expired"
    rc, out, _ = cli(capsys, "monitor", "silence", "list", "--json")
    assert sid not in [s["id"] for s in json.loads(out)["silences"]]
    rc, out, _ = cli(capsys, "monitor", "silence", "list", "--all", "--json")
    assert sid in [s["id"] for s in json.loads(out)["silences"]]


def test_a_silence_holds_back_exactly_the_devices_it_names(alertmanager):
    """Names full of regex metacharacters are literals: `x|.*` does not silence every device, `a.b` not `aXb`."""
    named = ["a.b", "x|.*", "(", "c\\d", "中文[县]", "q+?{2}^$"]
    others = ["aXb", "anything", "cd", "c\\\\d", "中文县", "qq"]
    s = sil.add(alertmanager, named, 600, "t", "hostile names")
    body = json.dumps([{"labels": {"alertname": "NodeDown", "device": d, "test": s["id"]}} for d in named + others]).encode()
    urllib.request.urlopen(urllib.request.Request(alertmanager + "/api/v2/alerts", data=body, method="POST",
                                                  headers={"Content-Type": "application/json"}), timeout=10).read()

    def states():
        with urllib.request.urlopen(alertmanager + "/api/v2/alerts?filter=" + urllib.parse.quote(f'test="{s["id"]}"'),
                                    timeout=10) as r:
            got = {a["labels"]["device"]: a["status"] for a in json.loads(r.read())}
        return got if len(got) == len(named + others) else None

    got = until(states)
    assert {d for d, st in got.items() if st["state"] == "suppressed"} == set(named)
    assert all(got[d]["silencedBy"] == [s["id"]] for d in named)
    sil.expire(alertmanager, s["id"])


def test_re2_escapes_what_go_quotemeta_escapes():
    assert escape.re2(r"a.b|c(d)\e[f]{g}^$*+?-中") == r"a\.b\|c\(d\)\\e\[f\]\{g\}\^\$\*\+\?-中"


def test_hostile_comment_and_author_stay_one_line_and_print_as_typed(alertmanager, capsys):
    comment = "CHG-9 [red]x[/]\nsecond line\x1b[31m " + "长" * 600
    rc, out, _ = cli(capsys, "monitor", "silence", "add", "--device", "gd-r1", "--comment", comment,
                     "--author", "li[bold]si[/]\r\n", "--alertmanager", alertmanager, "--json")
    [made] = json.loads(out)["silences"]
    s = by_id(alertmanager, made["id"])
    assert "\n" not in s["comment"] and "\x1b" not in s["comment"] and len(s["comment"]) == escape.ALERT_MAX
    assert s["comment"].startswith("CHG-9 [red]x[/] second line") and s["createdBy"] == "li[bold]si[/]"
    rc, out, _ = cli(capsys, "monitor", "silence", "list", "--alertmanager", alertmanager)
    assert rc == 0 and "CHG-9 [red]x[/]" in out and "li[bold]si[/]" in out  # Rich markup printed, not applied
    sil.expire(alertmanager, made["id"])


@pytest.mark.parametrize("argv", [
    ["list"], ["add", "--device", "gd-r1", "--comment", "c"], ["expire", "0b3a5f8e-8c1a-4d55-9a42-5d4c1e0c2f11"]])
def test_alertmanager_down_is_one_line_exit_4(argv, capsys):
    rc, out, err = cli(capsys, "monitor", "silence", *argv, "--alertmanager", closed_url(), "--json")
    doc = json.loads(out)
    assert rc == 4 == doc["code"] and "does not answer 无响应" in doc["error"]
    assert len(err.splitlines()) == 1 and "Traceback" not in err


def test_one_alertmanager_down_of_two_lists_the_other_exit_3(alertmanager, capsys, monkeypatch):
    down = closed_url()
    monkeypatch.setattr(sil, "_urls", lambda args: [alertmanager, down])
    s = sil.add(alertmanager, ["gd-r1"], 600, "t", "partial")
    rc, out, _ = cli(capsys, "monitor", "silence", "list", "--json")
    doc = json.loads(out)
    assert rc == 3 and not doc["ok"] and list(doc["unreachable"]) == [down]
    assert s["id"] in [x["id"] for x in doc["silences"]]
    sil.expire(alertmanager, s["id"])


@pytest.mark.parametrize("argv, message", [
    (["add", "--device", "nope", "--device", "gd-r1", "--comment", "c"], "device 'nope': not in the inventory"),
    (["add", "--device", "gd-r1", "--comment", "c", "--duration", "9d"], "--duration '9d': between 1m and 7d"),
    (["add", "--device", "gd-r1", "--comment", "c", "--duration", "soon"], "--duration 'soon': give e.g."),
    (["add", "--device", "gd-r1", "--comment", "  "], "--comment: empty"),
    (["expire", "../../api/v2/alerts"], "not a silence id"),
    (["list", "--alertmanager", "127.0.0.1:9093"], "--alertmanager '127.0.0.1:9093': give http://HOST:PORT"),
])
def test_bad_input_exit_2(argv, message, capsys, alertmanager):
    extra = [] if "--alertmanager" in argv else ["--alertmanager", alertmanager]
    rc, _, err = cli(capsys, "monitor", "silence", *argv, *extra)
    assert rc == 2 and message in err and len(err.splitlines()) == 1, err


def test_expire_an_unknown_silence_is_bad_input(alertmanager, capsys):
    rc, _, err = cli(capsys, "monitor", "silence", "expire", "0b3a5f8e-8c1a-4d55-9a42-5d4c1e0c2f11", "--alertmanager", alertmanager)
    assert rc == 2 and "not found" in err


def test_a_device_is_silenced_where_its_collector_sends_its_alerts(monkeypatch):
    """Every device of the default inventory goes to the Alertmanager of the monitor server whose collector
    covers it (the ministry's own and DR sites included); no network is asked."""
    monkeypatch.delenv(sil.ENV, raising=False)
    inv = load(None)
    covered = {d: key for key in [*gen.provinces(inv), gen.MINISTRY] for d in gen.collector_devices(inv, key)}
    assert {d: sil.owner(inv, d) for d in inv.devices} == covered
    routes, problems = sil.route(inv, ["gd-r1", "guangzhou-r1", "bu-r1", "gd-dr-r1"])
    # a province without a monitor host (the vendor fixture has none): nowhere to silence its devices
    vendors = load(ppt.VENDORS)
    assert sil.route(vendors, ["sz-r1"]) == ({}, [f"sz-r1: no Alertmanager 无告警管理器 ({vendors.root}: site 'gd': no device with role monitor)"])
    with sil.maintenance(vendors, ["sz-r1"], "c1", "test", "t") as win:
        assert not win["opened"] and win["silences"] == [] and "no Alertmanager" in win["warnings"][0]
    monkeypatch.setenv(sil.ENV, "127.0.0.1:9093")  # malformed: a warning in the window too, the change goes on
    with sil.maintenance(vendors, ["sz-r1"], "c1", "test", "t") as win:
        assert win["warnings"] == ["$NETOPS_ALERTMANAGER '127.0.0.1:9093': give http://HOST:PORT"]
    assert problems == [] and routes == {f"http://{inv.devices['gd-mon1'].management}:9093": ["gd-dr-r1", "gd-r1", "guangzhou-r1"],
                                         f"http://{inv.devices['bu-mon1'].management}:9093": ["bu-r1"]}


# --- the window around a change ---------------------------------------------------------------------------

def test_a_failed_provisioning_run_silences_its_devices_while_it_runs_and_expires_after(net, alertmanager, monkeypatch):
    """xb-up stays in ExStart: the run rolls back. While it pushed, both ends were silenced by one silence
    with the change's author and id; when it ended the silence was expired, and the change record says so."""
    from jinbao_netops.access import CliSession

    monkeypatch.setenv(sil.ENV, alertmanager)
    net["fakes"]["xb-r1"].stuck = "ExStart"
    seen, real = [], CliSession.configure

    def configure(self, commands, arm_minutes=None):  # what Alertmanager holds while the devices take their lines
        seen.append([s for s in sil.silences(alertmanager) if s["state"] == "active" and "xb-up" in s["comment"]])
        return real(self, commands, arm_minutes=arm_minutes)

    monkeypatch.setattr(CliSession, "configure", configure)
    res = en.change(net["dir"], "xb-up", "provision", net["opts"]())
    assert res["result"] == "rolled_back" and not res["ok"]
    win = res["maintenance"]
    assert win["opened"] and win["expired"] and win["warnings"] == [] and win["devices"] == ["sz-r1", "xb-r1"]
    [opened] = win["silences"]
    assert seen and all([s["id"] for s in active] == [opened["id"]] for active in seen)
    s = by_id(alertmanager, opened["id"])
    assert s["state"] == "expired" and s["matchers"] == ["device=~sz-r1|xb-r1"] and s["createdBy"] == res["who"]
    assert s["comment"] == f"netops change {res['change']}: provision link xb-up"
    assert res["change"].endswith("-provision-xb-up")
    [rec] = en.history(net["dir"] / "changes")
    assert rec["change"] == res["change"] and rec["maintenance"]["expired"] is True
    assert rec["maintenance"]["silences"][0]["id"] == opened["id"]


def test_an_interrupted_run_expires_its_window(net, alertmanager, monkeypatch):
    from jinbao_netops.access import CliSession

    monkeypatch.setenv(sil.ENV, alertmanager)
    real, calls = CliSession.configure, []

    def configure(self, commands, arm_minutes=None):  # Ctrl-C as the first device takes its lines
        calls.append(commands)
        if len(calls) == 1:
            raise KeyboardInterrupt
        return real(self, commands, arm_minutes=arm_minutes)  # the rollback's

    monkeypatch.setattr(CliSession, "configure", configure)
    with pytest.raises(KeyboardInterrupt):
        en.change(net["dir"], "xa-up", "provision", net["opts"]())
    [rec] = en.history(net["dir"] / "changes")
    assert rec["result"] == "interrupted" and rec["maintenance"]["expired"] is True
    assert by_id(alertmanager, rec["maintenance"]["silences"][0]["id"])["state"] == "expired"


def test_without_an_alertmanager_the_change_goes_ahead_with_a_warning(net, monkeypatch, capsys):
    monkeypatch.setenv(sil.ENV, closed_url())
    res = en.change(net["dir"], "xb-up", "provision", net["opts"]())
    assert res["result"] == "applied" and res["ok"]
    win = res["maintenance"]
    assert not win["opened"] and not win["expired"] and win["silences"] == []
    assert "does not answer 无响应" in win["warnings"][0]
    link_commands._report(Out(), res)
    out = capsys.readouterr().out
    assert "maintenance window" in out and "a warning: the change went ahead" in out and "已生效 applied" in out


def test_hardening_opens_one_window_over_its_devices(harden_net, alertmanager, monkeypatch):
    monkeypatch.setenv(sil.ENV, alertmanager)
    res = hd.harden(harden_net["dir"], "sz", harden_net["opts"]())
    win = res["maintenance"]
    assert win["opened"] and win["expired"] and win["devices"] == ["sz-r1", "xa-r1", "xb-r1", "xc-r1"]
    assert res["change"].endswith("-harden-sz") and all(r["change"] == res["change"] for r in res["devices"].values())
    s = by_id(alertmanager, win["silences"][0]["id"])
    assert s["state"] == "expired" and s["matchers"] == ["device=~sz-r1|xa-r1|xb-r1|xc-r1"]
    assert hd.harden(harden_net["dir"], "sz", harden_net["opts"](check=True))["maintenance"] is None  # a check changes nothing


def test_a_drift_fix_is_a_change_in_its_own_window(net, alertmanager, monkeypatch, capsys):
    dt.provision(net, "xb-up")  # before Alertmanager is named: the vendor fixture has no monitor host (a warning only)
    dt.hand_edit(net["fakes"]["xb-r1"], dt.IOS_IF, "ip ospf hello-interval 1", "ip ospf hello-interval 10")
    monkeypatch.setenv(sil.ENV, alertmanager)
    res = dt.drift(net, "xb-r1", do_fix=True)
    [fix] = res["fixes"]
    assert fix["result"] == "applied" and fix["change"].endswith("-provision-xb-up")
    win = fix["maintenance"]
    assert win["opened"] and win["expired"] and win["devices"] == ["xb-r1"]  # only the end that drifted is pushed to
    s = by_id(alertmanager, win["silences"][0]["id"])
    assert s["state"] == "expired" and s["matchers"] == ["device=~xb-r1"] and fix["change"] in s["comment"]
    drift_commands._report(Out(), res)
    assert f"maintenance window {fix['change']}: silence {s['id']}" in capsys.readouterr().out
