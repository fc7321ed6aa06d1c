// 金保工程 健康地图 — draws /api/topology once as SVG, colours it from /api/health every few seconds.
// No libraries, nothing from the internet. Test hooks: body[data-ready], body[data-refreshes],
// g.site[data-site][data-health], path.link[data-link][data-health].
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const BOX_W = 128, BOX_H = 40, SLOT = 142, ROW = 120, LEFT = 96, TOP = 30;
const HEALTH_ZH = { ok: "正常 OK", warn: "告警 Warning", down: "故障 Down", unknown: "未知 Unknown",
                    saturated: "拥塞 Saturated", planned: "规划中 Planned" };
const ROLE_ZH = { router: "路由器", firewall: "防火墙", switch: "交换机", server: "服务器", database: "数据库",
                  backup_store: "备份存储", monitor: "监控" };

const BIG = 150;  // above this many sites only one province is drawn below the province row
let topo = null, health = null, selected = null, refreshes = 0, expanded = null;
let siteEls = {}, linkEls = {};

function shown(s) {
  // a national inventory (thousands of sites): the ministry, provinces and the ministry's own DR sites,
  // and the expanded province's tree
  return topo.sites.length <= BIG || s.rank <= 1 && (s.level !== "dr" || !s.province) || s.province === expanded;
}

function el(tag, attrs, ...kids) {
  const e = tag.startsWith("svg:") ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "text") e.textContent = v; else if (k === "onclick") e.addEventListener("click", v); else e.setAttribute(k, v);
  }
  for (const k of kids) if (k != null) e.append(k);
  return e;
}

function layout(sites) {
  // rows by depth in the tree (ministry 0, provinces 1, cities and a province's DR site 2, counties 3);
  // leaves side by side, a parent centred over its children
  const byId = Object.fromEntries(sites.map(s => [s.id, s]));
  const kids = {};
  for (const s of sites) if (s.parent) (kids[s.parent] = kids[s.parent] || []).push(s.id);
  const pos = {};
  let next = 0, maxDepth = 0;
  function place(id, depth) {
    maxDepth = Math.max(maxDepth, depth);
    const ch = kids[id] || [];
    // DR sites after their siblings so the province's cities stay together
    ch.sort((a, b) => (byId[a].level === "dr") - (byId[b].level === "dr"));
    let x;
    if (!ch.length) x = next++;
    else { const xs = ch.map(c => place(c, depth + 1)); x = (xs[0] + xs[xs.length - 1]) / 2; }
    pos[id] = { x: LEFT + x * SLOT + SLOT / 2, y: TOP + depth * ROW + BOX_H / 2, depth };
    return x;
  }
  const root = sites.find(s => !s.parent);
  if (root) place(root.id, 0);
  return { pos, width: LEFT + Math.max(next, 1) * SLOT + 20, height: TOP + (maxDepth + 1) * ROW };
}

function draw() {
  const svg = document.getElementById("map");
  svg.replaceChildren();
  siteEls = {}; linkEls = {};
  const sites = topo.sites.filter(shown);
  const { pos, width, height } = layout(sites);
  svg.setAttribute("width", width); svg.setAttribute("height", height);
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  // rank labels from the levels present in each row
  const rows = {};
  for (const s of sites) (rows[pos[s.id].depth] = rows[pos[s.id].depth] || new Set()).add(topo.levels[s.level] || s.level);
  for (const [d, names] of Object.entries(rows))
    svg.append(el("svg:text", { class: "rank-label", x: 8, y: TOP + d * ROW + BOX_H / 2 + 4, text: [...names].join(" · ") }));
  // inter-site links (a LAN inside a site is in the site's detail), parallel ones side by side
  const pairs = {};
  const g = el("svg:g", { class: "links" });
  for (const l of topo.links) {
    const [a, b] = l.ends.map(e => e.site);
    if (a === b || !pos[a] || !pos[b]) continue;
    const key = [a, b].sort().join("|");
    const n = pairs[key] = (pairs[key] || 0) + 1;
    const off = (n % 2 ? 1 : -1) * Math.floor(n / 2) * 8;
    const [p, q] = pos[a].y <= pos[b].y ? [pos[a], pos[b]] : [pos[b], pos[a]];
    // between rows a straight line; within a row an arc over the boxes in between
    const d = p.depth === q.depth
      ? `M ${p.x + off} ${p.y - BOX_H / 2} Q ${(p.x + q.x) / 2 + off} ${p.y - BOX_H / 2 - 24 - Math.abs(q.x - p.x) / 8} ${q.x + off} ${q.y - BOX_H / 2}`
      : `M ${p.x + off} ${p.y + BOX_H / 2} L ${q.x + off} ${q.y - BOX_H / 2}`;
    const path = el("svg:path", { class: "link", "data-link": l.id, "data-health": l.state === "planned" ? "planned" : "unknown", d });
    path.append(el("svg:title", { text: `${l.id} (${l.ends.map(e => e.device + ":" + e.interface).join(" — ")}) ${l.bandwidth_mbps} Mbps` }));
    linkEls[l.id] = path;
    g.append(path);
  }
  svg.append(g);
  for (const s of sites) {
    const p = pos[s.id];
    // a site with devices outside the 业务专网 gets a ring shaded by its other zone(s)
    const outside = s.zones.filter(z => z !== "business");
    const node = el("svg:g", { class: "site", "data-site": s.id, "data-health": "unknown", "data-level": s.level, tabindex: 0,
                               "data-zones": s.zones.join(" "), onclick: () => select(s.id) },
      ...outside.map((z, i) => el("svg:rect", { class: `zone zone-${z}`, x: p.x - BOX_W / 2 - 3 - 3 * i, y: p.y - BOX_H / 2 - 3 - 3 * i,
                                                width: BOX_W + 6 + 6 * i, height: BOX_H + 6 + 6 * i, rx: 8 })),
      el("svg:rect", { class: "box", x: p.x - BOX_W / 2, y: p.y - BOX_H / 2, width: BOX_W, height: BOX_H, rx: 6 }),
      el("svg:text", { x: p.x, y: p.y - 3, text: shorten(s.name) }),
      el("svg:text", { class: "sub", x: p.x, y: p.y + 12, text: `${s.id} · ${(topo.levels[s.level] || s.level).split(" ")[0]}` }),
      el("svg:title", { text: s.name + (outside.length ? "\n" + s.zones.map(z => topo.zones[z]).join(" · ") : "") }));
    siteEls[s.id] = node;
    svg.append(node);
  }
}

