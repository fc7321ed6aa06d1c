// 金保工程 健康地图 — reads /api/topology once and /api/health every few seconds, and draws one place at a time:
// the country (the ministry and its provinces), a province (its data centre, DR site and cities), a city (its
// counties); a county is shown among its city's. A site with sites under it is a tile with their counts
// (ok / warn / down / unknown, rolled up in the page); clicking it goes down a level. The place is the URL hash
// (#/guangdong/guangzhou/panyu): shareable, back and forward work. Only the sites of one place are ever in the DOM,
// laid out in rows as wide as the window (nothing off-screen sideways, whatever the inventory's size).
// No libraries, nothing from the internet. Test hooks: body[data-ready], body[data-refreshes], body[data-place],
// body[data-view] (the place whose sites are drawn), body[data-drawn-ms] / body[data-render-ms] (navigation start
// to the map first drawn / first coloured),
// g.site[data-site][data-health][data-db-role] ("SERVICE:ROLE ...": the roles its pair members have now; a tile also
// [data-ok][data-warn][data-down][data-unknown]),
// path.link[data-link][data-health], path.replica[data-pair][data-state], g.replica-badge[data-pair].
// Every text from the inventory or Prometheus goes in as textContent (el's "text"), never as markup.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const BOX_W = 128, BOX_H = 40, TILE_H = 60, SLOT = 142, ROW = 112, STUB = 18, PAD = 16, TOP = 24;
const ALERTS_LISTED = 100;  // the alert panel lists this many (a national outage must not build thousands)
const HEALTH_ZH = { ok: "正常 OK", warn: "告警 Warning", down: "故障 Down", unknown: "未知 Unknown",
                    saturated: "拥塞 Saturated", planned: "规划中 Planned" };
const COUNTS = [["ok", "✓"], ["warn", "⚠"], ["down", "✗"], ["unknown", "?"]];
const ROLE_ZH = { router: "路由器", firewall: "防火墙", switch: "交换机", server: "服务器", database: "数据库",
                  backup_store: "备份存储", monitor: "监控" };
const REPL_ZH = { ok: "正常 OK", lagging: "延迟 Lagging", broken: "中断 Broken", unknown: "未知 Unknown" };
const MODE_ZH = { sync: "同步 sync", async: "异步 async" };
const DB_ROLE_ZH = { primary: "主库 primary", standby: "备库 standby", down: "停止 down", unknown: "未知 unknown" };
const ENGINE = { postgresql: "PG", mariadb: "MariaDB" };  // a pair's engine (its service) as badges and tags name it

let topo = null, health = null, refreshes = 0;
let byId = {}, kids = {}, keys = {}, rootId = null, rollup = {};
let view = null, place = null;  // the place whose sites are drawn, and the place the URL names (its detail)
let siteEls = {}, linkEls = {}, pairEls = {};

function el(tag, attrs, ...kids) {
  const e = tag.startsWith("svg:") ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "text") e.textContent = v; else if (k === "onclick") e.addEventListener("click", v); else e.setAttribute(k, v);
  }
  for (const k of kids) if (k != null) e.append(k);
  return e;
}

function index() {
  byId = {}; kids = {}; keys = {};
  for (const s of topo.sites) {
    byId[s.id] = s;
    if (s.parent) (kids[s.parent] = kids[s.parent] || []).push(s);
    else rootId = rootId || s.id;
    keys[s.id] = [norm(s.id), norm(s.name)];
  }
}

function norm(t) { return t.toLowerCase().replace(/[\s_\-·]/g, ""); }

// --- places and the URL ----------------------------------------------------------------------------------

function lineage(id) {  // the root first
  const chain = [];
  for (let s = byId[id]; s; s = byId[s.parent]) chain.unshift(s);
  return chain;
}

function pathOf(id) { return "#/" + lineage(id).slice(1).map(s => encodeURIComponent(s.id)).join("/"); }

