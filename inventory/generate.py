"""National-scale inventory generator: a synthetic but consistent 金保工程 network of ~10,000 devices.

``generate()`` returns file name → YAML text in the same schema as ``inventory/default``; ``write()``
puts it into a directory atomically. The output passes ``inventory.load()`` and is used by the
benchmark, by scale tests and by anyone who wants to see how the suite behaves on the real network.

Address plan (all inside the national 10.0.0.0/8 except management):

- ministry ``bu``: 10.0.0.0/16; p2p pool 10.0.255.0/24 (province and DR uplinks), loopbacks 10.0.254.0/24
- province with division code C: 10.C.0.0/16, OSPF area C; LAN 10.C.0.0/24, DR site 10.C.1.0/24;
  p2p pool 10.C.240.0/21, loopback pool 10.C.248.0/21; cities are carved from 10.C.16.0–10.C.239.255
  (a /20 each when they fit, else /21 or /22); the first /24 of a city is its LAN, counties take equal
  blocks (/24 … /28) from the rest of the city block
- management: 100.64.0.0/14 (shared address space, overlaps nothing in 10/8); the ministry uses
  100.64.0.0/21 (ops host 100.64.0.1), province C uses the /21 starting at 100.64.0.0 + C·2048
"""
from __future__ import annotations

import ipaddress
import os
import random
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from jinbao_netops.files import fsync_dir, write_atomic

# (division code, pinyin, Chinese name, prefecture-level divisions, county-level divisions) — the real
# shares are used as weights when spreading the requested city and county totals over provinces.
PROVINCES: list[tuple[str, str, str, int, int]] = [
    ("11", "beijing", "北京市", 1, 16),
    ("12", "tianjin", "天津市", 1, 16),
    ("13", "hebei", "河北省", 11, 167),
    ("14", "shanxi", "山西省", 11, 117),
    ("15", "neimenggu", "内蒙古自治区", 12, 103),
    ("21", "liaoning", "辽宁省", 14, 100),
    ("22", "jilin", "吉林省", 9, 60),
    ("23", "heilongjiang", "黑龙江省", 13, 121),
    ("31", "shanghai", "上海市", 1, 16),
    ("32", "jiangsu", "江苏省", 13, 95),
    ("33", "zhejiang", "浙江省", 11, 90),
    ("34", "anhui", "安徽省", 16, 104),
    ("35", "fujian", "福建省", 9, 84),
    ("36", "jiangxi", "江西省", 11, 100),
    ("37", "shandong", "山东省", 16, 136),
    ("41", "henan", "河南省", 17, 157),
    ("42", "hubei", "湖北省", 13, 103),
    ("43", "hunan", "湖南省", 14, 122),
    ("44", "guangdong", "广东省", 21, 122),
    ("45", "guangxi", "广西壮族自治区", 14, 111),
    ("46", "hainan", "海南省", 4, 25),
    ("50", "chongqing", "重庆市", 1, 38),
    ("51", "sichuan", "四川省", 21, 183),
    ("52", "guizhou", "贵州省", 9, 88),
    ("53", "yunnan", "云南省", 16, 129),
    ("54", "xizang", "西藏自治区", 7, 74),
    ("61", "shaanxi", "陕西省", 10, 107),
    ("62", "gansu", "甘肃省", 14, 86),
    ("63", "qinghai", "青海省", 8, 44),
    ("64", "ningxia", "宁夏回族自治区", 5, 22),
    ("65", "xinjiang", "新疆维吾尔自治区", 14, 106),
    ("66", "bingtuan", "新疆生产建设兵团", 14, 40),
]
NATIONAL_CITIES, NATIONAL_COUNTIES = 340, 2850

MGMT = ipaddress.IPv4Network("100.64.0.0/14")
MGMT_PER_SITE = 2048          # one /21 of management addresses per province (and for the ministry)
CITY_SPACE = (16 * 256, 240 * 256)   # offsets inside a province /16 that cities are carved from
CITY_SIZES = (4096, 2048, 1024)      # /20, /21, /22
COUNTY_SIZES = (256, 128, 64, 32, 16)  # /24 … /28
P2P_OFFSET, P2P_SIZE = 240 * 256, 2048    # 10.C.240.0/21
LOOP_OFFSET, LOOP_SIZE = 248 * 256, 2048  # 10.C.248.0/21

