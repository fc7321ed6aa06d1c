"""Grafana dashboards from `netops monitor generate`: the JSON model's structure (Grafana 10+), every
query parsed by promtool, every metric name one the suite really exports, and inventory text that can
change titles but never a query."""
from __future__ import annotations

import codecs
import json
import subprocess
import unicodedata
from pathlib import Path

import promql_parser
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import CollectorRegistry
from pydantic import ValidationError

from jinbao_netops import escape
from jinbao_netops.backup import catalogue
from jinbao_netops.collectors.exporter import Snapshot
from jinbao_netops.collectors.traps import Receiver
from jinbao_netops.inventory import load
from jinbao_netops.inventory.model import Site
from jinbao_netops.monitoring import dashboards as dash
from jinbao_netops.monitoring import generate as gen
from jinbao_netops.monitoring import rules

from dashboard_queries import queries, variable_selectors

INV = load(None)
SERVERS = gen.grafana_servers(INV)


def boards(inv=INV) -> dict[str, tuple[str, dict]]:
    return dash.dashboards(inv, SERVERS, gen.MINISTRY)


BOARDS = boards()


@pytest.fixture(scope="module")
def out(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("monitor")
    gen.generate(INV, d)
    return d


def exported() -> set[str]:
    """Every series name the suite's Prometheus servers can hold: the collector's families (an empty
    round renders every family), the trap receiver's, the backup catalogue's per-asset metrics (the only ones the province
    configs keep), the recording rules, and what Prometheus makes itself per target and per alert."""
    reg = CollectorRegistry()
    reg.register(Snapshot())
    fams = text_string_to_metric_families(generate_latest(reg).decode())
    names = {f.name + ("_total" if f.type == "counter" else "") for f in fams}
    names |= {name for name, *_ in catalogue.METRICS}
    traps = Receiver({}, "http://127.0.0.1:9").metrics().decode()  # the trap receiver's families, from its HELP lines
    names |= {line.split()[2] for line in traps.splitlines() if line.startswith("# HELP ")}
    names |= {r for r, _ in [*rules.PROVINCE_RECORDS, *rules.MINISTRY_RECORDS]} | {rules.DEVICE_INFO, rules.LINK_END_INFO}
    return names | {"up", "scrape_duration_seconds", "ALERTS"}


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects, read from its syntax tree."""
    names, todo = set(), [promql_parser.parse(expr)]
    while todo:
        node = todo.pop()
        if isinstance(node, promql_parser.VectorSelector):
            by_matcher = [m.value for m in node.matchers.matchers if m.name == "__name__"]
            assert node.name or by_matcher, f"a selector without a metric name in {expr}"
            names.add(node.name or by_matcher[0])
        for attr in ("lhs", "rhs", "expr", "param", "args", "vector_selector"):
            child = getattr(node, attr, None)
            todo += child if isinstance(child, list) else [] if child is None else [child]
    return names


def all_queries() -> list[tuple[str, dict, str, str]]:
    return [(rel, p, ref, e) for rel, (_, m) in BOARDS.items() for p, ref, e in queries(m)]


def promtool_check(exprs: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess:
    """Prometheus's own parser on each expression, as a recording rule of one rules file."""
    f = tmp_path / "dashboards.yml"
    f.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": [
        {"record": name, "expr": e} for name, e in exprs.items()]}]}, allow_unicode=True))
    return subprocess.run(["promtool", "check", "rules", str(f)], capture_output=True, text=True, timeout=120, check=False)


def test_files_written(out):
    names = sorted(str(p.relative_to(out)) for p in (out / "grafana").rglob("*") if p.is_file())
    assert names == ["grafana/dashboards/backup.json", "grafana/dashboards/collector.json", "grafana/dashboards/database.json",
                     "grafana/dashboards/device.json", "grafana/dashboards/national.json",
                     "grafana/dashboards/province-guangdong.json", "grafana/dashboards/province-sichuan.json",
                     "grafana/provisioning/dashboards/netops.yml", "grafana/provisioning/datasources/netops.yml"]
    for rel, (_, model) in BOARDS.items():
        assert json.loads((out / rel).read_text(encoding="utf-8")) == model
    assert not list(out.rglob(".netops-stage-*"))


def test_uids_are_stable_unique_and_scoped():
    uids = {rel: m["uid"] for rel, (_, m) in BOARDS.items()}
    assert uids["grafana/dashboards/national.json"] == "jinbao-national"
    assert uids["grafana/dashboards/province-guangdong.json"] == "jinbao-province-guangdong"
    assert len(set(uids.values())) == len(uids) and all(len(u) <= 40 for u in uids.values())
    assert {rel: m["uid"] for rel, (_, m) in boards(load(None)).items()} == uids  # a second run: the same uids
    long = dash.uid("n" * 40, "province", "p" * 40)
    assert len(long) == 40 and long != dash.uid("n" * 40, "province", "p" * 39 + "q")