function shorten(name) {
  // the map shows the short form; the full name is the tooltip and the detail title
  const short = name.replace(/社会保险|信息中心|数据中心|经办中心|（.*?）/g, "");
  return short.length > 10 ? short.slice(0, 10) + "…" : short;
}

function paint() {
  for (const [id, e] of Object.entries(siteEls)) {
    const h = health.sites[id] || { health: "unknown", reasons: [] };
    e.setAttribute("data-health", h.health);
    e.querySelector("title").textContent = `${topo.sites.find(s => s.id === id).name} — ${HEALTH_ZH[h.health]}` +
      (h.reasons.length ? "\n" + h.reasons.join("\n") : "");
  }
  for (const [id, e] of Object.entries(linkEls)) {
    const h = health.links[id] || { health: "unknown", util: null };
    e.setAttribute("data-health", h.health);
  }
  const firing = health.alerts.filter(a => a.state === "firing" && !a.suppressed);
  const held = health.alerts.filter(a => a.suppressed).length;
  document.getElementById("alert-count").textContent = `(${firing.length} firing 触发` + (held ? `, ${held} 已抑制 suppressed)` : ")");
  const list = document.getElementById("alert-list");
  list.replaceChildren(...(health.alerts.length ? health.alerts.map(alertItem) : [el("li", { text: "无告警 / no alerts" })]));
  document.getElementById("source-list").replaceChildren(...health.sources.map(s =>
    el("li", { class: s.ok ? "ok" : "bad", text: `${s.ok ? "✓" : "✗"} ${s.scope || "*"} — ${s.url} ${s.ok ? s.seconds + " s" : "不可达 unreachable: " + s.error}` })));
  const sm = health.summary;
  const st = document.getElementById("status");
  st.className = "";
  st.textContent = `更新 updated ${new Date(health.time * 1000).toLocaleTimeString()} · 正常 ${sm.ok} · 告警 ${sm.warn} · 故障 ${sm.down} · 未知 ${sm.unknown}`;
  if (selected) detail(selected);
}

function alertItem(a) {
  return el("li", { class: `${a.severity} ${a.state}${a.suppressed ? " suppressed" : ""}`, onclick: () => a.site && select(a.site) },
    el("div", {}, el("span", { class: "name", text: a.name }), ` · ${a.severity} · ${a.state === "firing" ? "触发 firing" : "待定 pending"}` +
      (a.suppressed ? " · 已抑制 suppressed (Alertmanager)" : "") +
      (a.site ? ` · ${a.site}` : "") + (a.device ? ` · ${a.device}` : "")),
    el("div", { text: a.summary_zh }), el("div", { text: a.summary_en }),
    a.runbook ? el("div", { class: "runbook", text: a.runbook }) : null);
}

function select(id) {
  selected = id;
  const site = topo.sites.find(s => s.id === id);
  if (topo.sites.length > BIG && site.province && site.province !== expanded) {
    expanded = site.province;  // open that province's tree
    draw();
    if (health) paint();
    siteEls[id].scrollIntoView({ block: "nearest", inline: "center" });
  }
  for (const [sid, e] of Object.entries(siteEls)) e.classList.toggle("selected", sid === id);
  history.replaceState(null, "", "#site=" + id);
  detail(id);
}

function dot(h) { return el("span", { class: "dot " + (h || "unknown") }); }

function pct(u) { return u == null ? "" : (u * 100).toFixed(u < 0.01 ? 2 : 0) + "%"; }

function detail(id) {
  const s = topo.sites.find(x => x.id === id);
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
  const mine = health ? health.alerts.filter(a => a.site === id) : [];
  parts.push(el("h2", {}, "告警 ", el("small", { text: "Alerts" })),
    mine.length ? el("ul", { class: "alerts" }, ...mine.map(alertItem)) : el("p", { class: "hint", text: "无告警 / no alerts" }));
  box.replaceChildren(...parts);
}

async function refresh() {
  try {
    const r = await fetch("api/health", { cache: "no-store" });
    if (r.status === 401) return location.reload();  // the session ended (a new token): the login page
    if (!r.ok) throw new Error(r.status);
    health = await r.json();
    paint();
    refreshes += 1;
    document.body.dataset.refreshes = String(refreshes);
    document.body.dataset.ready = "1";
  } catch (e) {
    const st = document.getElementById("status");
    st.className = "stale";
    st.textContent = `数据过期 / stale: 服务不可达 map server unreachable (${e.message})`;
  }
}

async function main() {
  topo = await (await fetch("api/topology", { cache: "no-store" })).json();
  document.getElementById("network").textContent = `${topo.network.name}`;
  draw();
  const m = location.hash.match(/site=([a-z0-9_]+)/);
  await refresh();
  if (m && topo.sites.some(s => s.id === m[1])) select(m[1]);
  setInterval(refresh, topo.refresh_seconds * 1000);
}

main();