CARRIERS = ("china_telecom", "china_unicom", "china_mobile")
IFACE = {
    "frr": "eth{}",
    "huawei_vrp": "GigabitEthernet0/0/{}",
    "hp_comware": "GigabitEthernet1/0/{}",
    "cisco_ios": "GigabitEthernet0/{}",
}
COUNTY_ROUTERS = (("huawei_vrp", 50), ("hp_comware", 25), ("cisco_ios", 15), ("frr", 10))
SERVER_OS = (("kylin", 50), ("openeuler", 30), ("debian", 20))
DUAL_SHARE = 0.35      # counties with two active uplinks (to two cities of the province)
PLANNED_SHARE = 0.03   # single-homed counties with a planned (not yet built) second uplink
DATABASE_SHARE = 0.15  # counties that also run a mariadb database
LEGACY_V2C = 0.05      # county routers still on SNMP v2c
# about what the address plan can number (3 × the real network): larger requests are refused before
# any work instead of running until a pool is exhausted
MAX_CITIES, MAX_COUNTIES = 1_000, 10_000


class GenerateError(ValueError):
    """The requested sizes do not fit the address plan or the list of provinces."""


def default_counts(provinces: int) -> tuple[int, int]:
    """City and county totals matching the real share of the first ``provinces`` provinces."""
    if not 1 <= provinces <= len(PROVINCES):
        raise GenerateError(f"provinces must be between 1 and {len(PROVINCES)}, not {provinces}")
    chosen = PROVINCES[:provinces]
    all_c, all_k = sum(p[3] for p in PROVINCES), sum(p[4] for p in PROVINCES)
    cities = max(provinces, round(NATIONAL_CITIES * sum(p[3] for p in chosen) / all_c))
    counties = round(NATIONAL_COUNTIES * sum(p[4] for p in chosen) / all_k)
    return cities, counties


def _spread(total: int, weights: list[int], minimum: int = 0) -> list[int]:
    """Largest-remainder apportionment of ``total`` over ``weights``, each share at least ``minimum``."""
    n = len(weights)
    out = [minimum] * n
    rest = total - minimum * n
    wsum = sum(weights)
    quotas = [rest * w / wsum for w in weights]
    for i, q in enumerate(quotas):
        out[i] += int(q)
    left = total - sum(out)
    for i in sorted(range(n), key=lambda i: (int(quotas[i]) - quotas[i], i))[:left]:
        out[i] += 1
    return out


def _pick(rng: random.Random, table: tuple[tuple[str, int], ...]) -> str:
    return rng.choices([t[0] for t in table], weights=[t[1] for t in table])[0]


def _ip(base: int, offset: int) -> str:
    return str(ipaddress.IPv4Address(base + offset))


def _net(base: int, size: int) -> str:
    return f"{ipaddress.IPv4Address(base)}/{32 - size.bit_length() + 1}"


@dataclass
class _Router:
    id: str
    platform: str
    ports: list[str] = field(default_factory=list)  # YAML lines of the interfaces, in port order
    lan_prefix: int = 24  # prefix length of the LAN behind port 0

    def port(self, address: str | None, description: str) -> str:
        name = IFACE[self.platform].format(len(self.ports))
        if address:
            self.ports.append(f"      {name}: {{address: {address}, description: {description}}}")
        else:
            self.ports.append(f"      {name}: {{description: {description}}}")
        return name


class _Pool:
    """Sequential allocator over one prefix."""

    def __init__(self, base: int, size: int, what: str):
        self.base, self.size, self.next, self.what = base, size, 0, what

    def take(self, n: int = 1) -> int:
        if self.next + n > self.size:
            raise GenerateError(f"{self.what} ({_net(self.base, self.size)}) is exhausted; ask for fewer sites")
        a = self.base + self.next
        self.next += n
        return a


class _File:
    def __init__(self, header: str):
        self.header = header
        self.sites: list[str] = []
        self.devices: list[str] = []
        self.links: list[str] = []

    def text(self) -> str:
        parts = [self.header]
        for name, body in (("sites", self.sites), ("devices", self.devices), ("links", self.links)):
            if body:
                parts.append(f"\n{name}:\n")
                parts.append("\n".join(body) + "\n")
        return "".join(parts)