function placeOf(hash) {
  // the site a location names: the last part of "#/guangdong/guangzhou/panyu", an old "#site=panyu", else the root
  const old = hash.match(/^#site=([^&]*)/);
  const parts = old ? [old[1]] : hash.replace(/^#\/?/, "").split("/").filter(Boolean);
  let id = "";
  try { id = decodeURIComponent(parts[parts.length - 1] || ""); } catch (e) { /* a mangled link: the root */ }
  return byId[id] ? id : rootId;
}

function scopeOf(id) { return (kids[id] || []).length ? id : byId[id].parent || id; }

function within(id, anc) {
  for (let s = byId[id]; s; s = byId[s.parent]) if (s.id === anc) return true;
  return false;
}

function route() {
  const id = placeOf(location.hash);
  if (location.hash && location.hash !== pathOf(id)) history.replaceState(null, "", pathOf(id));  // no hash: the country
  show(id);
}

function go(id) {
  // a click on a site, a search result, an alert, a badge: a new history entry (back returns here)
  if (location.hash !== pathOf(id)) history.pushState(null, "", pathOf(id));
  show(id);
}

function show(id) {
  place = id;
  const scope = scopeOf(id);
  if (view !== scope) {
    view = scope;
    draw();
    if (health) paint(); else paintPanels();
  }
  for (const [sid, e] of Object.entries(siteEls)) e.classList.toggle("selected", sid === id);
  document.body.dataset.place = id;
  crumbs(id);
  detail(id);
}

function crumbs(id) {
  const chain = lineage(id);
  document.getElementById("crumbs").replaceChildren(...chain.map((s, i) => {
    const label = i === 0 ? "全国 National" : shorten(s.name);
    return el("li", {}, i === chain.length - 1 ? el("span", { "aria-current": "page", title: s.name, text: label })
                                               : el("a", { href: pathOf(s.id), title: s.name, text: label }));
  }));
}

// --- drawing one place -----------------------------------------------------------------------------------

function layout(top, items, width) {
  // the place (and its DR sites) on top, its sites below in rows as wide as the window allows; rows closer
  // together when there is more than one (the links to the top are then stubs, see draw())
  const cols = Math.max(1, Math.floor((width - 2 * PAD) / SLOT));
  const wrapped = items.length > cols, step = wrapped ? TILE_H + 2 * STUB : ROW;
  const pos = {};
  const row = (list, r) => list.forEach((s, i) => {
    const h = (kids[s.id] || []).length ? TILE_H : BOX_H;
    pos[s.id] = { x: width / 2 + (i - (list.length - 1) / 2) * SLOT, y: TOP + r * step + TILE_H / 2, h, row: r };
  });
  row(top, 0);
  for (let r = 0; r * cols < items.length; r++) row(items.slice(r * cols, (r + 1) * cols), r + 1);
  return { pos, wrapped, height: TOP + (1 + Math.ceil(items.length / cols)) * step };
}

function draw() {
  const svg = document.getElementById("map");
  svg.replaceChildren();
  siteEls = {}; linkEls = {}; pairEls = {};
  document.body.dataset.view = view;
  const under = kids[view] || [];
  const top = [byId[view], ...under.filter(s => s.level === "dr")];
  const items = under.filter(s => s.level !== "dr");
  const width = Math.max(document.getElementById("mapbox").clientWidth, SLOT + 2 * PAD);
  const { pos, wrapped, height } = layout(top, items, width);
  svg.setAttribute("width", width); svg.setAttribute("height", height);
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  // the links of the sites drawn. A site under a tile shows as the tile: a link inside a tile, or between two
  // tiles' sites (a county's second uplink to another city), is the tiles' own business; one from the top row
  // into a tile ends at the tile (a DR site's uplink to the ministry). Between two drawn sites a line (an arc
  // within a row, parallel ones side by side); a link leaving the place, or from the top row to a grid of
  // several rows (a line would cross the rows between), is a stub on the site's top edge.
  const shownAs = id => { for (let s = byId[id]; s; s = byId[s.parent]) if (pos[s.id]) return s.id; return null; };
  const lines = [], stubs = {};
  const addStub = (id, l) => (stubs[id] = stubs[id] || []).push(l);
  for (const l of topo.links) {
    const [x, y] = l.ends.map(e => ({ id: shownAs(e.site), direct: !!pos[e.site] }));
    if (!x.direct && !y.direct || x.id === y.id) continue;
    if (!x.id || !y.id) {
      const e = x.id ? x : y;
      if (e.direct) addStub(e.id, l);
      continue;
    }
    const [p, q] = pos[x.id].row <= pos[y.id].row ? [x.id, y.id] : [y.id, x.id];
    if (pos[p].row > 0 && !(x.direct && y.direct)) continue;
    if (wrapped && pos[p].row === 0 && pos[q].row > 0) addStub(q, l); else lines.push([l, pos[p], pos[q], `${p}|${q}`]);
  }
  const g = el("svg:g", { class: "links" });
  const link = (l, d) => {
    const path = el("svg:path", { class: "link", "data-link": l.id, "data-health": l.state === "planned" ? "planned" : "unknown", d },
      el("svg:title", { text: `${l.id} (${l.ends.map(e => e.device + ":" + e.interface).join(" — ")}) ${l.bandwidth_mbps} Mbps` }));
    g.append(linkEls[l.id] = path);
  };
  const parallel = {};
  for (const [l, p, q, key] of lines) {
    const n = parallel[key] = (parallel[key] || 0) + 1;
    const off = (n % 2 ? 1 : -1) * Math.floor(n / 2) * 8;
    link(l, p.row === q.row
      ? `M ${p.x + off} ${p.y - p.h / 2} Q ${(p.x + q.x) / 2 + off} ${p.y - p.h / 2 - 24 - Math.abs(q.x - p.x) / 8} ${q.x + off} ${q.y - q.h / 2}`
      : `M ${p.x + off} ${p.y + p.h / 2} L ${q.x + off} ${q.y - q.h / 2}`);
  }
  for (const [id, ls] of Object.entries(stubs)) {
    const q = pos[id];
    ls.forEach((l, k) => {
      const x = q.x + (k - (ls.length - 1) / 2) * 10;
      link(l, `M ${x} ${q.y - q.h / 2 - STUB} L ${x} ${q.y - q.h / 2}`);
    });
  }
  svg.append(g);
  svg.append(drawReplication(pos));
  const members = new Set(topo.replication.flatMap(r => [r.primary_site, r.standby_site]));
  for (const s of [...top, ...items]) svg.append(siteEls[s.id] = node(s, pos[s.id], members.has(s.id)));
}

function node(s, p, member) {
  // a site's box: its own health; a tile (a site with sites under it) adds the counts of its whole place
  const tile = p.h === TILE_H, y0 = p.y - p.h / 2, x0 = p.x - BOX_W / 2;
  const outside = s.zones.filter(z => z !== "business");  // a ring shaded by each zone outside the 业务专网
  const g = el("svg:g", { class: tile ? "site tile" : "site", "data-site": s.id, "data-health": "unknown", "data-level": s.level,
                          "data-zones": s.zones.join(" "), tabindex: 0, role: "button", "aria-label": s.name, onclick: () => go(s.id) },
    ...outside.map((z, i) => el("svg:rect", { class: `zone zone-${z}`, x: x0 - 3 - 3 * i, y: y0 - 3 - 3 * i,
                                              width: BOX_W + 6 + 6 * i, height: p.h + 6 + 6 * i, rx: 8 })),
    el("svg:rect", { class: "box", x: x0, y: y0, width: BOX_W, height: p.h, rx: 6 }),
    el("svg:text", { x: p.x, y: y0 + 17, text: shorten(s.name) }),
    el("svg:text", { class: "sub", x: p.x, y: y0 + 32, text: `${s.id} · ${(topo.levels[s.level] || s.level).split(" ")[0]}` }),
    tile ? el("svg:rect", { class: "strip", x: x0 + 3, y: y0 + 39, width: BOX_W - 6, height: 17, rx: 4 }) : null,
    tile ? el("svg:text", { class: "counts", x: p.x, y: y0 + 52 }) : null,
    el("svg:title", { text: s.name }),
    // a replication member: which databases here serve as primary (主) or stand by (备) now, set by paint()
    member ? el("svg:text", { class: "db-role", x: p.x + BOX_W / 2, y: y0 - 4 }) : null);
  g.addEventListener("keydown", e => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); go(s.id); } });
  return g;
}

