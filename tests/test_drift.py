"""`netops drift` against the provisioning tests' vendor doubles (VRP, Comware, IOS over real netmiko):
intended (the link templates) vs running vs saved, the owned-stanza rule, an unreachable device, and
`--fix` through the engine's safe push. The doubles' running and saved configs are what their CLI
prints (`display saved-configuration` / `show startup-config` under the vendor's header)."""
from __future__ import annotations

import functools
import json
import re

import pytest

from jinbao_netops import inventory
from jinbao_netops.cli import main
from jinbao_netops.errors import FINDINGS, OK, PARTIAL
from jinbao_netops.topology.provision import drift as dr
from jinbao_netops.topology.provision import drift_commands as dc
from jinbao_netops.topology.provision import engine as en
import test_provision_push as push
from test_provision_push import ARM, CONFIRM, SAVE

env, net = push.env, push.net  # the vendor doubles' fixtures, used here as they are

IOS_IF, VRP_IF = "GigabitEthernet0/1", "GigabitEthernet0/0/1"  # xb-r1's uplink; sz-r1's end of xa-up


def provision(net, *links: str):
    """The county links provisioned by the engine (their ends' configs are then the intent, saved);
    each test provisions only what it looks at (the doubles answer at netmiko's pace)."""
    for link_id in links:
        assert en.change(net["dir"], link_id, "provision", net["opts"]())["result"] == "applied"
    return net


@pytest.fixture
def xa(net):
    return provision(net, "xa-up")


@pytest.fixture
def xb(net):
    return provision(net, "xb-up")


def drift(net, scope, **kw) -> dict:
    return dr.run(net["dir"], scope, net["opts"](), **kw)


def by_device(res: dict) -> dict:
    return {r["device"]: r for r in res["devices"]}


def hand_edit(fake, interface: str, old: str, new: str | None) -> None:
    """What someone typing at the device's CLI does to one interface line (``new`` None: removes it)."""
    lines = fake._itf(interface)
    i = lines.index(old)
    lines[i:i + 1] = [new] if new else []


def test_clean_devices_have_no_findings(net):
    """Comware and IOS just provisioned: the running config holds the intent and equals the saved one,
    the IOS startup-config's `Using … bytes` header and the running config's own lines outside the
    intent (sysname, hostname) notwithstanding."""
    provision(net, "xa-up", "xb-up")
    for device in ("xa-r1", "xb-r1"):
        res = drift(net, device)
        [rec] = res["devices"]
        assert rec["status"] == "clean", rec
        assert (rec["drift"], rec["unauthorised"], rec["unsaved"], rec["remediation"]) == \
            ([], [], {"running_only": [], "saved_only": []}, [])
        assert rec["links"] == [{"xa-r1": "xa-up", "xb-r1": "xb-up"}[device]]
        assert res["code"] == OK and res["ok"] and res["failed"] == []


def test_hand_changed_interface_line_is_drift_unauthorised_and_unsaved(xb):
    """The issue's scenario on IOS: a hello interval changed by hand and not saved → drift (the
    intended line is gone), unauthorised (the new line, in the link's own interface) and unsaved;
    once saved (`write memory`), only drift and unauthorised remain."""
    fake = xb["fakes"]["xb-r1"]
    hand_edit(fake, IOS_IF, "ip ospf hello-interval 1", "ip ospf hello-interval 10")
    res = drift(xb, "xb-r1")
    [rec] = res["devices"]
    assert rec["drift"] == [[f"interface {IOS_IF}", "ip ospf hello-interval 1"]]
    assert rec["unauthorised"] == [[f"interface {IOS_IF}", "ip ospf hello-interval 10"]]
    assert rec["unsaved"] == {"running_only": [[f"interface {IOS_IF}", "ip ospf hello-interval 10"]],
                              "saved_only": [[f"interface {IOS_IF}", "ip ospf hello-interval 1"]]}
    assert rec["remediation"] == [f"interface {IOS_IF}", "  no ip ospf hello-interval 10", "  ip ospf hello-interval 1"]
    assert rec["status"] == "findings" and res["code"] == FINDINGS and not res["ok"]
    fake.saved = fake.running()  # write memory
    [rec] = drift(xb, "xb-r1")["devices"]
    assert rec["unsaved"] == {"running_only": [], "saved_only": []}
    assert rec["drift"] and rec["unauthorised"] and rec["status"] == "findings"