class _Gen:
    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.counts = {"provinces": 0, "dr": 0, "cities": 0, "counties": 0, "devices": 0, "links": 0,
                       "dual_homed": 0, "planned_links": 0}

    # --- emitters --------------------------------------------------------------------------
    def site(self, f: _File, sid: str, name: str, level: str, parent: str | None, block: str, extra: str = "") -> None:
        lines = [f"  {sid}:", f"    name: {name}", f"    level: {level}"]
        if parent:
            lines.append(f"    parent: {parent}")
        lines.append(f"    block: {block}")
        if extra:
            lines.append(extra)
        f.sites.append("\n".join(lines))

    def device(self, f: _File, did: str, name: str, site: str, role: str, platform: str, mgmt: str,
               ports: list[str], loopback: str | None = None, services: str = "", v2c: bool = False) -> None:
        lines = [f"  {did}:", f"    name: {name}", f"    site: {site}", f"    role: {role}",
                 f"    platform: {platform}", f"    management: {mgmt}"]
        if loopback:
            lines.append(f"    loopback: {loopback}")
        lines.append("    credentials: ops")
        if v2c:
            lines.append("    snmp_version: v2c")
        if services:
            lines.append(f"    services: [{services}]")
        lines.append("    interfaces:")
        lines.extend(ports)
        f.devices.append("\n".join(lines))
        self.counts["devices"] += 1

    def link(self, f: _File, lid: str, a: tuple[str, str], b: tuple[str, str], kind: str, mbps: int,
             carrier: str | None = None, state: str = "active") -> None:
        s = f'  {lid}: {{a: "{a[0]}:{a[1]}", b: "{b[0]}:{b[1]}", kind: {kind}, bandwidth_mbps: {mbps}'
        if carrier:
            s += f", carrier: {carrier}, srlg: {lid}-{carrier.split('_')[1]}"
        if state != "active":
            s += f", state: {state}"
        f.links.append(s + "}")
        self.counts["links"] += 1
        if state == "planned":
            self.counts["planned_links"] += 1

    def p2p(self, f: _File, pool: _Pool, lid: str, low: _Router, high: _Router, kind: str, mbps: int, carrier: str,
            low_desc: str, high_desc: str) -> None:
        """An addressed /31 between two routers: the lower-level end first (``a``), as in the default."""
        base = pool.take(2)
        hp = high.port(f"{_ip(base, 0)}/31", high_desc)
        lp = low.port(f"{_ip(base, 1)}/31", low_desc)
        self.link(f, lid, (low.id, lp), (high.id, hp), kind, mbps, carrier)

    def lan_host(self, f: _File, router: _Router, lan_base: int, prefix: int, host: int, did: str, name: str,
                 site: str, role: str, platform: str, mgmt: str, services: str = "") -> None:
        port = IFACE[platform].format(0) if platform in IFACE else "eth0"
        self.device(f, did, name, site, role, platform, mgmt,
                    [f"      {port}: {{address: {_ip(lan_base, host)}/{prefix}}}"], services=services)
        self.link(f, f"{did}-lan", (did, port), (router.id, IFACE[router.platform].format(0)), "lan", 1000)

    def router(self, f: _File, r: _Router, name: str, site: str, mgmt: str, loopback: str, v2c: bool = False) -> None:
        self.device(f, r.id, name, site, "router", r.platform, mgmt, r.ports, loopback=loopback, v2c=v2c)


def _network_yml() -> str:
    return f"""# 金保工程 社会保障专网 — synthetic national-scale inventory written by `netops inventory generate`.
# Identifiers are pinyin-like and synthetic (p44c03k12 = province 44, city 3, county 12).
network:
  id: jinbao
  name: 金保工程社会保障专网（全国规模合成）
  address_plan:
    national: 10.0.0.0/8            # provinces take 10.<division code>.0.0/16
    management: {MGMT}         # out-of-band management; one /21 per province
    ops_host: {_ip(int(MGMT.network_address), 1)}
  ospf:
    hello_interval: 1
    dead_interval: 4

credentials:
  ops:
    username: netops
    ssh_key: {{env: NETOPS_SSH_KEY}}
    snmp:
      user: netops
      auth_protocol: SHA
      auth_key: {{env: NETOPS_SNMP_AUTH_KEY}}
      priv_protocol: AES
      priv_key: {{env: NETOPS_SNMP_PRIV_KEY}}
      community: {{env: NETOPS_SNMP_COMMUNITY}}
"""


def _sizes(n: int, space: int, sizes: tuple[int, ...], what: str) -> int:
    for size in sizes:
        if n * size <= space:
            return size
    raise GenerateError(f"{n} {what} do not fit the address plan; ask for fewer")


