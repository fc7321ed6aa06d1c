"""Diagrams of the topology: Graphviz DOT → SVG / PNG (the ``dot`` binary), and a self-contained
interactive HTML page (the SVG inline, with a little inline JS/CSS: pan, zoom, click a site).

Layout: one box per site (Chinese name, pinyin id, level), its routers inside; ranked by level —
ministry on top, province and DR sites, cities, counties at the bottom. Single points of failure
(routers, links, shared-risk groups from ``analysis.spof``) are red; planned links dashed; dual-homed
counties green with a "双归属 dual-homed" tag; DR sites yellow with a dashed border. When the
inventory has more than one security zone, every device is shaded by its zone (业务专网 blue, 前置区
orange, 外网 purple) and boundary devices (firewalls, 网闸) get a double border and a "边界 boundary" tag.

``--scope SITE`` draws the site's subtree, its ancestors and the sites on its shortest paths up to
the ministry, plus the sites its subtree links to (a dual-homed county's second city).
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess

from jinbao_netops import escape
from jinbao_netops.inventory.model import BOUNDARY_ROLES, Level, LinkKind, LinkState, Zone, zone_label
from jinbao_netops.errors import ToolError, UsageError

from .analysis import analysis, site_ref
from .graph import LEVEL_RANK, LEVEL_ZH, Topology

FORMATS = ("svg", "png", "html", "dot")
FONT = "Noto Sans CJK SC,WenQuanYi Micro Hei,Microsoft YaHei,sans-serif"
RED, RED_FILL = "#d62728", "#fde2e2"
PLANNED = "#8c8c8c"
SITE_FILL = {"ministry": "#dde8f8", "province": "#eaf1fb", "dr": "#fff3cc", "city": "#f4f6f8", "county": "#ffffff"}
DUAL_FILL = "#e3f4e1"
ZONE_FILL = {Zone.business: ("#e6effa", "蓝 blue"), Zone.dmz: ("#fde9d4", "橙 orange"),
             Zone.internet: ("#eadcf5", "紫 purple"), Zone.management: ("#eeeeee", "灰 grey")}
DOT_TIMEOUT_S = 600
LEGEND = ("红色 red: 单点故障 single point of failure · 虚线 dashed: 规划链路 planned link · "
          "绿色 green: 双归属区县 dual-homed county · 黄色虚框 yellow dashed: 灾备中心 DR site")


class DrawError(ToolError):
    """Rendering failed (no ``dot``, or ``dot`` rejected the graph): one line, exit 4."""


def scope_sites(topo: Topology, scope: str | None) -> set[str]:
    """The sites a diagram shows (all of them without a scope)."""
    inv = topo.inv
    if scope is None:
        return set(inv.sites)
    topo.site(scope)  # unknown → UsageError
    sub = set(inv.descendants(scope))
    out = sub | {s.id for s in inv.ancestors(scope)}
    p = analysis(topo).paths(scope)
    for path in p["paths"]:
        out.update(path["sites"])
    for sid in sub:  # sites the subtree has links to (a dual-homed county's other city, …)
        for d in inv.devices_by_site.get(sid, []):
            for lid in inv.links_by_device.get(d, []):
                lk = inv.links[lid]
                out.update(inv.devices[e.device].site for e in lk.ends())
    return out


def _mbps(n: int) -> str:
    return f"{n // 1000}G" if n >= 1000 and n % 1000 == 0 else f"{n}M"


class _Html(str):
    """A DOT HTML-like label (written as <...>, not quoted)."""


def _attrs(**kw) -> str:
    return "[" + ", ".join(f"{k}={v if isinstance(v, _Html) else escape.dot(v)}" for k, v in kw.items() if v is not None) + "]"


def zone_layer(inv) -> tuple[dict[str, Zone], str]:
    """(device → the zone it is shaded by, the legend's zone part): empty when the inventory has one zone."""
    zones = {d: dev.zone for d, dev in inv.devices.items()}
    if len(set(zones.values())) < 2:
        return {}, ""
    legend = " · ".join(f"{ZONE_FILL[z][1]}: {zone_label(z)}" for z in Zone if z in set(zones.values()))
    return zones, f" · 安全区域 zones: {legend} · 双框 double border: 边界设备 boundary device"


def spof_marks(topo: Topology) -> tuple[set[str], set[str]]:
    """(devices, links) that are single points of failure; an SRLG marks all its active links."""
    devs, links = set(), set()
    for s in analysis(topo).spof_list:
        devs |= set(s.failure.devices)
        links |= set(s.failure.links)
    return devs, links


def to_dot(topo: Topology, scope: str | None = None, hosts: bool = False) -> str:
    inv = topo.inv
    sites = scope_sites(topo, scope)
    spof_devs, spof_links = spof_marks(topo)
    g = topo.graph
    shown: set[str] = set()
    zones, zone_legend = zone_layer(inv)
    title = inv.network.name if inv.network else "jinbao"
    if scope:
        title += f" — {inv.sites[scope].name} ({scope})"
    lines = [
        f"digraph {escape.dot(inv.network.id if inv.network else 'jinbao')} {{",
        f"  graph {_attrs(rankdir='TB', newrank='true', compound='true', nodesep='0.25', ranksep='0.8', fontname=FONT, fontsize='16', labelloc='t', label=title)};",
        f"  node {_attrs(shape='box', style='rounded,filled', fillcolor='white', fontname=FONT, fontsize='10', margin='0.08,0.04')};",
        f"  edge {_attrs(dir='none', fontname=FONT, fontsize='8', color='#4a4a4a')};",
    ]
    ranks: dict[int, list[str]] = {}
    for site in sorted((inv.sites[s] for s in sites), key=lambda s: (LEVEL_RANK[s.level.value], s.id)):
        sid, lv = site.id, site.level.value
        devs = sorted(inv.devices_by_site.get(sid, []))
        routers = [d for d in devs if g.nodes[d]["transit"] or d in topo.anchors[sid]]
        others = [d for d in devs if d not in routers]
        drawn = devs if hosts else routers
        dual = site.level == Level.county and site.homing == "dual"
        tags = ["灾备中心 DR site" if site.level == Level.dr else f"{LEVEL_ZH[lv]} {lv}"]
        if dual:
            tags.append("⇈ 双归属 dual-homed")
        elif site.level == Level.county:
            tags.append("单归属 single-homed")
        label = f"<<B>{escape.dot_html(site.name)}</B><BR/>{escape.dot_html(sid)} · {escape.dot_html(' · '.join(tags))}"
        if others and not hosts:
            label += f"<BR/><FONT POINT-SIZE=\"9\">+{len(others)} 主机 hosts</FONT>"
        label = _Html(label + ">")
        style = "filled,dashed" if site.level == Level.dr else ("filled,bold" if dual else "filled")
        cls = f"site level-{lv}" + (" dual" if dual else "") + (" dr" if site.level == Level.dr else "")
        lines.append(f"  subgraph {escape.dot('cluster_' + sid)} {{")
        border = "#2e7d32" if dual else ("#b8860b" if site.level == Level.dr else "#5b6b7b")
        lines.append("    graph " + _attrs(id="site-" + sid, **{"class": cls}, label=label, style=style,
                                          fillcolor=DUAL_FILL if dual else SITE_FILL[lv], color=border,
                                          fontsize="11") + ";")
        if not drawn:  # a site without devices still shows (an empty box needs one invisible node)
            lines.append(f"    {escape.dot('empty:' + sid)} {_attrs(label='(无设备 no devices)', shape='plaintext', style='', fontsize='9')};")
        for d in drawn:
            n = g.nodes[d]
            is_spof = d in spof_devs
            zone = zones.get(d)
            boundary = bool(zones) and inv.devices[d].role in BOUNDARY_ROLES
            cls = f"device role-{n['role']}" + (f" zone-{zone.value}" if zone else "") + (" boundary" if boundary else "")
            lines.append("    " + escape.dot(d) + " " + _attrs(
                id="dev-" + d, **{"class": cls + (" spof" if is_spof else "")},
                label=f"{n['name']}\n{d}" + ("\n边界 boundary" if boundary else ""),
                color=RED if is_spof else "#333333",
                fillcolor=RED_FILL if is_spof else (ZONE_FILL[zone][0] if zone else "white"),
                penwidth="2.5" if is_spof else "1", fontcolor=RED if is_spof else "black",
                peripheries="2" if boundary else None,
                shape="box" if n["transit"] else "note"))
            shown.add(d)
            if n["transit"] or d in topo.anchors[sid]:
                ranks.setdefault(LEVEL_RANK[lv], []).append(d)
        lines.append("  }")
    for rank in sorted(ranks):
        lines.append("  { rank=same; " + "; ".join(escape.dot(d) for d in ranks[rank]) + "; }")
    for lk in sorted(inv.links.values(), key=lambda x: x.id):
        a, b = lk.a.device, lk.b.device
        if a not in shown or b not in shown:
            continue
        ra, rb = LEVEL_RANK[g.nodes[a]["level"]], LEVEL_RANK[g.nodes[b]["level"]]
        if rb < ra:
            a, b = b, a
        planned = lk.state == LinkState.planned
        is_spof = lk.id in spof_links
        cls = f"link kind-{lk.kind.value}" + (" planned" if planned else "") + (" spof" if is_spof else "")
        label = None if lk.kind == LinkKind.lan else _mbps(lk.bandwidth_mbps) + (" 规划" if planned else "")
        lines.append(f"  {escape.dot(a)} -> {escape.dot(b)} " + _attrs(
            id="link-" + lk.id, **{"class": cls}, label=label,
            style="dashed" if planned else ("bold" if is_spof else None),
            color=RED if is_spof else (PLANNED if planned else None),
            fontcolor=RED if is_spof else (PLANNED if planned else None),
            penwidth="2.5" if is_spof else None,
            constraint="false" if ra == rb else None))
    lines.append(f"  \"@legend\" {_attrs(shape='plaintext', style='', label=LEGEND + zone_legend, fontsize='10', id='legend')};")
    lines.append('  { rank=sink; "@legend"; }')
    lines.append("}")
    return "\n".join(lines) + "\n"


def render(dot_text: str, fmt: str) -> bytes:
    """Run Graphviz ``dot`` to turn DOT text into SVG or PNG bytes."""
    exe = shutil.which("dot")
    if exe is None:
        raise DrawError("topology draw: Graphviz 'dot' is not installed or not on PATH "
                        "(未找到 dot; apt-get install graphviz, or use --format dot)")
    try:
        proc = subprocess.run([exe, f"-T{fmt}"], input=dot_text.encode("utf-8"), capture_output=True,
                              timeout=DOT_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise DrawError(f"topology draw: dot took more than {DOT_TIMEOUT_S} s; draw a part with --scope SITE") from None
    if proc.returncode != 0:
        err = " ".join(proc.stderr.decode("utf-8", "replace").split())[:300]
        raise DrawError(f"topology draw: dot failed (exit {proc.returncode}): {err}")
    return proc.stdout


_PROLOG = re.compile(r"\A.*?(?=<svg\b)", re.DOTALL)
_XMLNS = re.compile(r'\s+xmlns(?::xlink)?="[^"]*"')


def _inline_svg(svg: str) -> str:
    """The SVG as an element inside HTML: no XML prolog or DOCTYPE, no namespace URLs (the HTML parser
    puts <svg> in the SVG namespace itself), scaled by the page."""
    svg = _PROLOG.sub("", svg, count=1)
    svg = _XMLNS.sub("", svg)
    return re.sub(r'<svg width="[^"]*" height="[^"]*"', '<svg id="topo" width="100%" height="100%"', svg, count=1)


def page_data(topo: Topology, sites: set[str]) -> dict:
    """What the HTML page shows when a site is clicked: its devices, links, and failure exposure."""
    inv, a = topo.inv, analysis(topo)
    cuts_off: dict[str, list[dict]] = {}
    for s in a.spof_list:
        for d in s.failure.devices:
            cuts_off[d] = [site_ref(topo, x) for x in s.sites]
    out_sites = {}
    for sid in sorted(sites, key=lambda s: (LEVEL_RANK[inv.sites[s].level.value], s)):
        s = inv.sites[sid]
        devs = sorted(inv.devices_by_site.get(sid, []))
        link_ids = sorted({lk for d in devs for lk in inv.links_by_device.get(d, [])})
        out_sites[sid] = {
            "id": sid, "name": s.name, "level": s.level.value, "parent": s.parent,
            "homing": s.homing if s.level == Level.county else None,
            "uplinks": topo.uplinks(sid),
            "devices": [{"id": d, "name": inv.devices[d].name, "role": inv.devices[d].role.value,
                         "platform": inv.devices[d].platform, "management": str(inv.devices[d].management),
                         "zone": zone_label(inv.devices[d].zone),
                         "spof_cuts_off": cuts_off.get(d, [])} for d in devs],
            "links": [{"id": lid, "a": str(inv.links[lid].a), "b": str(inv.links[lid].b),
                       "kind": inv.links[lid].kind.value, "bandwidth_mbps": inv.links[lid].bandwidth_mbps,
                       "carrier": inv.links[lid].carrier, "srlg": inv.links[lid].srlg,
                       "state": inv.links[lid].state.value} for lid in link_ids],
            "cut_by": [f"{f.kind} {f.id}" for f in a.cut_by.get(sid, [])],
            "reachable": sid == topo.ministry or sid not in a.unreachable_sites,
        }
    return {"network": inv.network.name if inv.network else "", "sites": out_sites,
            "spof": [s.as_dict(topo) for s in a.spof_list if set(s.sites) & sites]}


_CSS = """
*{box-sizing:border-box}html,body{margin:0;height:100%;font-family:"Noto Sans CJK SC","Microsoft YaHei",sans-serif;font-size:14px;color:#222}
header{padding:6px 12px;background:#24466e;color:#fff;display:flex;gap:16px;align-items:center;flex-wrap:wrap}
header h1{font-size:16px;margin:0;font-weight:600}header input{padding:3px 6px;width:14em}
header button{padding:2px 8px}.legend{font-size:12px;opacity:.9}
main{display:flex;height:calc(100% - 42px)}#view{flex:1;overflow:hidden;background:#fafbfc;cursor:grab}
#view.drag{cursor:grabbing}#info{width:30em;max-width:45%;overflow:auto;border-left:1px solid #ccd;padding:10px 14px;background:#fff}
#info h2{font-size:15px;margin:4px 0}#info table{border-collapse:collapse;width:100%;font-size:12px;margin:6px 0 12px}
#info th,#info td{border-bottom:1px solid #e4e7eb;text-align:left;padding:2px 4px;vertical-align:top}
.bad{color:#d62728;font-weight:600}.ok{color:#2e7d32}.muted{color:#777}
g.cluster,g.node{cursor:pointer}g.selected>polygon,g.selected>path{stroke:#1f6fd1;stroke-width:4px}
"""

_JS = r"""
(function(){
const data = JSON.parse(document.getElementById('topo-data').textContent);
const svg = document.getElementById('topo'), view = document.getElementById('view'), info = document.getElementById('info');
let vb = svg.getAttribute('viewBox').split(/[\s,]+/).map(Number); const home = vb.slice();
function apply(){ svg.setAttribute('viewBox', vb.join(' ')); }
function pt(e){ const r = svg.getBoundingClientRect(); const s = Math.max(vb[2]/r.width, vb[3]/r.height);
  const ox = (r.width*s - vb[2])/2, oy = (r.height*s - vb[3])/2;
  return [vb[0] + (e.clientX - r.left)*s - ox, vb[1] + (e.clientY - r.top)*s - oy, s]; }
view.addEventListener('wheel', function(e){ e.preventDefault(); const p = pt(e), k = e.deltaY < 0 ? 0.8 : 1.25;
  vb = [p[0] - (p[0]-vb[0])*k, p[1] - (p[1]-vb[1])*k, vb[2]*k, vb[3]*k]; apply(); }, {passive:false});
let drag = null, moved = false;
view.addEventListener('mousedown', function(e){ drag = [e.clientX, e.clientY, vb[0], vb[1], pt(e)[2]]; moved = false; view.classList.add('drag'); });
window.addEventListener('mousemove', function(e){ if(!drag) return; const dx = e.clientX-drag[0], dy = e.clientY-drag[1];
  if (Math.abs(dx)+Math.abs(dy) > 3) moved = true; vb[0] = drag[2] - dx*drag[4]; vb[1] = drag[3] - dy*drag[4]; apply(); });
window.addEventListener('mouseup', function(){ drag = null; view.classList.remove('drag'); });
function esc(t){ return String(t == null ? '' : t).replace(/[&<>"]/g, c => ({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c])); }
function table(cols, rows){ return '<table><tr>' + cols.map(c => '<th>'+esc(c)+'</th>').join('') + '</tr>' +
  rows.map(r => '<tr>' + r.map(v => '<td>'+v+'</td>').join('') + '</tr>').join('') + '</table>'; }
function show(id){
  const s = data.sites[id]; if(!s) return;
  document.querySelectorAll('g.selected').forEach(g => g.classList.remove('selected'));
  const g = document.getElementById('site-' + id); if (g) g.classList.add('selected');
  let h = '<h2>' + esc(s.name) + '</h2><div class="muted">' + esc(s.id) + ' · ' + esc(s.level) +
    (s.parent ? ' · 上级 parent: ' + esc(s.parent) : '') + (s.homing ? ' · 归属 homing: ' + esc(s.homing) : '') + '</div>';
  h += s.reachable ? '' : '<p class="bad">无通往部中心的路径 no path to the ministry</p>';
  h += s.cut_by.length ? '<p class="bad">单点故障可切断 cut off by: ' + s.cut_by.map(esc).join(', ') + '</p>'
       : (s.level === 'ministry' ? '' : '<p class="ok">无单点故障 no single point of failure</p>');
  h += '<p>上联 uplinks: ' + (s.uplinks.length ? s.uplinks.map(esc).join(', ') : '—') + '</p>';
  h += '<h2>设备 Devices</h2>' + table(['id', '名称 name', 'role', 'platform', 'management', '区域 zone'], s.devices.map(d =>
    [esc(d.id) + (d.spof_cuts_off.length ? ' <span class="bad" title="' + esc(d.spof_cuts_off.map(x => x.id).join(', ')) + '">SPOF</span>' : ''),
     esc(d.name), esc(d.role), esc(d.platform), esc(d.management), esc(d.zone)]));
  h += '<h2>链路 Links</h2>' + table(['id', 'a', 'b', 'kind', 'Mbit/s', 'carrier', 'srlg', 'state'], s.links.map(l =>
    [esc(l.id), esc(l.a), esc(l.b), esc(l.kind), esc(l.bandwidth_mbps), esc(l.carrier), esc(l.srlg),
     l.state === 'planned' ? '<i>' + esc(l.state) + '</i>' : esc(l.state)]));
  info.innerHTML = h;
}
function zoomTo(id){ const g = document.getElementById('site-' + id); if (!g) return;
  const b = g.getBBox(), m = g.closest('g.graph').transform.baseVal.consolidate();
  const x = b.x + (m ? m.matrix.e : 0), y = b.y + (m ? m.matrix.f : 0);
  vb = [x - b.width*0.5, y - b.height*0.5, b.width*2, b.height*2]; apply(); show(id); }
svg.addEventListener('click', function(e){ if (moved) return; const g = e.target.closest('g.cluster, g.node'); if(!g) return;
  let id = g.id.replace(/^site-/, '');
  if (g.classList.contains('node')) { const dev = g.id.replace(/^dev-/, '');
    id = Object.keys(data.sites).find(k => data.sites[k].devices.some(d => d.id === dev)); }
  if (id) show(id); });
document.getElementById('find').addEventListener('keydown', function(e){ if (e.key !== 'Enter') return;
  const q = this.value.trim(); const id = data.sites[q] ? q : Object.keys(data.sites).find(k => data.sites[k].name.includes(q) || k.includes(q));
  if (id) zoomTo(id); });
document.getElementById('reset').addEventListener('click', function(){ vb = home.slice(); apply(); });
})();
"""


def to_html(topo: Topology, scope: str | None = None, hosts: bool = False, svg: str | None = None) -> str:
    """A self-contained page: the diagram inline, pan (drag) and zoom (wheel), click a site for its devices
    and links, find a site by id or name. Nothing is fetched from anywhere."""
    sites = scope_sites(topo, scope)
    if svg is None:
        svg = render(to_dot(topo, scope, hosts), "svg").decode("utf-8")
    data = json.dumps(page_data(topo, sites), ensure_ascii=False, separators=(",", ":"))
    data = data.replace("</", "<\\/")  # never close the <script> element early
    inv = topo.inv
    title = (inv.network.name if inv.network else "jinbao") + (f" — {inv.sites[scope].name}" if scope else "")
    n_spof = len(analysis(topo).spof_list)
    legend = LEGEND + zone_layer(inv)[1]
    return (
        "<!DOCTYPE html>\n<html lang=\"zh-CN\"><head><meta charset=\"utf-8\">"
        f"<title>{escape.html(title)} · 拓扑 topology</title><style>{_CSS}</style></head><body>\n"
        f"<header><h1>{escape.html(title)} · 拓扑 topology</h1>"
        f"<span>{len(sites)} 站点 sites · {n_spof} 单点故障 single points of failure</span>"
        "<input id=\"find\" placeholder=\"查找站点 find site (id / 名称)\"><button id=\"reset\">复位 reset</button>"
        f"<span class=\"legend\">{escape.html(legend)} · 拖动平移 drag to pan · 滚轮缩放 wheel to zoom · 点击站点 click a site</span>"
        "</header>\n<main><div id=\"view\">" + _inline_svg(svg) + "</div>"
        "<aside id=\"info\"><p class=\"muted\">点击站点查看设备与链路 click a site to see its devices and links</p></aside></main>\n"
        f"<script id=\"topo-data\" type=\"application/json\">{data}</script>\n<script>{_JS}</script>\n</body></html>\n")


def draw(topo: Topology, fmt: str, scope: str | None = None, hosts: bool = False) -> bytes:
    """The diagram as bytes in ``fmt`` (svg, png, html, dot)."""
    if fmt not in FORMATS:
        raise UsageError(f"topology draw: unknown format {fmt!r}; one of {', '.join(FORMATS)}")
    dot_text = to_dot(topo, scope, hosts)
    if fmt == "dot":
        return dot_text.encode("utf-8")
    if fmt == "html":
        return to_html(topo, scope, hosts, svg=render(dot_text, "svg").decode("utf-8")).encode("utf-8")
    return render(dot_text, fmt)