def test_vrp_fix_is_in_the_undo_form(xa):
    """On VRP a removal is `undo …` in VRP's own form: `undo description` takes no text, `undo
    shutdown` brings the port back; the intended description returns."""
    fake = xa["fakes"]["sz-r1"]
    hand_edit(fake, VRP_IF, "description 至甲县", "description 临时改动")
    fake._itf(VRP_IF).append("shutdown")
    [rec] = drift(xa, "sz-r1")["devices"]
    assert [f"interface {VRP_IF}", "shutdown"] in rec["unauthorised"]
    assert [f"interface {VRP_IF}", "description 临时改动"] in rec["unauthorised"]
    assert [f"interface {VRP_IF}", "description 至甲县"] in rec["drift"]
    fix = rec["remediation"]
    at = fix.index(f"interface {VRP_IF}")
    stanza = fix[at + 1:at + 1 + next(i for i, x in enumerate(fix[at + 1:] + ["end"]) if not x.startswith(" "))]
    assert sorted(stanza) == sorted(["  undo description", "  undo shutdown", "  description 至甲县"])
    assert not any(re.match(r"\s*no ", x) for x in fix)


def test_lines_outside_the_owned_stanzas_are_ignored(xa):
    """A stanza the suite does not render (a loopback), a line added to a stanza it renders but does
    not own (OSPF) and a global line are someone else's business: not reported, saved or not — while
    the same kind of line in the link's interface is."""
    fake = xa["fakes"]["xa-r1"]
    fake.config.append(["interface LoopBack9", ["ip address 10.99.0.1 32"]])
    fake.config.append(["lldp global enable", []])
    ospf = next(st for st in fake.config if st[0].startswith("ospf 1 "))
    ospf[1].append("silent-interface all")
    fake.saved = fake.running()
    [rec] = drift(xa, "xa-r1")["devices"]
    assert rec["status"] == "clean", rec
    fake._itf("GigabitEthernet1/0/1").append("lldp enable")
    fake.saved = fake.running()
    [rec] = drift(xa, "xa-r1")["devices"]
    assert rec["unauthorised"] == [["interface GigabitEthernet1/0/1", "lldp enable"]] and rec["drift"] == []


def test_an_unreachable_device_is_reported_for_itself_only(xa):
    """The city's scope: xc-r1 (FRR) has no double listening → unreachable, named with the access
    layer's error; the others are read and reported as usual (xb-r1: its link still planned, a
    shutdown on its interface is outside the intent); the run is partial (exit 3)."""
    xa["fakes"]["xb-r1"]._itf(IOS_IF).append("shutdown")
    res = drift(xa, "sz")
    recs = by_device(res)
    assert sorted(recs) == ["sz-r1", "xa-r1", "xb-r1", "xc-r1"]
    assert recs["xc-r1"]["status"] == "unreachable" and "unreachable over SSH" in recs["xc-r1"]["error"]
    assert recs["xa-r1"]["status"] == "clean"
    assert recs["xb-r1"]["unauthorised"] == [[f"interface {IOS_IF}", "shutdown"]]
    assert res["failed"] == ["xc-r1"] and res["code"] == PARTIAL


def test_fix_goes_through_the_engine_push_and_leaves_the_device_clean(xb):
    fakes, cdir = xb["fakes"], xb["dir"] / "changes"
    records = len(en.history(cdir))
    fake = fakes["xb-r1"]
    hand_edit(fake, IOS_IF, "ip ospf hello-interval 1", "ip ospf hello-interval 10")
    fake.received.clear()
    res = drift(xb, "xb-r1", do_fix=True)
    assert [(f["link"], f["action"], f["result"]) for f in res["fixes"]] == [("xb-up", "provision", "applied")]
    # the engine's safe push: armed with IOS's revert timer, verified, confirmed, saved, recorded
    assert any(ARM["ios"].fullmatch(x) for x in fake.received), fake.received
    assert CONFIRM["ios"] in fake.received and SAVE["ios"] in fake.received
    assert "no ip ospf hello-interval 10" in fake.received
    new = en.history(cdir)[records:]
    assert [(r["link"], r["action"], r["result"]) for r in new] == [("xb-up", "provision", "applied")]
    assert by_device(res)["xb-r1"]["status"] == "clean" and res["code"] == OK
    assert by_device({"devices": res["before"]})["xb-r1"]["status"] == "findings"
    assert fake.saved == fake.running() and "ip ospf hello-interval 1" in fake._itf(IOS_IF)