def generate(provinces: int = 32, cities: int | None = NATIONAL_CITIES, counties: int | None = NATIONAL_COUNTIES,
             seed: int = 0) -> dict[str, str]:
    """File name → YAML text of a national inventory; deterministic for ``seed``. The first ``provinces``
    provinces (by division code) are used; ``cities``/``counties`` None means their real share of 340/2850."""
    return _generate(provinces, cities, counties, seed)[0]


def _generate(provinces: int, cities: int | None, counties: int | None,
              seed: int) -> tuple[dict[str, str], dict[str, int]]:
    share = default_counts(provinces)  # also checks provinces
    cities = share[0] if cities is None else cities
    counties = share[1] if counties is None else counties
    if cities < provinces:
        raise GenerateError(f"every province needs a city: cities ({cities}) must be at least provinces ({provinces})")
    if counties < 0:
        raise GenerateError(f"counties must not be negative, not {counties}")
    for what, n, most, real in (("cities", cities, MAX_CITIES, NATIONAL_CITIES),
                                ("counties", counties, MAX_COUNTIES, NATIONAL_COUNTIES)):
        if n > most:
            raise GenerateError(f"--{what} {n}: at most {most:,} 最多 (the real network has {real:,})")
    g = _Gen(seed)
    rng = g.rng
    chosen = PROVINCES[:provinces]
    city_n = _spread(cities, [p[3] for p in chosen], minimum=1)
    county_n = _spread(counties, [p[4] for p in chosen])

    # ministry ------------------------------------------------------------------------------
    mgmt0 = int(MGMT.network_address)
    mfile = _File("# 部中心: 人力资源和社会保障部信息中心。省中心与灾备中心的上联写在各省文件中。\n")
    g.site(mfile, "bu", "人力资源和社会保障部信息中心", "ministry", None, "10.0.0.0/16",
           '    code: "10"\n    pools:\n      p2p: [10.0.255.0/24]\n      loopback: [10.0.254.0/24]')
    m_p2p = _Pool(int(ipaddress.IPv4Address("10.0.255.0")), 256, "the ministry p2p pool")
    lan0 = int(ipaddress.IPv4Address("10.0.1.0"))
    bu_r1, bu_r2 = _Router("bu-r1", "frr"), _Router("bu-r2", "frr")
    bu_r1.port(f"{_ip(lan0, 1)}/24", "部中心局域网")
    bu_r2.port(f"{_ip(lan0, 2)}/24", "部中心局域网")
    files: dict[str, str] = {}
    g.counts["sites"] = 1

    for (code, py, cname, _, _), n_city, n_county in zip(chosen, city_n, county_n):
        c = int(code)
        f = _File(f"# {cname}: 省中心, 异地灾备中心, {n_city} 个地市, {n_county} 个区县 (synthetic).\n")
        pbase = int(ipaddress.IPv4Address(f"10.{c}.0.0"))
        mg = _Pool(mgmt0 + c * MGMT_PER_SITE + 11, MGMT_PER_SITE - 11, f"the management addresses of {py}")
        p2p = _Pool(pbase + P2P_OFFSET, P2P_SIZE, f"the p2p pool of {py}")
        loop = _Pool(pbase + LOOP_OFFSET + 1, LOOP_SIZE - 1, f"the loopback pool of {py}")
        dr = f"{py}_zaibei"
        g.site(f, py, f"{cname}社会保险数据中心", "province", "bu", f"10.{c}.0.0/16",
               f'    code: "{code}"\n    pools:\n      p2p: [{_net(pbase + P2P_OFFSET, P2P_SIZE)}]\n'
               f"      loopback: [{_net(pbase + LOOP_OFFSET, LOOP_SIZE)}]")
        g.site(f, dr, f"{cname}社会保险异地灾备中心", "dr", py, f"10.{c}.1.0/24")
        g.counts["provinces"] += 1
        g.counts["dr"] += 1
        g.counts["sites"] += 2

        pr, drr = _Router(f"{py}-r1", "huawei_vrp"), _Router(f"{py}-dr-r1", "huawei_vrp")
        pr.port(f"10.{c}.0.1/24", "省中心核心局域网")
        drr.port(f"10.{c}.1.1/24", "灾备中心局域网")
        # uplinks to the ministry: province core → bu-r1, DR → bu-r2 (addresses from the ministry pool)
        g.p2p(f, m_p2p, f"{py}-up-bu", pr, bu_r1, "dedicated_line", 10000, "china_telecom", "至部中心核心", f"至{cname}省中心核心")
        g.p2p(f, m_p2p, f"{py}-dr-up-bu", drr, bu_r2, "mpls_vpn", 1000, "china_unicom", "至部中心核心", f"至{cname}灾备中心")
        g.p2p(f, p2p, f"{py}-core-dr", drr, pr, "dedicated_line", 10000, "china_mobile", "至省中心核心", "至灾备中心")
        prov_lan, dr_lan = pbase, pbase + 256
        hosts = [
            (f"{py}-db1", "省中心数据库服务器", py, "database", "postgresql", prov_lan, 10, pr),
            (f"{py}-bak1", "省中心备份存储", py, "backup_store", "", prov_lan, 11, pr),
            (f"{py}-mon1", "省中心监控主机", py, "monitor", "", prov_lan, 12, pr),
            (f"{py}-dr-bak1", "灾备中心备份存储", dr, "backup_store", "postgresql", dr_lan, 10, drr),
        ]

        # cities and counties ------------------------------------------------------------------
        csize = _sizes(n_city, CITY_SPACE[1] - CITY_SPACE[0], CITY_SIZES, f"cities in {py}")
        city_of = [0] * n_city
        if n_city:
            weights = [rng.uniform(0.5, 1.5) for _ in range(n_city)]
            for k in range(n_county):
                city_of[rng.choices(range(n_city), weights=weights)[0] if k >= n_city else k] += 1
        city_routers: list[_Router] = []
        city_meta = []
        for ci in range(n_city):
            cid = f"p{code}c{ci + 1:02d}"
            cbase = pbase + CITY_SPACE[0] + ci * csize
            g.site(f, cid, f"{cname}第{ci + 1}市社会保险信息中心", "city", py, _net(cbase, csize))
            g.counts["cities"] += 1
            g.counts["sites"] += 1
            r = _Router(f"{cid}-r1", rng.choice(("huawei_vrp", "hp_comware")))
            r.port(f"{_ip(cbase, 1)}/24", "地市核心局域网")
            g.p2p(f, p2p, f"{cid}-up-core", r, pr, "dedicated_line", 1000, "china_telecom", "至省中心核心", f"至第{ci + 1}市核心")
            g.p2p(f, p2p, f"{cid}-up-dr", r, drr, "mpls_vpn", 1000, "china_unicom", "至灾备中心", f"至第{ci + 1}市核心")
            city_routers.append(r)
            city_meta.append((cid, cbase))
            hosts.append((f"{cid}-db1", f"{cname}第{ci + 1}市数据库服务器", cid, "database", "postgresql", cbase, 10, r))
            hosts.append((f"{cid}-sw1", f"{cname}第{ci + 1}市接入交换机", cid, "switch", "", cbase, 2, r))

        pending: list = []  # county devices are emitted after the city routers got all their ports
        for ci, (cid, cbase) in enumerate(city_meta):
            n = city_of[ci]
            ksize = _sizes(n, csize - 256, COUNTY_SIZES, f"counties in city {cid}")
            plen = 33 - ksize.bit_length()
            for ki in range(n):
                kid = f"{cid}k{ki + 1:02d}"
                kbase = cbase + 256 + ki * ksize
                others = [j for j in range(n_city) if j != ci]
                roll = rng.random()
                dual = bool(others) and roll < DUAL_SHARE
                planned = bool(others) and not dual and roll > 1 - PLANNED_SHARE
                kname = f"{cname}第{ci + 1}市第{ki + 1}县"
                g.site(f, kid, f"{kname}社会保险经办中心", "county", cid, _net(kbase, ksize),
                       "    homing: dual" if dual else "")
                g.counts["counties"] += 1
                g.counts["sites"] += 1
                g.counts["dual_homed"] += dual
                kr = _Router(f"{kid}-r1", _pick(rng, COUNTY_ROUTERS))
                kr.port(f"{_ip(kbase, 1)}/{plen}", "区县局域网")
                kr.lan_prefix = plen
                home = city_routers[ci]
                g.p2p(f, p2p, f"{kid}-up1", kr, home, "dedicated_line", 100, "china_telecom", "至地市核心", f"至{kname}")
                if dual or planned:
                    oj = rng.choice(others)
                    other = city_routers[oj]
                    if dual:
                        g.p2p(f, p2p, f"{kid}-up2", kr, other, "mpls_vpn", 100, "china_unicom", "至第二地市核心", f"至{kname}")
                    else:
                        lp = kr.port(None, "至第二地市核心（新建）")
                        hp = other.port(None, f"至{kname}（新建）")
                        g.link(f, f"{kid}-up2", (kr.id, lp), (other.id, hp), "mpls_vpn", 100, "china_unicom", "planned")
                pending.append((kr, f"{kname}路由器", kid, _ip(mg.take(), 0), _ip(loop.take(), 0),
                                rng.random() < LEGACY_V2C))
                server_os = _pick(rng, SERVER_OS)
                hosts.append((f"{kid}-sw1", f"{kname}接入交换机", kid, "switch", "", kbase, 2, kr))
                hosts.append((f"{kid}-srv1", f"{kname}业务服务器", kid, "server", "", kbase, 10, kr, server_os))
                if rng.random() < DATABASE_SHARE:
                    hosts.append((f"{kid}-db1", f"{kname}数据库服务器", kid, "database", "mariadb", kbase, 11, kr, server_os))

        # routers (ports are complete now), then the hosts on their LANs
        g.router(f, pr, f"{cname}省中心核心路由器", py, _ip(mg.take(), 0), _ip(loop.take(), 0))
        g.router(f, drr, f"{cname}灾备中心路由器", dr, _ip(mg.take(), 0), _ip(loop.take(), 0))
        for ci, r in enumerate(city_routers):
            g.router(f, r, f"{cname}第{ci + 1}市核心路由器", city_meta[ci][0], _ip(mg.take(), 0), _ip(loop.take(), 0))
        for kr, name, kid, mgmt, lo, v2c in pending:
            g.router(f, kr, name, kid, mgmt, lo, v2c=v2c)
        for h in hosts:
            did, name, site, role, services, lan, host, r = h[:8]
            if len(h) > 8:
                platform = h[8]
            elif role == "switch":  # access switches come from the router's vendor where it makes switches
                platform = r.platform if r.platform in ("huawei_vrp", "hp_comware") else "huawei_vrp"
            else:
                platform = "debian"
            g.lan_host(f, r, lan, r.lan_prefix, host, did, name, site, role, platform, _ip(mg.take(), 0), services)
        files[f"{py}.yml"] = f.text()

    # ministry devices last: bu-r1/bu-r2 have a port per province now
    g.router(mfile, bu_r1, "部中心核心路由器1", "bu", _ip(mgmt0, 11), "10.0.254.1")
    g.router(mfile, bu_r2, "部中心核心路由器2", "bu", _ip(mgmt0, 12), "10.0.254.2")
    g.link(mfile, "bu-lan-r2", ("bu-r2", "eth0"), ("bu-r1", "eth0"), "lan", 10000)
    g.lan_host(mfile, bu_r1, lan0, 24, 10, "bu-srv1", "部中心业务服务器", "bu", "server", "debian", _ip(mgmt0, 21))
    g.lan_host(mfile, bu_r1, lan0, 24, 20, "bu-mon1", "部中心监控主机", "bu", "monitor", "debian", _ip(mgmt0, 22))
    files["ministry.yml"] = mfile.text()
    files["network.yml"] = _network_yml()
    return dict(sorted(files.items())), g.counts


