"""Topology diagrams (issue 3): DOT → SVG/PNG via Graphviz, self-contained HTML, --scope."""
from __future__ import annotations

import copy
import json
import re
import subprocess
import xml.etree.ElementTree as ET
from itertools import pairwise
from pathlib import Path

import pytest
from cdp import Chromium

from jinbao_netops.inventory import DEFAULT_INVENTORY, load
from jinbao_netops.topology import analysis as an
from jinbao_netops.topology import draw as dr
from jinbao_netops.topology.graph import build

SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def topo():
    return build(load(DEFAULT_INVENTORY))


@pytest.fixture(scope="module")
def svg_root(topo):
    return ET.fromstring(dr.draw(topo, "svg"))


def groups(root, cls: str) -> dict[str, ET.Element]:
    """SVG <g> elements whose class list contains ``cls``, by id."""
    return {g.get("id"): g for g in root.iter(f"{SVG}g") if cls in (g.get("class") or "").split()}


def strokes(g: ET.Element) -> set[str]:
    return {e.get("stroke") for e in g if e.tag in (f"{SVG}path", f"{SVG}polygon", f"{SVG}ellipse") and e.get("stroke")}


def test_svg_has_every_site_ranked_by_level(topo, svg_root):
    clusters = groups(svg_root, "cluster")
    assert {c.removeprefix("site-") for c in clusters} == set(topo.inv.sites)
    # ranked: every ministry router above every province router above every city router above every county
    # router (SVG y grows downwards; dot puts the graph at negative y)
    ys = {}
    for gid, g in groups(svg_root, "node").items():
        if gid.startswith("dev-"):
            dev = gid.removeprefix("dev-")
            shape = next(e for e in g if e.tag in (f"{SVG}path", f"{SVG}polygon"))
            nums = [float(x) for x in re.findall(r"-?\d+(?:\.\d+)?", shape.get("d") or shape.get("points"))]
            ys[dev] = sum(nums[1::2]) / len(nums[1::2])
    level_y = {}
    for dev, y in ys.items():
        level_y.setdefault(topo.graph.nodes[dev]["level"], []).append(y)
    order = ["ministry", "province", "city", "county"]
    for upper, lower in pairwise(order):
        assert max(level_y[upper]) < min(level_y[lower]), (upper, lower)
    # DR sites sit on the provinces' rank
    assert min(level_y["province"]) - 1 <= min(level_y["dr"]) <= max(level_y["dr"]) <= max(level_y["province"]) + 1


def test_hosts_are_counted_unless_asked_for(topo):
    plain, full = dr.to_dot(topo), dr.to_dot(topo, hosts=True)
    assert '"huadu-srv1" [' not in plain and "+1 主机 hosts" in plain
    assert '"huadu-srv1" [' in full and '"huadu-srv1" -> "huadu-r1"' in full


def test_svg_marks_spof_red_planned_dashed_dual_and_dr(topo, svg_root):
    spof_devs = {d for s in an.spof(topo) for d in s.failure.devices}
    spof_links = {k for s in an.spof(topo) for k in s.failure.links}
    nodes = groups(svg_root, "node")
    marked = {gid.removeprefix("dev-") for gid in groups(svg_root, "spof") if gid.startswith("dev-")}
    assert marked == spof_devs == {"guangzhou-r1", "shenzhen-r1", "chengdu-r1", "mianyang-r1"}
    for d in spof_devs:
        assert dr.RED in strokes(nodes["dev-" + d])
    assert dr.RED not in strokes(nodes["dev-gd-r1"]) and dr.RED not in strokes(nodes["dev-panyu-r1"])
    edges = groups(svg_root, "edge")
    for k in spof_links:
        assert dr.RED in strokes(edges["link-" + k])
    assert dr.RED not in strokes(edges["link-panyu-up1"])
    planned = edges["link-longgang-up2"]
    assert "planned" in planned.get("class") and any(e.get("stroke-dasharray") for e in planned)
    assert not any(e.get("stroke-dasharray") for e in edges["link-longgang-up1"])
    clusters = groups(svg_root, "cluster")
    dual = {c.removeprefix("site-") for c, g in clusters.items() if "dual" in g.get("class").split()}
    assert dual == {"panyu", "baoan", "shuangliu", "santai"}
    drs = {c.removeprefix("site-") for c, g in clusters.items() if "dr" in g.get("class").split()}
    assert drs == {"guangdong_zaibei", "sichuan_zaibei"}
    text = "".join(svg_root.itertext())
    assert "番禺区社会保险经办中心" in text and "双归属 dual-homed" in text and "灾备中心 DR site" in text


