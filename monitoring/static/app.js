// 金保工程 健康地图 — draws /api/topology once as SVG, colours it from /api/health every few seconds.
// No libraries, nothing from the internet. Test hooks: body[data-ready], body[data-refreshes],
// g.site[data-site][data-health][data-db-role], path.link[data-link][data-health],
// path.replica[data-pair][data-state], g.replica-badge[data-pair] (a replication pair: primary → DR standby).
// Every text from the inventory or Prometheus goes in as textContent (el's "text"), never as markup.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const BOX_W = 128, BOX_H = 40, SLOT = 142, ROW = 120, LEFT = 96, TOP = 30;
const HEALTH_ZH = { ok: "正常 OK", warn: "告警 Warning", down: "故障 Down", unknown: "未知 Unknown",
                    saturated: "拥塞 Saturated", planned: "规划中 Planned" };
const ROLE_ZH = { router: "路由器", firewall: "防火墙", switch: "交换机", server: "服务器", database: "数据库",
                  backup_store: "备份存储", monitor: "监控" };
const REPL_ZH = { ok: "正常 OK", lagging: "延迟 Lagging", broken: "中断 Broken", unknown: "未知 Unknown" };
const DB_ROLE_ZH = { primary: "主库 primary", standby: "备库 standby", down: "停止 down", unknown: "未知 unknown" };

const BIG = 150;  // above this many sites only one province is drawn below the province row
let topo = null, health = null, selected = null, refreshes = 0, expanded = null;
let siteEls = {}, linkEls = {}, pairEls = {};

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
  siteEls = {}; linkEls = {}; pairEls = {};
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
  svg.append(drawReplication(pos));
  const members = new Set(topo.replication.flatMap(r => [r.primary_site, r.standby_site]));
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
      el("svg:title", { text: s.name + (outside.length ? "\n" + s.zones.map(z => topo.zones[z]).join(" · ") : "") }),
      // a replication member: which databases here serve as primary (主) or stand by (备) now, set by paint()
      members.has(s.id) ? el("svg:text", { class: "db-role", x: p.x + BOX_W / 2, y: p.y - BOX_H / 2 - 4 }) : null);
    siteEls[s.id] = node;
    svg.append(node);
  }
}

function drawReplication(pos) {
  // each pair a dotted curve from the primary's site to the standby's DR site, bowed aside from the links
  // between them, with a badge at its middle (mode, state, lag) that opens the serving member's site
  const g = el("svg:g", { class: "replication" });
  for (const r of topo.replication) {
    const [a, b] = [pos[r.primary_site], pos[r.standby_site]];
    if (!a || !b || a === b) continue;
    const [p, q] = a.y <= b.y ? [a, b] : [b, a];
    const [y1, y2] = p.depth === q.depth ? [p.y + BOX_H / 2, q.y + BOX_H / 2] : [p.y + BOX_H / 2, q.y - BOX_H / 2];
    const c = { x: (p.x + q.x) / 2 + 70, y: p.depth === q.depth ? p.y + BOX_H / 2 + 50 : (y1 + y2) / 2 };
    const mid = { x: (p.x + 2 * c.x + q.x) / 4, y: (y1 + 2 * c.y + y2) / 4 };
    const path = el("svg:path", { class: "replica", "data-pair": r.id, "data-state": "unknown",
                                  d: `M ${p.x + BOX_W / 4} ${y1} Q ${c.x} ${c.y} ${q.x + BOX_W / 4} ${y2}` }, el("svg:title"));
    const badge = el("svg:g", { class: "replica-badge", "data-pair": r.id, "data-state": "unknown", tabindex: 0,
                                onclick: () => select(pairSite(r)) },
      el("svg:rect", { x: mid.x, y: mid.y - 9, width: 0, height: 18, rx: 9 }),
      el("svg:text", { x: mid.x, y: mid.y + 4 }), el("svg:title"));
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

function pairText(r, h) {
  // one line for the badge, the full story for tooltips and the detail
  const mode = r.sync ? "同步 sync" : "异步 async";
  const lag = h.lag_seconds == null ? "" : ` ${h.lag_seconds.toFixed(h.lag_seconds < 10 ? 1 : 0)}s`;
  const short = `${mode} · ${REPL_ZH[h.state]}${lag}${h.swapped ? " ⇄" : ""}`;
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
  const roles = {};  // site -> the roles its pair members have now
  for (const r of topo.replication) {
    const h = pairHealth(r.id);
    for (const [d, role] of Object.entries(h.roles || {}))
      if (role === "primary" || role === "standby") (roles[topo.devices[d].site] = roles[topo.devices[d].site] || new Set()).add(role);
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
    const mine = [...(roles[id] || [])].sort();  // "primary" before "standby"
    e.setAttribute("data-db-role", mine.join(" "));
    tag.textContent = mine.map(r => r === "primary" ? "主 P" : "备 S").join(" · ");
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

function pairHealth(id) {
  return (health && health.replication[id]) || { state: "unknown", roles: {}, serving: null, swapped: false, lag_seconds: null, reason: null };
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
  const pairs = topo.replication.filter(r => r.primary_site === id || r.standby_site === id);
  if (pairs.length) {
    const pairRows = [el("tr", {}, ...["主库 → 备库 primary → standby", "模式 mode", "状态 state", "当前主库 serving", "服务地址 service"]
      .map(t => el("th", { text: t })))];
    for (const r of pairs) {
      const h = pairHealth(r.id);
      const t = pairText(r, h);
      pairRows.push(el("tr", { class: "replica-row", "data-pair": r.id },
        el("td", {}, dot(h.state === "lagging" ? "warn" : h.state === "broken" ? "down" : h.state), `${r.primary} → ${r.standby}`),
        el("td", { text: `${r.sync ? "同步 sync" : "异步 async"} · ${r.service}` }),
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