function drawReplication(pos) {
  // each pair a dotted curve from the primary's site to the standby's DR site (both drawn: a province's DC and
  // DR site side by side on top of the province), bowed aside from the links between them, with a badge at its
  // middle (mode, state, lag) that opens the serving member's site
  const g = el("svg:g", { class: "replication" });
  for (const r of topo.replication) {
    const [a, b] = [pos[r.primary_site], pos[r.standby_site]];
    if (!a || !b || a === b) continue;
    const [p, q] = a.y <= b.y ? [a, b] : [b, a];
    const [y1, y2] = p.row === q.row ? [p.y + p.h / 2, q.y + q.h / 2] : [p.y + p.h / 2, q.y - q.h / 2];
    const c = { x: (p.x + q.x) / 2 + 70, y: p.row === q.row ? Math.max(y1, y2) + 44 : (y1 + y2) / 2 };
    const mid = { x: (p.x + 2 * c.x + q.x) / 4, y: (y1 + 2 * c.y + y2) / 4 };
    const path = el("svg:path", { class: "replica", "data-pair": r.id, "data-state": "unknown",
                                  d: `M ${p.x + BOX_W / 4} ${y1} Q ${c.x} ${c.y} ${q.x + BOX_W / 4} ${y2}` }, el("svg:title"));
    const badge = el("svg:g", { class: "replica-badge", "data-pair": r.id, "data-state": "unknown", tabindex: 0, role: "button",
                                onclick: () => go(pairSite(r)) },
      el("svg:rect", { x: mid.x, y: mid.y - 9, width: 0, height: 18, rx: 9 }),
      el("svg:text", { x: mid.x, y: mid.y + 4 }), el("svg:title"));
    badge.addEventListener("keydown", e => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); go(pairSite(r)); } });
    pairEls[r.id] = { path, badge };
    g.append(path, badge);
  }
  return g;
}