def test_scope_draws_the_subtree_and_the_way_up(topo):
    root = ET.fromstring(dr.draw(topo, "svg", scope="guangzhou"))
    sites = {c.removeprefix("site-") for c in groups(root, "cluster")}
    # subtree + ancestors + the sites its counties also link to (panyu's and longgang's other city)
    assert sites == {"guangzhou", "panyu", "huadu", "guangdong", "bu", "shenzhen", "baoan", "longgang",
                     "guangdong_zaibei"}
    assert dr.scope_sites(topo, "huadu") == {"huadu", "guangzhou", "guangdong", "bu"}


def test_html_is_self_contained_and_has_every_site(topo):
    page = dr.draw(topo, "html").decode("utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(r"https?://", page)
    assert not re.search(r"\b(src|href)\s*=", page, re.IGNORECASE)
    assert "<link" not in page and "@import" not in page
    data = json.loads(re.search(r'<script id="topo-data" type="application/json">(.*?)</script>', page, re.DOTALL)
                      .group(1).replace("<\\/", "</"))
    assert set(data["sites"]) == set(topo.inv.sites)
    assert data["sites"]["huadu"]["cut_by"] == ["device guangzhou-r1", "link huadu-up1"]
    assert {d["id"] for d in data["sites"]["panyu"]["devices"]} == {"panyu-r1", "panyu-db1"}
    for sid in topo.inv.sites:
        assert f'id="site&#45;{sid}"' in page or f'id="site-{sid}"' in page
    svg = page[page.index("<svg"):page.index("</svg>") + 6]
    ET.fromstring(svg.replace("&nbsp;", "&#160;"))  # the inline SVG is well-formed


# --- the HTML page's script, in real headless Chromium (tests/cdp.py) ------------------------------

@pytest.fixture(scope="module")
def chromium():
    with Chromium() as page:
        yield page


def open_page(page, topo, path):
    path.write_bytes(dr.draw(topo, "html"))
    page.goto(path.as_uri())
    page.wait_for("document.readyState === 'complete'", 60)


def info(page) -> str:
    return page.eval("document.getElementById('info').innerText")


def selected(page) -> list[str]:
    return page.eval("[...document.querySelectorAll('g.selected')].map(g => g.id)")


def viewbox(page) -> list[float]:
    return page.eval("document.getElementById('topo').getAttribute('viewBox').split(/[\\s,]+/).map(Number)")


def diagram_point(page, x: float, y: float) -> list[float]:
    """The diagram's own coordinates of the viewport point (x, y)."""
    return page.eval(f"(() => {{ const p = new DOMPoint({x}, {y}).matrixTransform("
                     "document.getElementById('topo').getScreenCTM().inverse()); return [p.x, p.y]; })()")


def test_html_page_in_headless_chromium(topo, svg_root, chromium, tmp_path):
    """The page's own script driven by real mouse and keyboard input: the diagram laid out, a click on a
    router or on a site's name shows that site, the wheel zooms about the pointer, a drag pans, reset, find."""
    page = chromium
    open_page(page, topo, tmp_path / "topology.html")
    drawn = page.eval("Object.fromEntries([...document.querySelectorAll('#topo g.cluster, #topo g.node')]"
                      ".map(g => [g.id, g.getBBox().width > 0 && g.getBBox().height > 0]))")
    assert drawn == dict.fromkeys([*groups(svg_root, "cluster"), *groups(svg_root, "node")], True)
    assert len(drawn) > len(topo.inv.sites)
    assert "click a site" in info(page) and selected(page) == []

    page.click(*page.center("#dev-huadu-r1"))  # a router: its site
    assert selected(page) == ["site-huadu"]
    text = info(page)
    assert text.startswith("花都区社会保险经办中心\nhuadu · county · 上级 parent: guangzhou · 归属 homing: single\n")
    assert "单点故障可切断 cut off by: device guangzhou-r1, link huadu-up1" in text
    page.click(*page.center("#site-guangzhou > text"))  # a site's name
    assert selected(page) == ["site-guangzhou"] and "无单点故障 no single point of failure" in info(page)
    tables = page.eval("[...document.querySelectorAll('#info table')].map(t => [...t.rows].slice(1).map(r => r.cells[0].innerText))")
    gz = dr.page_data(topo, {"guangzhou"})["sites"]["guangzhou"]
    assert tables == [[d["id"] + (" SPOF" if d["spof_cuts_off"] else "") for d in gz["devices"]], [lk["id"] for lk in gz["links"]]]
    assert "guangzhou-r1 SPOF" in tables[0]

    home = viewbox(page)
    x, y = page.center("#dev-huadu-r1")  # drag a router: the press and the release land on it
    grabbed = diagram_point(page, x, y)
    page.mouse("mousePressed", x, y, button="left", clickCount=1)
    page.mouse("mouseMoved", x + 150, y + 60, button="left", buttons=1)
    page.mouse("mouseReleased", x + 150, y + 60, button="left", clickCount=1)
    assert diagram_point(page, x + 150, y + 60) == pytest.approx(grabbed, abs=0.5)  # the diagram follows the pointer
    assert selected(page) == ["site-guangzhou"]  # a drag is not a click on what it grabbed
    page.click(*page.center("#reset"))
    assert viewbox(page) == home
    x, y = page.center("#view")
    x, y = x + 300, y + 100  # off the middle: the diagram point under the pointer stays under it
    under = diagram_point(page, x, y)
    page.mouse("mouseWheel", x, y, deltaX=0, deltaY=-120)  # zoom in
    assert viewbox(page)[2:] == pytest.approx([home[2] * 0.8, home[3] * 0.8])
    assert diagram_point(page, x, y) == pytest.approx(under, abs=0.5)
    page.click(*page.center("#reset"))
    assert viewbox(page) == home

    page.click(*page.center("#find"))
    page.enter("番禺")  # by Chinese name
    assert selected(page) == ["site-panyu"] and info(page).startswith("番禺区社会保险经办中心\npanyu · county")
    box = page.eval("(() => { const r = document.getElementById('site-panyu').getBoundingClientRect(),"
                    " v = document.getElementById('view').getBoundingClientRect(); return [r.width, v.left <= r.left"
                    " && r.right <= v.right && v.top <= r.top && r.bottom <= v.bottom]; })()")
    assert viewbox(page)[2] < home[2] / 4 and box[1], box  # zoomed to the site, all of it in view
    assert page.errors() == []


def test_html_page_shows_hostile_names_as_text(topo, chromium, tmp_path):
    """A site name that is markup and script stays text: in the diagram, in the data, in the detail."""
    inv = copy.deepcopy(topo.inv)
    hostile = '</script><script>window.pwned = 1</script><img src=x onerror="window.pwned = 2"> & "花都"'
    inv.sites["huadu"].name = hostile
    page = chromium
    open_page(page, build(inv), tmp_path / "hostile.html")
    assert page.eval("document.querySelector('#site-huadu > text').textContent") == hostile
    page.click(*page.center("#dev-huadu-r1"))
    assert page.eval("document.querySelector('#info h2').textContent") == hostile
    assert page.eval("typeof window.pwned") == "undefined" and page.eval("document.querySelectorAll('img').length") == 0
    assert page.errors() == []


def test_png(topo):
    png = dr.draw(topo, "png", scope="sichuan")
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def test_png_of_the_default_has_a_cjk_font_for_its_chinese_names(topo):
    """The Chinese site names need a CJK font (install.sh: fonts-wqy-microhei): the font fontconfig
    picks for the diagram's font list covers every Chinese character the default's names use."""
    png = dr.draw(topo, "png")
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    chars = sorted({c for s in topo.inv.sites.values() for c in s.name if ord(c) >= 0x2E80})
    assert len(chars) > 20
    charset = " ".join(f"{ord(c):x}" for c in chars)
    fc = lambda *a: subprocess.run(list(a), capture_output=True, text=True, check=True).stdout
    picked = fc("fc-match", "-f", "%{family[0]}", f"{dr.FONT}:charset={charset}")
    covering = {ln.split(",")[0] for ln in fc("fc-list", f":charset={charset}", "family").splitlines()}
    assert picked in covering, (picked, sorted(covering))


def test_dot_text_without_graphviz(topo, monkeypatch):
    monkeypatch.setattr(dr.shutil, "which", lambda name: None)
    text = dr.draw(topo, "dot").decode("utf-8")
    assert text.startswith('digraph "jinbao"') and '"cluster_jiangyou"' in text
    for fmt in ("svg", "png", "html"):
        with pytest.raises(dr.DrawError, match="Graphviz 'dot' is not installed") as e:
            dr.draw(topo, fmt)
        assert "\n" not in str(e.value)


def test_dot_quotes_hostile_names(topo):
    inv = copy.deepcopy(topo.inv)
    inv.sites["huadu"].name = 'A "quoted" <b>name</b> \\ & more'
    inv.devices["huadu-r1"].name = 'r"1\\'
    text = dr.to_dot(build(inv))
    assert "&lt;b&gt;name&lt;/b&gt;" in text and '"r\\"1\\\\\\nhuadu-r1"' in text
    svg = ET.fromstring(dr.render(text, "svg"))  # dot accepts it and the SVG is well-formed
    assert 'A "quoted" <b>name</b> \\ & more' in "".join(groups(svg, "cluster")["site-huadu"].itertext())


def test_zones_shade_devices_and_boundaries_get_a_double_border():
    zoned = build(load(Path(__file__).parent / "fixtures/zones/inventory.yml"))
    root = ET.fromstring(dr.draw(zoned, "svg", hosts=True))
    devs = {gid.removeprefix("dev-"): g for gid, g in groups(root, "device").items()}
    fills = {d: {e.get("fill") for e in g if e.tag in (f"{SVG}path", f"{SVG}polygon")} - {"none", None}
             for d, g in devs.items()}
    for d, zone in (("gd-web1", "internet"), ("gd-qz1", "dmz"), ("gd-fw1", "dmz"), ("bu-r1", "business")):
        assert f"zone-{zone}" in devs[d].get("class").split(), d
        if "spof" not in devs[d].get("class"):
            assert fills[d] == {dr.ZONE_FILL[dr.Zone(zone)][0]}, (d, fills[d])
    outlines = {d: sum(e.tag in (f"{SVG}path", f"{SVG}polygon") for e in g) for d, g in devs.items()}
    for d in ("gd-fw1", "gd-gap1"):
        assert "boundary" in devs[d].get("class").split() and outlines[d] == 2, d
    assert outlines["gd-web1"] == 1 and "boundary" not in devs["gd-web1"].get("class").split()
    legend = "".join(root.find(f".//{SVG}g[@id='legend']").itertext())
    assert "外网 internet" in legend and "前置区 DMZ" in legend


def test_one_zone_draws_no_zone_layer():
    svg_root = ET.fromstring(dr.draw(build(load(Path(__file__).parent / "fixtures" / "broken" / "base.yml")), "svg"))
    assert not [g for g in groups(svg_root, "device").values() if "zone-business" in g.get("class").split()]
    assert "安全区域" not in "".join(svg_root.find(f".//{SVG}g[@id='legend']").itertext())