def counts_of(provinces: int = 32, cities: int | None = NATIONAL_CITIES, counties: int | None = NATIONAL_COUNTIES,
              seed: int = 0) -> dict[str, int]:
    """The counts (sites per level, devices, links, dual-homed counties, planned links) of ``generate()``."""
    return _generate(provinces, cities, counties, seed)[1]


def write(files: dict[str, str], out: str | os.PathLike, force: bool = False) -> Path:
    """Write ``files`` as the directory ``out``, atomically: a reader sees the old directory or the
    complete new one, never a half-written one. ``out``'s parent must exist. A non-empty ``out`` is
    replaced only with ``force``. Raises FileExistsError (refusing to clobber) or OSError; nothing is
    left behind on failure."""
    target = Path(out)
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        raise FileExistsError(f"{target}: exists and is not a directory")
    if target.exists() and any(target.iterdir()) and not force:
        raise FileExistsError(f"{target}: directory is not empty; use --force to replace it")
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        for name, text in files.items():
            write_atomic(tmp / name, text)  # fsynced, like the directory
        os.chmod(tmp, 0o755)  # mkdtemp makes it 0700
        if target.exists():
            aside = tmp.with_name(tmp.name + ".old")  # unique because tmp is
            os.rename(target, aside)
            try:
                os.rename(tmp, target)
            except BaseException:
                os.rename(aside, target)  # put the old tree back
                raise
            shutil.rmtree(aside, ignore_errors=True)
        else:
            os.rename(tmp, target)
        fsync_dir(target.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target