function pairSite(r) {
  // the site of the member that serves now (the standby's after a failover)
  const h = health && health.replication[r.id];
  return h && h.serving ? topo.devices[h.serving].site : r.primary_site;
}

function modeText(r, h) {
  // the mode the pair replicates in now, where its primary's readings tell, else the inventory's; and the
  // inventory's when the two differ (a synchronous pair fallen back to async)
  const want = r.sync ? "sync" : "async";
  return MODE_ZH[h.mode || want] + (h.mode && h.mode !== want ? `（清单 inventory: ${MODE_ZH[want]}）` : "");
}

function pairText(r, h) {
  // one line for the badge, the full story for tooltips and the detail
  const mode = modeText(r, h);
  const lag = h.lag_seconds == null ? "" : ` ${h.lag_seconds.toFixed(h.lag_seconds < 10 ? 1 : 0)}s`;
  const short = `${ENGINE[r.service] || r.service} ${mode} · ${REPL_ZH[h.state]}${lag}${h.swapped ? " ⇄" : ""}`;
  const roles = Object.entries(h.roles || {}).map(([d, role]) => `${d}: ${DB_ROLE_ZH[role]}`).join(", ");
  const long = `${r.primary} → ${r.standby} (${r.service}, ${mode}) — ${REPL_ZH[h.state]}${lag}` +
    (h.serving ? `\n当前主库 serving: ${h.serving}${h.swapped ? " (已切换 failed over)" : ""}` : "") +
    (roles ? `\n${roles}` : "") + (h.reason ? `\n${h.reason}` : "") +
    (r.service_address ? `\n服务地址 service address: ${r.service_address}` : "");
  return { short, long };
}