@pytest.mark.parametrize("rel", sorted(BOARDS))
def test_structure(rel):
    key, m = BOARDS[rel]
    assert m["schemaVersion"] >= 38 and m["title"] and m["uid"]
    ids = [p["id"] for p in m["panels"]]
    assert len(ids) == len(set(ids))
    cells = set()
    for p in m["panels"]:
        pos = p["gridPos"]
        assert set(pos) == {"x", "y", "w", "h"} and pos["x"] + pos["w"] <= 24 and pos["w"] > 0 and pos["h"] > 0, p["title"]
        mine = {(x, y) for x in range(pos["x"], pos["x"] + pos["w"]) for y in range(pos["y"], pos["y"] + pos["h"])}
        assert not cells & mine, f"{p['title']} overlaps another panel"
        cells |= mine
        assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, p["title"]
        assert p["targets"] and all(t["datasource"] == p["datasource"] for t in p["targets"]), p["title"]
        assert len({t["refId"] for t in p["targets"]}) == len(p["targets"])
        assert any("\u4e00" <= c <= "\u9fff" for c in p["title"]) and any(c.isascii() and c.isalpha() for c in p["title"])
    variables = m["templating"]["list"]
    ds = variables[0]
    assert (ds["type"], ds["name"], ds["query"]) == ("datasource", "datasource", "prometheus")
    assert ds["current"]["value"] == dash.uid("jinbao", "prom", key)  # the level's own Prometheus
    for v in variables[1:]:
        assert v["type"] == "query" and v["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert v["definition"] == v["query"]["query"] and v["allValue"] == dash.ALL
    for v, _, label in variable_selectors(m):
        assert label == v["name"], v["query"]
    # every $variable a query names is one of the dashboard's (queries() substitutes those)
    assert not [(p["title"], e) for p, _, e in queries(m) if "$" in e]
    assert not [(v["name"], sel) for v, sel, _ in variable_selectors(m) if "$" in sel]


def test_levels_and_template_variables():
    national = BOARDS["grafana/dashboards/national.json"][1]
    assert [v["name"] for v in national["templating"]["list"]] == ["datasource", "province"]
    device = BOARDS["grafana/dashboards/device.json"][1]
    assert [v["name"] for v in device["templating"]["list"]] == ["datasource", "province", "site", "device"]
    assert device["templating"]["list"][3]["query"]["query"] == \
        'label_values(netops_snmp_up{province=~"$province", site=~"$site"}, device)'
    gd = BOARDS["grafana/dashboards/province-guangdong.json"][1]
    assert [v["name"] for v in gd["templating"]["list"]] == ["datasource", "site"]
    assert all('province="guangdong"' in e for _, _, e in queries(gd) if "{" in e)
    assert gd["title"].startswith("广东省社会保险数据中心 guangdong")
    # the province's sites by name, in the sites table and as legend names
    table = next(p for p in gd["panels"] if p["type"] == "table" and p["title"].endswith("Cities and counties"))
    mapped = {o["matcher"]["options"]: o["properties"][0]["value"][0]["options"] for o in table["fieldConfig"]["overrides"]}
    assert mapped["site"]["guangzhou"]["text"] == "广州市社会保险信息中心 guangzhou"
    assert "chengdu" not in mapped["site"] and "bu" not in mapped["site"]  # another province's, the ministry's


@pytest.mark.parametrize("rel", sorted(BOARDS))
def test_every_query_parses_with_promtool(rel, tmp_path):
    _, m = BOARDS[rel]
    exprs = {f"panel_{p['id']}_{ref}": e for p, ref, e in queries(m)}
    exprs |= {f"variable_{v['name']}": sel for v, sel, _ in variable_selectors(m)}
    r = promtool_check(exprs, tmp_path)
    assert r.returncode == 0 and "SUCCESS" in r.stdout, r.stdout + r.stderr


def test_promtool_check_is_not_vacuous(tmp_path):
    r = promtool_check({"ok": "netops_snmp_up", "bad": 'sum by (site) (netops_snmp_up{site=~".*"}'}, tmp_path)
    assert r.returncode != 0 and "bad" in r.stdout + r.stderr


def test_every_metric_name_is_exported():
    names = exported()
    for rel, p, ref, e in all_queries():
        assert metric_names(e) <= names, (rel, p["title"], ref, metric_names(e) - names)
    for rel, (_, m) in BOARDS.items():
        for v, sel, _ in variable_selectors(m):
            assert metric_names(sel) <= names, (rel, v["name"])
    assert "netops_snmp_up" in names and "netops_interface_in_bytes_total" in names  # the set is the real one
    assert metric_names('sum(rate(a_total{x="y"}[5m])) / on (d) group_left b or {__name__="c"}') == {"a_total", "b", "c"}


def test_collector_dashboard_shows_every_family_of_the_trap_receiver():
    """Each netops_trap_* family the receiver exports (collectors/METRICS.md) has a panel on the collector
    self-metrics dashboard, and so does the receivers' scrape target: a family added later needs its panel too."""
    text = Receiver({}, "http://127.0.0.1:9").metrics().decode()
    families = {line.split()[2] for line in text.splitlines() if line.startswith("# HELP ")}
    assert families and all(f.startswith("netops_trap_") for f in families)
    model = BOARDS["grafana/dashboards/collector.json"][1]
    used = {n for _, _, e in queries(model) for n in metric_names(e)}
    assert families <= used, families - used
    assert any('job="netops-traps"' in e and metric_names(e) == {"up"} for _, _, e in queries(model))


def test_national_reads_what_the_ministry_holds():
    """The ministry's Prometheus has the provinces' aggregates (federated), its own records and `up`."""
    held = {r for r, _ in [*rules.PROVINCE_RECORDS, *rules.MINISTRY_RECORDS] if r.split(":")[0] in ("province", "ministry")}
    used = {n for _, _, e in queries(BOARDS["grafana/dashboards/national.json"][1]) for n in metric_names(e)}
    assert used <= held | {"up"}, used - held


def test_datasources_one_per_prometheus(out):
    provisioned = yaml.safe_load((out / "grafana/provisioning/datasources/netops.yml").read_text(encoding="utf-8"))
    by_uid = {d["uid"]: d for d in provisioned["datasources"]}
    assert {u: d["url"] for u, d in by_uid.items()} == {
        "jinbao-prom-guangdong": "http://10.254.44.15:9090", "jinbao-prom-sichuan": "http://10.254.51.15:9090",
        "jinbao-prom-ministry": "http://10.254.0.22:9090"}
    for _, m in BOARDS.values():  # each dashboard's default is a provisioned datasource, by uid and name
        cur = m["templating"]["list"][0]["current"]
        assert by_uid[cur["value"]]["name"] == cur["text"] and by_uid[cur["value"]]["type"] == "prometheus"
    provider = yaml.safe_load((out / "grafana/provisioning/dashboards/netops.yml").read_text(encoding="utf-8"))
    assert provider["providers"][0]["options"]["path"] == dash.DASHBOARD_DIR


# --- inventory text --------------------------------------------------------------------------------

HOSTILE = ['广州"}) or vector(1) #', "a\\", 'x}', 'q", device=~".*', "$device", "${__user.login}", "[[site]]",
           "{{province}}", "</script>", "'"]


def _named(text: str):
    inv = load(None)
    inv.network.name = text
    for s in inv.sites.values():
        s.name = text
    return inv


def _exprs(bs) -> list:
    return [(rel, t["expr"]) for rel, (_, m) in bs.items() for p in m["panels"] for t in p["targets"]] + \
        [(rel, v["query"]["query"]) for rel, (_, m) in bs.items() for v in m["templating"]["list"][1:]]


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(HOSTILE) | st.text(min_size=1, max_size=30).filter(lambda t: t == t.strip()))
def test_display_names_change_titles_never_queries(text):
    try:
        Site(name=text, level="city", parent="x", block="10.0.0.0/24")
    except ValidationError:
        return  # the model refuses it: it never reaches a renderer
    bs = boards(_named(text))
    assert _exprs(bs) == _exprs(BOARDS)
    national = bs["grafana/dashboards/national.json"][1]
    assert national["title"].endswith(text)
    assert json.loads(json.dumps(national, ensure_ascii=False)) == national  # JSON carries it as data


