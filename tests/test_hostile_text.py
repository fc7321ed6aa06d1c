"""Free text is data, never syntax: arbitrary text a person could type, through the model and every
renderer that carries it. The model refuses what a target cannot carry (one line naming file, object
and field); whatever reaches a renderer — even text the model would refuse — comes out as exactly
the intended lines, checked by the target's own parser where one runs here (ip -batch, dot, the
HTML parser) and by the suite's configuration parser for router and daemon configs."""
from __future__ import annotations

import copy
import html.parser
import io
import json
import shutil
import subprocess
import unicodedata

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from rich.console import Console

from jinbao_netops import escape, inventory
from jinbao_netops.inventory.model import Interface, Site
from jinbao_netops.lab import plan as labplan
from jinbao_netops.output import Out
from jinbao_netops.topology.provision import allocate as al
from jinbao_netops.topology.provision import render as rd

from conftest import REPO

INV = inventory.load(inventory.DEFAULT_INVENTORY)
VENDORS = REPO / "tests/fixtures/provision/vendors"
# anything: line breaks of every kind, quotes, CLI help keys, markup, templates, bidi controls
TEXT = st.text(st.characters(codec="utf-8"), min_size=1, max_size=40) | st.sampled_from([
    "x\nusername evil privilege 15", "a\r\nip route 0.0.0.0 0.0.0.0 1.2.3.4", "x\u2028extend pwn /bin/sh -c id",
    'q" ; netns exec x touch /tmp/p', "help?", "番禺[/]区", "{{ lookup('pipe','id') }}", "<script>alert(1)</script>",
    "\u202eevil", "\t0", "\x1b[2J", "#comment", "\\\\", "'\"'"])
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def accepted(text: str) -> bool:
    try:
        Interface(description=text)
        return True
    except ValidationError:
        return False


@SETTINGS
@given(TEXT)
def test_the_model_takes_a_description_only_if_every_renderer_can_carry_it(text):
    if accepted(text):
        assert escape.one_line(text) == text and not set(text) & set('"?#')
        assert escape.cli(text) == text and escape.ip_batch(text) == f'"{text}"'


def test_a_broken_description_is_one_line_naming_file_object_and_field(tmp_path):
    inv = tmp_path / "inv"
    shutil.copytree(REPO / "inventory/default", inv)
    f = inv / "guangdong.yml"
    f.write_text(f.read_text(encoding="utf-8").replace("description: 至花都区", 'description: "至花都区\\nusername x"', 1),
                 encoding="utf-8")
    with pytest.raises(inventory.InventoryError) as e:
        inventory.load(inv)
    [line] = e.value.problems
    assert line.startswith(f"{f}:") and "device 'guangzhou-r1': field 'interfaces.eth4.description':" in line
    assert "U+000A is not allowed" in line and "\n" not in line


# --- router configuration: the lab's FRR and provisioning's vendor templates ---------------------------------

def _with_description(inv, device: str, interface: str, text: str):
    inv = copy.deepcopy(inv)
    inv.devices[device].interfaces[interface].description = text  # past the model: the renderer's own defence
    return inv


@SETTINGS
@given(TEXT)
def test_frr_lab_config_has_exactly_the_intended_lines(text):
    base = labplan.build(INV, "jinbao").nodes["guangzhou-r1"].frr_conf
    got = labplan.build(_with_description(INV, "guangzhou-r1", "eth4", text), "jinbao").nodes["guangzhou-r1"].frr_conf
    assert_only_the_description_differs(rd.parse(base), rd.parse(got), "interface eth4")


def assert_only_the_description_differs(want: rd.Node, got: rd.Node, stanza: str) -> None:
    """The same configuration tree, but for (at most) one description line in ``stanza``."""
    def strip(tree):
        return [(c.line, [g.line for g in c.children if not g.line.startswith("description")]) for c in tree.children]

    assert strip(got) == strip(want)
    descs = [g.line for c in got.children for g in c.children if g.line.startswith("description")]
    assert len(descs) <= len([g for c in want.children for g in c.children if g.line.startswith("description")])
    assert all(g.line.startswith("description") is False for c in got.children if c.line != stanza for g in c.children
               if g.line not in {x.line for w in want.children if w.line == c.line for x in w.children})


@pytest.fixture(scope="module")
def vendor_link(tmp_path_factory):
    d = tmp_path_factory.mktemp("vend") / "inv"
    shutil.copytree(VENDORS, d)
    inv, alloc = al.reserve(d, "xa-up")
    return inv, alloc


@SETTINGS
@given(text=TEXT)
def test_vendor_link_config_has_exactly_the_intended_lines(vendor_link, text):
    inv, alloc = vendor_link
    link = inv.links["xa-up"]
    for end in link.ends():
        plain = rd.parse(rd.render_end(_with_description(inv, end.device, end.interface, "x"), link, end, alloc.ends))
        hostile = _with_description(inv, end.device, end.interface, text)
        assert_only_the_description_differs(plain, rd.parse(rd.render_end(hostile, link, end, alloc.ends)),
                                            f"interface {end.interface}")