function shorten(name) {
  // the map shows the short form; the full name is the tooltip and the detail title
  const short = name.replace(/社会保险|信息中心|数据中心|经办中心|（.*?）/g, "");
  return short.length > 10 ? short.slice(0, 10) + "…" : short;
}

// --- colouring from /api/health ---------------------------------------------------------------------------

function rollUp() {
  // every site's health counted at itself and at each site above it
  rollup = {};
  for (const s of topo.sites) {
    const h = (health.sites[s.id] || {}).health || "unknown";
    for (let a = s; a; a = byId[a.parent]) (rollup[a.id] = rollup[a.id] || { ok: 0, warn: 0, down: 0, unknown: 0 })[h] += 1;
  }
}

function paint() {
  for (const [id, e] of Object.entries(siteEls)) {
    const h = health.sites[id] || { health: "unknown", reasons: [] };
    e.setAttribute("data-health", h.health);
    let tip = `${byId[id].name} — ${HEALTH_ZH[h.health]}` + (h.reasons.length ? "\n" + h.reasons.join("\n") : "");
    const counts = e.querySelector("text.counts");
    if (counts) {
      const c = rollup[id];
      for (const [k] of COUNTS) e.dataset[k] = c[k];
      counts.replaceChildren(...COUNTS.filter(([k]) => k !== "unknown" || c[k])
        .map(([k, sym]) => el("svg:tspan", { class: `c-${k}`, text: `${sym}${c[k]} ` })));
      tip += `\n本级及以下 here and below: ` + COUNTS.map(([k]) => `${HEALTH_ZH[k]} ${c[k]}`).join(" · ");
    }
    e.querySelector("title").textContent = tip;
  }
  for (const [id, e] of Object.entries(linkEls)) e.setAttribute("data-health", (health.links[id] || { health: "unknown" }).health);
  const roles = {};  // site -> the roles its pair members have now, per engine ("postgresql:primary")
  for (const r of topo.replication) {
    const h = pairHealth(r.id);
    for (const [d, role] of Object.entries(h.roles || {}))
      if (role === "primary" || role === "standby")
        (roles[topo.devices[d].site] = roles[topo.devices[d].site] || new Set()).add(`${r.service}:${role}`);
    if (!pairEls[r.id]) continue;
    const { path, badge } = pairEls[r.id];
    const t = pairText(r, h);
    path.setAttribute("data-state", h.state);
    badge.setAttribute("data-state", h.state);
    path.querySelector("title").textContent = badge.querySelector("title").textContent = t.long;
    const text = badge.querySelector("text"), rect = badge.querySelector("rect");
    text.textContent = t.short;
    const w = text.getComputedTextLength() + 14;  // the badge fits its text, centred where it was drawn
    rect.setAttribute("x", Number(text.getAttribute("x")) - w / 2);
    rect.setAttribute("width", w);
  }
  for (const [id, e] of Object.entries(siteEls)) {
    const tag = e.querySelector("text.db-role");
    if (!tag) continue;
    const mine = [...(roles[id] || [])].sort();  // by engine, "primary" before "standby"
    e.setAttribute("data-db-role", mine.join(" "));
    tag.textContent = mine.map(sr => {
      const [service, role] = sr.split(":");
      return `${ENGINE[service] || service} ${role === "primary" ? "主 P" : "备 S"}`;
    }).join(" · ");
  }
  paintPanels();
}