@pytest.mark.parametrize("text", ["广州\n市", "a\r\nb", "x\u2028y", "\u202eevil"])
def test_the_model_refuses_line_breaks_and_invisible_characters(text):
    with pytest.raises(ValidationError):
        Site(name=text, level="city", parent="x", block="10.0.0.0/24")


def _decode(literal: str) -> str:
    """A PromQL double-quoted literal as Go's strconv.Unquote reads the escapes ``escape.promql`` writes."""
    assert literal[0] == literal[-1] == '"'
    return codecs.decode(literal[1:-1].encode("ascii", "backslashreplace"), "unicode_escape")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_promql_literal_round_trips(text):
    lit = escape.promql(text)
    assert _decode(lit) == "".join("\ufffd" if unicodedata.category(c) == "Cs" else c for c in text)
    assert "$" not in lit and "[" not in lit  # nothing Grafana would expand
    assert not any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp", "Cs") for c in lit)


def test_hostile_scope_values_stay_one_literal(tmp_path):
    """A fixed label value that is PromQL syntax (were an id ever free text) stays one string literal:
    every query of the province board still parses, and reads that one value."""
    exprs = {}
    for i, text in enumerate(HOSTILE + ["x\ny", "\U000e0001", "\ud800"]):
        m = dash.render(INV, dash.BOARDS["province"], ("u", "n"), scope_id="p", fixed={"province": text})
        lit = escape.promql(text)
        for p, ref, e in queries(m):
            if "{" in e:
                assert f"province={lit}" in e
            exprs[f"hostile_{i}_{p['id']}_{ref}"] = e
    r = promtool_check(exprs, tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