def test_fix_leaves_a_device_with_unsaved_changes_only_alone(xa):
    """Unsaved but as intended (a line outside the owned stanzas): nothing to re-provision, nothing pushed."""
    fake = xa["fakes"]["xa-r1"]
    fake.config.append(["lldp global enable", []])
    fake.received.clear()
    res = drift(xa, "xa-r1", do_fix=True)
    assert res["fixes"] == [] and not any(ARM["comware"].fullmatch(x) for x in fake.received)
    [rec] = res["devices"]
    assert rec["unsaved"]["running_only"] == [["lldp global enable"]] and res["code"] == FINDINGS


def test_cli_table_and_json(xa, monkeypatch, capsys):
    """The verb's own output: a display name with Rich markup in it prints as typed; --json is the
    report with its exit status; a bad --scope is one line, exit 2."""
    inv_file = xa["dir"] / "inventory.yml"
    inv_file.write_text(inv_file.read_text(encoding="utf-8").replace("name: 市核心路由器", "name: 市核心[/]路由器[bold]"),
                        encoding="utf-8")
    assert inventory.load(xa["dir"]).devices["sz-r1"].name == "市核心[/]路由器[bold]"
    o = xa["opts"]()
    monkeypatch.setattr(dc, "Options", functools.partial(en.Options, port=o.port, snmp_port=o.snmp_port))
    xa["fakes"]["xb-r1"]._itf(IOS_IF).append("shutdown")
    argv = ["drift", "-i", str(xa["dir"]), "--scope"]
    assert main([*argv, "xa"]) == OK
    capsys.readouterr()
    assert main([*argv, "sz-r1"]) == FINDINGS
    assert "市核心[/]路由器[bold]" in capsys.readouterr().out
    assert main([*argv, "xb-r1", "--json"]) == FINDINGS
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is False and doc["code"] == FINDINGS
    assert doc["devices"][0]["unauthorised"] == [[f"interface {IOS_IF}", "shutdown"]]
    assert main([*argv, "nowhere"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--scope 'nowhere'" in err and "Traceback" not in err


def test_a_scope_without_network_devices_is_bad_input(capsys):
    """A server's scope (the embedded default's huadu-srv1): nothing to compare, one line, exit 2."""
    assert main(["drift", "--scope", "huadu-srv1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no network device among huadu-srv1" in err


def test_a_device_without_ssh_access_is_not_read_and_cannot_be_provisioned(net, capsys):
    """xb-r1 declared v2c-only (access: [snmp]): drift shows it not read with the reason, and that is no
    failure of the check (it was 'unreachable' with a credential error, exit 3, every hour under `serve`);
    provisioning its link fails on it alone with the reason, nothing pushed, nothing recorded."""
    import yaml
    from conftest import snmp_only_yaml

    from jinbao_netops.errors import DeviceError

    inv_file = net["dir"] / "inventory.yml"
    inv_file.write_text(yaml.safe_dump(snmp_only_yaml(yaml.safe_load(inv_file.read_text()), "xb-r1"), allow_unicode=True))
    reason = "no SSH access declared (access: [snmp]) 未声明SSH访问方式"
    res = drift(net, "xb-r1")
    [rec] = res["devices"]
    assert (rec["status"], rec["error"]) == ("not_read", reason)
    assert res["failed"] == [] and res["code"] == OK
    assert main(["drift", "--scope", "xb-r1", "-i", str(net["dir"])]) == OK
    shown = capsys.readouterr().out
    assert "未读取 not read" in shown and f"xb-r1: {reason}" in shown
    with pytest.raises(DeviceError, match=re.escape(f"device 'xb-r1': {reason} (nothing pushed 未下发任何配置)")):
        en.change(net["dir"], "xb-up", "provision", net["opts"]())
    assert not any(line.startswith("interface") for f in net["fakes"].values() for line in f.received)
    assert not net["fakes"]["xb-r1"].received and not (net["dir"] / "changes/links.jsonl").exists()