function paintPanels() {
  // the alerts of the place drawn (the whole network at the top), the sources, the status line
  if (!health) return;
  const here = view === rootId ? health.alerts : health.alerts.filter(a => a.site && within(a.site, view));
  const firing = here.filter(a => a.state === "firing" && !a.suppressed).length;
  const held = here.filter(a => a.suppressed).length;
  const where = view === rootId ? "全国 national" : shorten(byId[view].name);
  document.getElementById("alert-count").textContent = `${where} (${firing} firing 触发` + (held ? `, ${held} 已抑制 suppressed)` : ")");
  const items = here.slice(0, ALERTS_LISTED).map(alertItem);
  if (here.length > ALERTS_LISTED) items.push(el("li", { class: "more", text: `… 另有 ${here.length - ALERTS_LISTED} 条 / more` }));
  document.getElementById("alert-list").replaceChildren(...(items.length ? items : [el("li", { text: "无告警 / no alerts" })]));
  document.getElementById("source-list").replaceChildren(...health.sources.map(s =>
    el("li", { class: s.ok ? "ok" : "bad", text: `${s.ok ? "✓" : "✗"} ${s.scope || "*"} — ${s.url} ${s.ok ? s.seconds + " s" : "不可达 unreachable: " + s.error}` })));
  const sm = health.summary;
  const st = document.getElementById("status");
  st.className = "";
  st.textContent = `更新 updated ${new Date(health.time * 1000).toLocaleTimeString()} · 正常 ${sm.ok} · 告警 ${sm.warn} · 故障 ${sm.down} · 未知 ${sm.unknown}`;
}

function alertItem(a) {
  return el("li", { class: `${a.severity} ${a.state}${a.suppressed ? " suppressed" : ""}`, onclick: () => a.site && go(a.site) },
    el("div", {}, el("span", { class: "name", text: a.name }), ` · ${a.severity} · ${a.state === "firing" ? "触发 firing" : "待定 pending"}` +
      (a.suppressed ? " · 已抑制 suppressed (Alertmanager)" : "") +
      (a.site ? ` · ${a.site}` : "") + (a.device ? ` · ${a.device}` : "")),
    el("div", { text: a.summary_zh }), el("div", { text: a.summary_en }),
    a.runbook ? el("div", { class: "runbook", text: a.runbook }) : null);
}

function pairHealth(id) {
  return (health && health.replication[id]) ||
    { state: "unknown", roles: {}, serving: null, swapped: false, mode: null, lag_seconds: null, reason: null };
}

function dot(h) { return el("span", { class: "dot " + (h || "unknown") }); }

function pct(u) { return u == null ? "" : (u * 100).toFixed(u < 0.01 ? 2 : 0) + "%"; }