# --- the lab's ip -batch and snmpd.conf ---------------------------------------------------------------------

def _ip(*args, input=None):
    return subprocess.run(["unshare", "--map-root-user", "--net", "sh", "-c", *args], input=input,
                          capture_output=True, text=True, timeout=30)


@settings(max_examples=40, deadline=None)
@given(TEXT)
def test_ip_batch_alias_sets_exactly_the_alias(text):
    """`ip -batch` in a private network namespace: one veth pair, its alias the text (on one line)."""
    batch = f"link add d0 type veth peer name d1\nlink set d0 alias {escape.ip_batch(text)}\n"
    r = _ip("ip -batch - && ip -j link show", input=batch)
    assert r.returncode == 0, (batch, r.stderr)
    links = {i["ifname"]: i for i in json.loads(r.stdout)}
    assert set(links) == {"lo", "d0", "d1"}  # nothing else was created
    assert links["d0"].get("ifalias", "") == escape.ip_batch(text)[1:-1]


@SETTINGS
@given(TEXT)
def test_snmpd_conf_has_exactly_the_intended_directives(text):
    node = copy.deepcopy(labplan.build(INV, "jinbao").nodes["huadu-r1"])
    node.snmp.location = text
    conf = labplan.render_snmpd(node, {"NETOPS_SNMP_AUTH_KEY": "a" * 16, "NETOPS_SNMP_PRIV_KEY": "p" * 16,
                                       "NETOPS_SNMP_COMMUNITY": "c0mm"})
    directives = [ln.split()[0] for ln in conf.splitlines() if ln.strip() and not ln.startswith("#")]
    assert directives == ["agentAddress", "sysName", "sysLocation", "sysContact", "createUser", "rouser", "rocommunity",
                          "informsink", "authtrapenable"]
    [loc] = [ln for ln in conf.splitlines() if ln.startswith("sysLocation")]
    assert loc.rstrip() == f"sysLocation {escape.conf(text)}".rstrip()


# --- what people read: diagrams, reports, the console -------------------------------------------------------

@settings(max_examples=25, deadline=None)
@given(TEXT)
def test_dot_diagram_parses_with_the_name_as_the_label(text):
    from jinbao_netops.topology.draw import to_dot
    from jinbao_netops.topology.graph import build

    inv = copy.deepcopy(INV)
    inv.sites["huadu"].name = text
    src = to_dot(build(inv), scope="huadu")
    r = subprocess.run(["dot", "-Tjson"], input=src, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr[-500:]
    g = json.loads(r.stdout)
    clusters = [o for o in g.get("objects", []) if o.get("name", "").startswith("cluster")]
    assert any(o.get("label", "").startswith(f"<B>{escape.dot_html(text)}</B>") for o in clusters)


class _Tags(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)


@SETTINGS
@given(TEXT)
def test_audit_report_html_adds_no_element(text):
    from jinbao_netops.security.audit import run_audit
    from jinbao_netops.security.report import render

    fresh = (REPO / "tests/fixtures/security/debian12-lab-fresh.txt").read_text()
    rep = run_audit(INV, "huadu-srv1", run=lambda device, command, stdin=None: fresh)

    def tags(r):
        p = _Tags()
        p.feed(render(r))
        return p.tags

    base = tags(rep)
    rep["hosts"][0]["name"] = rep["hosts"][0]["site_name"] = text
    rep["hosts"][0]["error"] = text
    assert tags(rep) == base


@SETTINGS
@given(TEXT)
def test_console_tables_print_text_as_typed(text):
    out = Out()
    out.console = Console(file=io.StringIO(), width=400, color_system=None)
    out.table("t", ["name"], [[text]])
    printed = out.console.file.getvalue()
    visible = [c for c in text if c.isprintable() and not c.isspace()]
    assert all(c in printed for c in visible)  # markup characters too: nothing was read as a tag
    assert not [c for c in printed if c != "\n" and unicodedata.category(c) == "Cc"]  # no ESC sequence reaches the terminal


def test_site_name_with_markup_prints_as_typed(netops, tmp_path):
    """Reproduced: 番禺[/]区 as a site name gave a MarkupError traceback."""
    inv = tmp_path / "inv"
    shutil.copytree(REPO / "inventory/default", inv)
    f = inv / "guangdong.yml"
    f.write_text(f.read_text(encoding="utf-8").replace("name: 番禺区社会保险经办中心", "name: 番禺[/]区", 1), encoding="utf-8")
    for args in (["inventory", "show", "panyu"], ["inventory", "graph", "guangzhou"]):
        r = netops(*args, "-i", str(inv))
        assert r.returncode == 0 and "番禺[/]区" in r.stdout and "Traceback" not in r.stderr, r.stderr
    assert Site(name="番禺[/]区", level="county", parent="x", block="10.0.0.0/24").name == "番禺[/]区"


@SETTINGS
@given(TEXT)
def test_an_nft_value_stays_one_word_or_string(text):
    """nftables: a line break starts a statement, a double quote ends the string; neither survives."""
    out = escape.nft(text)
    assert '"' not in out and len(out.splitlines()) <= 1 and escape.one_line(out) == out