function detail(id) {
  const s = byId[id];
  const h = (health && health.sites[id]) || { health: "unknown", reasons: [] };
  const box = document.getElementById("detail");
  const parts = [el("h2", {}, dot(h.health), `${s.name} `, el("small", { text: `${s.id} · ${topo.levels[s.level]} · ${HEALTH_ZH[h.health]}` }))];
  if (h.reasons.length) parts.push(el("ul", { class: "reasons" }, ...h.reasons.map(r => el("li", { text: r }))));
  const rows = [el("tr", {}, ...["设备 device", "角色 role", "平台 platform", "管理 mgmt", "区域 zone", "状态 state"].map(t => el("th", { text: t })))];
  const ifRows = [el("tr", {}, ...["设备 device", "接口 interface", "管理 admin", "运行 oper", "利用率 util"].map(t => el("th", { text: t })))];
  for (const did of s.devices) {
    const d = topo.devices[did];
    const dh = (health && health.devices[did]) || { health: "unknown", interfaces: {}, databases: {} };
    const dbs = Object.entries(dh.databases).map(([svc, up]) => `${svc} ${up ? "✓" : "✗"}`).join(" ");
    rows.push(el("tr", {}, el("td", {}, dot(dh.health), `${did}`), el("td", { text: `${ROLE_ZH[d.role] || ""} ${d.role}` }),
      el("td", { text: d.platform }), el("td", { text: d.management }),
      el("td", { text: topo.zones[d.zone] + (d.boundary ? " · 边界 boundary" : "") }),
      el("td", { text: `${HEALTH_ZH[dh.health]}${dh.reason ? " — " + dh.reason : ""}${dbs ? " · " + dbs : ""}` })));
    const names = d.interfaces.length ? d.interfaces : Object.keys(dh.interfaces);
    for (const n of names) {
      const i = dh.interfaces[n] || {};
      ifRows.push(el("tr", {}, el("td", { text: did }), el("td", {}, dot(i.oper === "up" ? "up" : i.oper ? "down" : "unknown"), n),
        el("td", { text: i.admin || "?" }), el("td", { text: i.oper || "?" }), el("td", { text: pct(i.util) })));
    }
  }
  parts.push(el("h2", {}, "设备 ", el("small", { text: "Devices" })), el("table", {}, ...rows));
  parts.push(el("h2", {}, "接口 ", el("small", { text: "Interfaces" })), el("table", {}, ...ifRows));
  const linkRows = topo.links.filter(l => l.ends.some(e => e.site === id)).map(l => {
    const lh = (health && health.links[l.id]) || { health: "unknown", util: null };
    return el("tr", {}, el("td", {}, dot(lh.health), l.id), el("td", { text: l.ends.map(e => `${e.device}:${e.interface}`).join(" — ") }),
      el("td", { text: `${l.bandwidth_mbps} Mbps` }), el("td", { text: `${HEALTH_ZH[lh.health]} ${pct(lh.util)}` }));
  });
  parts.push(el("h2", {}, "链路 ", el("small", { text: "Links" })), el("table", {}, ...linkRows));
  const pairs = topo.replication.filter(r => r.primary_site === id || r.standby_site === id);
  if (pairs.length) {
    const pairRows = [el("tr", {}, ...["主库 → 备库 primary → standby", "模式 mode", "状态 state", "当前主库 serving", "服务地址 service"]
      .map(t => el("th", { text: t })))];
    for (const r of pairs) {
      const h = pairHealth(r.id);
      const t = pairText(r, h);
      pairRows.push(el("tr", { class: "replica-row", "data-pair": r.id },
        el("td", {}, dot(h.state === "lagging" ? "warn" : h.state === "broken" ? "down" : h.state), `${r.primary} → ${r.standby}`),
        el("td", { text: `${modeText(r, h)} · ${r.service}` }),
        // the reason of a pair that is not ok says it all (a lagging one: its lag and target)
        el("td", { text: REPL_ZH[h.state] + (h.reason ? ` — ${h.reason}` : h.lag_seconds == null ? "" :
                         ` · 延迟 lag ${h.lag_seconds} s（目标 target ≤ ${r.max_lag_seconds} s）`) }),
        el("td", { text: h.serving ? `${h.serving}${h.swapped ? " · 已切换 failed over" : ""}` : "-" }),
        el("td", { text: r.service_address || "-", title: t.long })));
    }
    parts.push(el("h2", {}, "灾备复制 ", el("small", { text: "DR replication" })), el("table", {}, ...pairRows));
  }
  const mine = health ? health.alerts.filter(a => a.site === id) : [];
  parts.push(el("h2", {}, "告警 ", el("small", { text: "Alerts" })),
    mine.length ? el("ul", { class: "alerts" }, ...mine.map(alertItem)) : el("p", { class: "hint", text: "无告警 / no alerts" }));
  box.replaceChildren(...parts);
}

// --- search: a site by its id (pinyin) or Chinese name --------------------------------------------------

const SEARCH_HITS = 12;

function search(text) {
  // prefix matches first, then substrings; higher levels first
  const q = norm(text);
  if (!q) return [];
  const hits = [];
  for (const s of topo.sites) {
    const at = keys[s.id].map(k => k.indexOf(q)).filter(i => i >= 0);
    if (at.length) hits.push([Math.min(...at) === 0 ? 0 : 1, s.rank, s.id, s]);
  }
  hits.sort((a, b) => a[0] - b[0] || a[1] - b[1] || (a[2] < b[2] ? -1 : 1));
  return hits.slice(0, SEARCH_HITS).map(h => h[3]);
}

function showHits() {
  const input = document.getElementById("search");
  const list = document.getElementById("search-results");
  const hits = search(input.value);
  list.replaceChildren(...hits.map(s => {
    const prov = s.province && s.province !== s.id && byId[s.province] ? ` · ${shorten(byId[s.province].name)}` : "";
    const a = el("a", { href: pathOf(s.id), "data-site": s.id, onclick: e => { e.preventDefault(); pick(s.id); } },
      el("span", { text: s.name }), el("small", { text: ` ${s.id} · ${topo.levels[s.level] || s.level}${prov}` }));
    return el("li", {}, a);
  }));
  list.hidden = !input.value.trim();
  if (!hits.length && !list.hidden) list.append(el("li", { class: "hint", text: "无匹配站点 / no site matches" }));
}

function pick(id) {
  const input = document.getElementById("search");
  input.value = "";
  showHits();
  go(id);
  if (siteEls[id]) siteEls[id].focus();
}

function searchKeys(e) {
  // Enter takes the first hit; arrows walk the hits; Escape leaves the search
  const links = [...document.querySelectorAll("#search-results a")];
  const at = links.indexOf(document.activeElement);
  if (e.key === "Enter" && e.target.id === "search" && links.length) { e.preventDefault(); pick(links[0].dataset.site); }
  else if (e.key === "ArrowDown" && links.length) { e.preventDefault(); links[Math.min(at + 1, links.length - 1)].focus(); }
  else if (e.key === "ArrowUp" && at >= 0) { e.preventDefault(); (at ? links[at - 1] : document.getElementById("search")).focus(); }
  else if (e.key === "Escape") { document.getElementById("search").value = ""; showHits(); document.getElementById("search").focus(); }
}

// --- the loop -----------------------------------------------------------------------------------------------

async function refresh(pending) {
  try {
    const r = await (pending || fetch("api/health", { cache: "no-store" }));
    if (r.status === 401) return location.reload();  // the session ended (a new token): the login page
    if (!r.ok) throw new Error(r.status);
    health = await r.json();
    rollUp();
    paint();
    detail(place);
    refreshes += 1;
    document.body.dataset.refreshes = String(refreshes);
    if (refreshes === 1) document.body.dataset.renderMs = String(Math.round(performance.now()));
    document.body.dataset.ready = "1";
  } catch (e) {
    const st = document.getElementById("status");
    st.className = "stale";
    st.textContent = `数据过期 / stale: 服务不可达 map server unreachable (${e.message})`;
  }
}

async function main() {
  const first = fetch("api/health", { cache: "no-store" });  // asked at once: the server merges while the topology loads
  topo = await (await fetch("api/topology", { cache: "no-store" })).json();
  document.getElementById("network").textContent = `${topo.network.name}`;
  index();
  route();
  document.body.dataset.drawnMs = String(Math.round(performance.now()));  // drawn, grey until health arrives
  addEventListener("popstate", route);  // back, forward, a link or a hash typed in
  let resized = null;
  addEventListener("resize", () => {
    clearTimeout(resized);
    resized = setTimeout(() => { view = null; show(place); }, 150);
  });
  const input = document.getElementById("search");
  input.addEventListener("input", showHits);
  document.getElementById("find").addEventListener("keydown", searchKeys);
  addEventListener("keydown", e => {
    if (e.key === "/" && !/^(INPUT|TEXTAREA)$/.test(document.activeElement.tagName)) { e.preventDefault(); input.focus(); }
  });
  await refresh(first);
  setInterval(refresh, topo.refresh_seconds * 1000);
}

main();
