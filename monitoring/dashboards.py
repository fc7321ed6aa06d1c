"""Grafana dashboards (JSON model, Grafana 10+) from the inventory, written by `netops monitor generate`.

Dashboards are data: each a list of panels (key, titles 中文 + English, kind, unit, PromQL with the
placeholder ``SCOPE`` where the dashboard's matchers go), rendered by ``render``. The metric names are the
collector's (collectors/METRICS.md), the backup catalogue's and the recording rules' (rules.py); the
tests check every name against what those export. Every dashboard chooses its Prometheus through a
``datasource`` variable (default: the level's own server, provisioned by
``grafana/provisioning/datasources/netops.yml``) and filters with ``label_values`` query variables.

Inventory values reach PromQL only as ``escape.promql`` literals, and text only through ``json.dumps``
(display names become panel titles, table value mappings and legend names, never PromQL).

Files (relative to the output directory):
  grafana/dashboards/national.json             全国总览: per province, from the ministry's Prometheus
  grafana/dashboards/province-<id>.json        省级: per city and county, from the province's Prometheus
  grafana/dashboards/{device,database,backup,collector}.json   any level's Prometheus
  grafana/provisioning/datasources/netops.yml  one Prometheus datasource per monitor server
  grafana/provisioning/dashboards/netops.yml   the file provider for the dashboards above
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

import yaml

from jinbao_netops import escape
from jinbao_netops.inventory.store import Inventory

from . import rules

SCHEMA_VERSION = 39           # Grafana 10.x
ALL = ".*"                    # a query variable's "All": every value, and series without the label
DASHBOARD_DIR = "/var/lib/grafana/dashboards/netops"  # where the provider reads them (README: import)
LINK_END, UTIL = rules.LINK_END_INFO, rules.UTIL
RATE = "[5m]"                 # the window of every rate, as in the recording rules
_SITES = ("city", "county", "site")


@dataclass(frozen=True)
class Panel:
    key: str                  # stable English identifier (the lab test names panels by it)
    zh: str
    en: str
    kind: str                 # stat | timeseries | table
    targets: tuple            # (expr, legend 中文 English) pairs; SCOPE stands for the dashboard's matchers
    unit: str = "short"
    width: int = 6
    mappings: dict = field(default_factory=dict)   # value → text (e.g. ifOperStatus codes)
    max: float | None = None  # a ratio's scale (1), else automatic
    names: bool = False       # show inventory display names for the ids in it (legends, table cells)


@dataclass(frozen=True)
class Variable:
    name: str
    zh: str
    en: str
    metric: str               # label_values(metric{matchers}, name)
    depends: tuple = ()       # earlier variables narrowing it


def _stat(key, zh, en, *targets, **kw) -> Panel:
    return Panel(key, zh, en, "stat", targets, **kw)


def _series(key, zh, en, *targets, **kw) -> Panel:
    return Panel(key, zh, en, "timeseries", targets, **{"width": 12, **kw})


def _table(key, zh, en, *targets, **kw) -> Panel:
    return Panel(key, zh, en, "table", targets, **{"width": 24, **kw})


def _by(labels, expr: str) -> str:
    return f"sum by ({', '.join(labels)}) ({expr})"


_LINK_DOWN = f"(netops_interface_oper_status{{SCOPE}} != bool 1) * on (device, interface) group_left () {LINK_END}"
_LINK_UTIL = f"{UTIL}{{SCOPE}} * on (device, interface) group_left (link) {LINK_END}"
_BACKUP_AGE = "time() - netops_backup_last_success_timestamp_seconds{SCOPE}"
OPER_STATUS = {"1": "up 正常", "2": "down 中断", "3": "testing 测试", "4": "unknown 未知", "5": "dormant 休眠",
               "6": "notPresent 不存在", "7": "lowerLayerDown 下层中断"}

NATIONAL = [
    _stat("devices-up", "设备在线", "Devices up", ("sum(province:netops_snmp_up:sum{SCOPE})", "在线 up"),
          ("sum(province:netops_snmp_up:count{SCOPE})", "总数 total")),
    _stat("link-ends-down", "链路端口中断", "Link ends down",
          ("sum(province:netops_link_end:count{SCOPE}) - sum(province:netops_link_end_up:sum{SCOPE})", "中断 down")),
    _stat("peak-utilisation", "最高链路利用率", "Peak link utilisation",
          ("max(province:netops_interface_utilisation:max{SCOPE})", "利用率 utilisation"), unit="percentunit", max=1),
    _stat("alerts-firing", "告警", "Alerts firing", ("sum(province:alerts_firing:count{SCOPE}) or vector(0)", "告警 alerts")),
    _table("provinces", "各省概况", "Provinces",
           ("province:netops_snmp_up:sum{SCOPE}", "设备在线 devices up"),
           ("province:netops_snmp_up:count{SCOPE}", "设备总数 devices"),
           ("province:netops_link_end:count{SCOPE} - province:netops_link_end_up:sum{SCOPE}", "链路端口中断 link ends down"),
           ("province:netops_interface_utilisation:max{SCOPE}", "最高利用率 peak utilisation"),
           ("province:netops_db_up:sum{SCOPE}", "数据库在线 databases up"),
           ("province:netops_db_up:count{SCOPE}", "数据库总数 databases"), names=True),
    _series("devices-up-ratio", "设备在线率", "Devices up, share",
            ("province:netops_snmp_up:sum{SCOPE} / province:netops_snmp_up:count{SCOPE}", "{{province}}"),
            unit="percentunit", max=1, names=True),
    _series("saturation", "最高链路利用率", "Peak link utilisation",
            ("province:netops_interface_utilisation:max{SCOPE}", "{{province}}"), unit="percentunit", max=1, names=True),
    _series("federation-up", "省监控连通", "Province monitoring reachable", ('up{job="federate", SCOPE}', "{{province}}"),
            max=1, names=True),
    _series("backup-age", "最久未备份", "Oldest successful backup",
            ("province:netops_backup_age_seconds:max{SCOPE}", "{{province}}"), unit="s", names=True),
]

PROVINCE = [
    _stat("devices-up", "设备在线", "Devices up", ("sum(netops_snmp_up{SCOPE})", "在线 up"),
          ("count(netops_snmp_up{SCOPE})", "总数 total")),
    _stat("link-ends-down", "链路端口中断", "Link ends down", (f"sum({_LINK_DOWN})", "中断 down")),
    _stat("peak-utilisation", "最高链路利用率", "Peak link utilisation", (f"max({_LINK_UTIL})", "利用率 utilisation"),
          unit="percentunit", max=1),
    _stat("alerts-firing", "告警", "Alerts firing", ('count(ALERTS{alertstate="firing", SCOPE}) or vector(0)', "告警 alerts")),
    _table("sites", "市县概况", "Cities and counties",
           (_by(_SITES, "netops_snmp_up{SCOPE}"), "设备在线 devices up"),
           (f"count by ({', '.join(_SITES)}) (netops_snmp_up{{SCOPE}})", "设备总数 devices"),
           (_by(_SITES, _LINK_DOWN), "链路端口中断 link ends down"),
           (f"max by ({', '.join(_SITES)}) ({_LINK_UTIL})", "最高利用率 peak utilisation"),
           (_by(_SITES, "netops_db_up{SCOPE}"), "数据库在线 databases up"), names=True),
    _series("devices-up-ratio", "设备在线率", "Devices up, share",
            ("sum by (site) (netops_snmp_up{SCOPE}) / count by (site) (netops_snmp_up{SCOPE})", "{{site}}"),
            unit="percentunit", max=1, names=True),
    _series("top-links", "利用率最高的链路", "Busiest links", (f"topk(10, {_LINK_UTIL})", "{{link}} {{device}} {{interface}} {{direction}}"),
            unit="percentunit", max=1),
    _table("alerts", "告警", "Alerts firing", ('count by (site, device, alertname, severity) (ALERTS{alertstate="firing", SCOPE})',
                                              "告警 alerts"), names=True),
    _series("backup-age", "最久未备份", "Oldest successful backup", (f"max by (site) ({_BACKUP_AGE})", "{{site}}"),
            unit="s", names=True),
]

DEVICE = [
    _stat("snmp-up", "SNMP 在线", "SNMP up", ("netops_snmp_up{SCOPE}", "{{device}}"), mappings={"0": "down 无响应", "1": "up 在线"}),
    _stat("uptime", "运行时间", "Uptime", ("netops_device_uptime_seconds{SCOPE}", "{{device}}"), unit="s"),
    _stat("fans", "风扇", "Fans", ("min by (device) (netops_device_fan_ok{SCOPE})", "{{device}}"),
          mappings={"0": "fault 故障", "1": "ok 正常"}),
    _stat("power", "电源", "Power supplies", ("min by (device) (netops_device_power_supply_ok{SCOPE})", "{{device}}"),
          mappings={"0": "fault 故障", "1": "ok 正常"}),
    _series("cpu", "CPU 利用率", "CPU utilisation", ("netops_device_cpu_utilization_ratio{SCOPE}", "{{device}}"),
            unit="percentunit", max=1),
    _series("memory", "内存利用率", "Memory utilisation", ("netops_device_memory_utilization_ratio{SCOPE}", "{{device}}"),
            unit="percentunit", max=1),
    _series("temperature", "温度", "Temperature", ("netops_device_temperature_celsius{SCOPE}", "{{device}} {{sensor}}"), unit="celsius"),
    _series("optics", "光模块收发光功率", "Optical power",
            ("netops_device_optical_rx_power_dbm{SCOPE}", "{{device}} {{sensor}} 收 rx"),
            ("netops_device_optical_tx_power_dbm{SCOPE}", "{{device}} {{sensor}} 发 tx"), unit="dBm"),
    _series("traffic", "接口流量", "Interface traffic",
            (f"rate(netops_interface_in_bytes_total{{SCOPE}}{RATE}) * 8", "{{device}} {{interface}} 入 in"),
            (f"rate(netops_interface_out_bytes_total{{SCOPE}}{RATE}) * 8", "{{device}} {{interface}} 出 out"), unit="bps"),
    _series("utilisation", "接口利用率", "Interface utilisation", (f"{UTIL}{{SCOPE}}", "{{device}} {{interface}} {{direction}}"),
            unit="percentunit", max=1),
    _series("errors", "接口错包与丢包", "Interface errors and discards",
            *((f"rate(netops_interface_{d}_{what}_total{{SCOPE}}{RATE})", f"{{{{device}}}} {{{{interface}}}} {zh} {d} {what}")
              for what, zh in (("errors", "错包"), ("discards", "丢包")) for d in ("in", "out")), unit="pps"),
    _table("interfaces", "接口状态", "Interface status",
           ("netops_interface_oper_status{SCOPE} * on (device, ifindex) group_left (alias) netops_interface_info{SCOPE}",
            "运行状态 oper status"),
           ("netops_interface_admin_status{SCOPE}", "管理状态 admin status"), mappings=OPER_STATUS),
    _series("storage", "存储使用率", "Storage used",
            ("netops_storage_used_bytes{SCOPE} / (netops_storage_size_bytes{SCOPE} > 0)", "{{device}} {{storage}}"),
            unit="percentunit", max=1),
    _series("root-filesystem", "根文件系统使用率", "Root file system used",
            ("netops_host_root_filesystem_used_ratio{SCOPE}", "{{device}}"), unit="percentunit", max=1),
    _series("load", "系统负载", "Load average (1 min)", ("netops_host_load1{SCOPE}", "{{device}}")),
    _series("ospf", "OSPF 邻居", "OSPF neighbours", ("netops_ospf_neighbors{SCOPE}", "{{device}} {{state}}")),
    _stat("failed-units", "失败的服务", "Failed systemd units", ("sum(netops_host_failed_units{SCOPE})", "失败 failed")),
    _stat("tables-incomplete", "未完整应答的 SNMP 表", "SNMP tables not answered in full",
          ("sum(1 - netops_snmp_table_up{SCOPE})", "表 tables")),
]

DATABASE = [
    _stat("up", "数据库在线", "Databases up", ("netops_db_up{SCOPE}", "{{device}} {{service}}"),
          mappings={"0": "down 不可用", "1": "up 可用"}, width=12),
    _series("replication-lag", "复制延迟", "Replication lag", ("netops_db_replication_lag_seconds{SCOPE}", "{{device}} {{service}}"),
            unit="s"),
    _series("connections", "连接数占比", "Connections used",
            ("netops_pg_connections{SCOPE} / netops_db_max_connections{SCOPE}", "{{device}} PostgreSQL"),
            ("netops_mysql_threads_connected{SCOPE} / netops_db_max_connections{SCOPE}", "{{device}} MariaDB"),
            unit="percentunit", max=1),
    _series("pg-transactions", "PostgreSQL 事务", "PostgreSQL transactions",
            (f"rate(netops_pg_xact_commits_total{{SCOPE}}{RATE})", "{{device}} 提交 commits"),
            (f"rate(netops_pg_xact_rollbacks_total{{SCOPE}}{RATE})", "{{device}} 回滚 rollbacks"), unit="ops"),
    _series("pg-longest-transaction", "PostgreSQL 最长事务", "PostgreSQL longest transaction",
            ("netops_pg_longest_transaction_seconds{SCOPE}", "{{device}}"), unit="s"),
    _series("pg-size", "PostgreSQL 数据库大小", "PostgreSQL database size",
            ("netops_pg_database_size_bytes{SCOPE}", "{{device}} {{database}}"), unit="bytes"),
    _table("pg-replication", "PostgreSQL 主备", "PostgreSQL primary and standby",
           ("netops_pg_in_recovery{SCOPE}", "备库 standby"), ("netops_pg_replicas{SCOPE}", "备库数 standbys"),
           ("increase(netops_pg_deadlocks_total{SCOPE}[1h])", "死锁/时 deadlocks per hour")),
    _series("mysql-questions", "MariaDB 语句", "MariaDB statements",
            (f"rate(netops_mysql_questions_total{{SCOPE}}{RATE})", "{{device}} 语句 statements"),
            ("netops_mysql_threads_running{SCOPE}", "{{device}} 运行线程 threads running"), unit="ops"),
    _series("mysql-buffer-pool", "MariaDB 缓冲池空闲", "MariaDB buffer pool free",
            ("netops_mysql_innodb_buffer_pool_free_pages{SCOPE} / (netops_mysql_innodb_buffer_pool_pages{SCOPE} > 0)", "{{device}}"),
            unit="percentunit", max=1),
    _series("mysql-locks", "MariaDB 行锁等待与死锁", "MariaDB row lock waits and deadlocks",
            (f"rate(netops_mysql_innodb_row_lock_waits_total{{SCOPE}}{RATE})", "{{device}} 行锁等待 lock waits"),
            (f"rate(netops_mysql_innodb_deadlocks_total{{SCOPE}}{RATE})", "{{device}} 死锁 deadlocks"), unit="ops"),
]

BACKUP = [
    _stat("exporter-up", "备份目录指标", "Backup catalogue exporter", ('up{job="netops-backup"}', "{{instance}}"),
          mappings={"0": "down 不可达", "1": "up 正常"}),
    _stat("stale", "超时未备份资产", "Assets without a recent backup",
          (f"count({_BACKUP_AGE} > {rules.BACKUP_STALE_S}) or vector(0)", "资产 assets")),
    _stat("not-321", "不满足 3-2-1 的资产", "Assets not 3-2-1", ("count(netops_backup_321_ok{SCOPE} == 0) or vector(0)", "资产 assets")),
    _stat("verify-failed", "校验失败", "Verification failed", ("count(netops_backup_verify_ok{SCOPE} == 0) or vector(0)", "资产 assets")),
    _series("age", "距上次成功备份", "Since the last successful backup", (_BACKUP_AGE, "{{asset}}"), unit="s"),
    _series("verify-age", "距上次校验", "Since the last verification",
            ("time() - netops_backup_last_verify_timestamp_seconds{SCOPE}", "{{asset}}"), unit="s"),
    _table("assets", "备份资产", "Assets",
           ("netops_backup_copies{SCOPE}", "副本 copies"), ("netops_backup_321_ok{SCOPE}", "3-2-1"),
           ("netops_backup_verify_ok{SCOPE}", "校验 verified"), ("netops_backup_size_bytes{SCOPE}", "大小 size bytes"),
           ("netops_backup_duration_seconds{SCOPE}", "耗时 duration s")),
]

COLLECTOR = [
    _stat("collector-up", "采集器在线", "Collectors up", ('up{job="netops-collect", SCOPE}', "{{monitor}}"),
          mappings={"0": "down 不可达", "1": "up 正常"}),
    _stat("failed-targets", "失败目标", "Failed targets", ("netops_collect_round_failed_targets{SCOPE}", "{{monitor}}")),
    _stat("snmp-down", "SNMP 无响应设备", "Devices not answering SNMP", ("count(netops_snmp_up{SCOPE} == 0) or vector(0)", "设备 devices")),
    _stat("ssh-down", "SSH 采集失败设备", "Devices failing SSH collection", ("count(netops_ssh_up{SCOPE} == 0) or vector(0)", "设备 devices")),
    _series("round", "采集轮次", "Collection rounds",
            ("netops_collect_round_duration_seconds{SCOPE}", "{{monitor}} 耗时 duration"),
            ("time() - netops_collect_round_timestamp_seconds{SCOPE}", "{{monitor}} 距上轮 age"),
            ('scrape_duration_seconds{job="netops-collect", SCOPE}', "{{monitor}} 抓取 scrape"), unit="s"),
    _series("slowest", "最慢的设备", "Slowest devices", ("topk(10, netops_snmp_scrape_duration_seconds{SCOPE})", "{{device}}"), unit="s"),
    _series("snmp-requests", "SNMP 请求", "SNMP requests",
            *((f"sum by (monitor) (rate(netops_snmp_{k}_total{{SCOPE}}{RATE}))", f"{{{{monitor}}}} {zh} {k}")
              for k, zh in (("pdus", "请求"), ("retries", "重试"), ("timeouts", "超时"), ("varbinds", "变量"))), unit="ops"),
    _series("dropped", "丢弃的 SNMP 应答", "SNMP answers dropped",
            (f"sum by (monitor, reason) (rate(netops_snmp_dropped_packets_total{{SCOPE}}{RATE}))", "{{monitor}} {{reason}}"), unit="pps"),
    _series("tables", "未完整应答的 SNMP 表", "SNMP tables not answered in full",
            ("sum by (table) (1 - netops_snmp_table_up{SCOPE})", "{{table}}")),
    # the trap receivers beside the collectors (collectors/traps.py)
    _stat("traps-up", "trap 接收器在线", "Trap receivers up", ('up{job="netops-traps", SCOPE}', "{{monitor}}"),
          mappings={"0": "down 不可达", "1": "up 正常"}),
    _series("traps", "收到的 trap 与告警", "Traps received and alerts they raised",
            (f"sum by (monitor, version) (rate(netops_trap_received_total{{SCOPE}}{RATE}))", "{{monitor}} 收到 {{version}}"),
            (f"sum by (monitor, action) (rate(netops_trap_alerts_total{{SCOPE}}{RATE}))", "{{monitor}} 告警 {{action}}"), unit="pps"),
    _series("traps-dropped", "丢弃的 trap", "Traps dropped",
            (f"sum by (monitor, reason) (rate(netops_trap_dropped_total{{SCOPE}}{RATE}))", "{{monitor}} {{reason}}"),
            (f"sum by (monitor) (rate(netops_trap_post_failures_total{{SCOPE}}{RATE}))", "{{monitor}} 推送失败 post failures"),
            unit="pps"),
]

_PROVINCE = Variable("province", "省", "Province", "netops_snmp_up")
_SITE = Variable("site", "站点", "Site", "netops_snmp_up", ("province",))
_DEVICE = Variable("device", "设备", "Device", "netops_snmp_up", ("province", "site"))


@dataclass(frozen=True)
class Board:
    kind: str                 # file name and uid part
    zh: str
    en: str
    panels: list
    variables: tuple
    tags: tuple = ()


def _narrowed(metric: str, *variables: Variable) -> tuple:
    return tuple(Variable(v.name, v.zh, v.en, metric, v.depends) for v in variables)


BOARDS = {
    "national": Board("national", "全国总览", "National overview", NATIONAL,
                      (Variable("province", "省", "Province", "province:netops_snmp_up:count"),), ("ministry",)),
    "province": Board("province", "省级视图", "Province", PROVINCE, (_SITE,), ("province",)),
    "device": Board("device", "设备", "Device", DEVICE, (_PROVINCE, _SITE, _DEVICE), ("device",)),
    "database": Board("database", "数据库", "Databases", DATABASE, _narrowed("netops_db_up", _PROVINCE, _SITE, _DEVICE), ("database",)),
    "backup": Board("backup", "备份时效", "Backup freshness", BACKUP,
                    _narrowed("netops_backup_last_success_timestamp_seconds", _PROVINCE, _SITE, _DEVICE), ("backup",)),
    "collector": Board("collector", "采集器自监控", "Collector self-metrics", COLLECTOR, (_PROVINCE,), ("collector",)),
}


# --- rendering ------------------------------------------------------------------------------------

def uid(*parts: str) -> str:
    """A stable Grafana uid (at most 40 characters) for a scope: its parts joined, or, when too long,
    their start and a digest of the whole."""
    whole = "-".join(parts)
    return whole if len(whole) <= 40 else f"{whole[:27]}-{hashlib.sha256(whole.encode()).hexdigest()[:12]}"


def _matchers(fixed: dict[str, str], variables) -> str:
    return ", ".join([f"{k}={escape.promql(v)}" for k, v in fixed.items()] + [f'{v.name}=~"${v.name}"' for v in variables])


def _variable(v: Variable, fixed: dict[str, str], earlier) -> dict:
    narrow = _matchers(fixed, [e for e in earlier if e.name in v.depends])
    query = f"label_values({v.metric}{{{narrow}}}, {v.name})" if narrow else f"label_values({v.metric}, {v.name})"
    return {"type": "query", "name": v.name, "label": f"{v.zh} {v.en}", "datasource": _DS,
            "definition": query, "query": {"query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
            "refresh": 2, "sort": 1, "multi": True, "includeAll": True, "allValue": ALL, "regex": "", "hide": 0,
            "current": {"selected": True, "text": ["All"], "value": ["$__all"]}, "options": []}


_DS = {"type": "prometheus", "uid": "${datasource}"}


def _mappings(mappings: dict[str, str]) -> list[dict]:
    return [{"type": "value", "options": {k: {"text": t, "index": i} for i, (k, t) in enumerate(mappings.items())}}] if mappings else []


def _override(name: str, prop: str, value) -> dict:
    return {"matcher": {"id": "byName", "options": name}, "properties": [{"id": prop, "value": value}]}


def _panel(p: Panel, pid: int, pos: dict, scope: str, names: dict[str, str]) -> dict:
    """A panel's JSON. Inventory names: a table maps its id columns to them, a graph names a series
    whose legend is an id after them; a table's value mappings apply to its value columns only."""
    table = p.kind == "table"
    targets = [{"refId": chr(ord("A") + i), "datasource": _DS, "expr": expr.replace("SCOPE", scope),
                "legendFormat": legend, "range": p.kind == "timeseries", "instant": p.kind != "timeseries",
                **({"format": "table"} if table else {})} for i, (expr, legend) in enumerate(p.targets)]
    names = names if p.names else {}
    if table:
        overrides = ([_override(t["legendFormat"], "mappings", _mappings(p.mappings)) for t in targets] if p.mappings else [])
        overrides += [_override(col, "mappings", _mappings(names)) for col in ("province", *_SITES)] if names else []
    else:
        overrides = [_override(k, "displayName", t) for k, t in names.items()]
    defaults = {"unit": p.unit, **({"min": 0, "max": p.max} if p.max is not None else {}),
                "mappings": [] if table else _mappings(p.mappings)}
    out = {"id": pid, "type": p.kind, "title": f"{p.zh} {p.en}", "datasource": _DS, "gridPos": pos, "targets": targets,
           "fieldConfig": {"defaults": defaults, "overrides": overrides}, "options": {}}
    if table:  # one row per series: the queries' values side by side, named by their legends
        out["transformations"] = [
            {"id": "merge", "options": {}},
            {"id": "organize", "options": {"excludeByName": {"Time": True},
                                           "renameByName": {f"Value #{t['refId']}": t["legendFormat"] for t in targets}}}]
    elif p.kind == "stat":
        out["options"] = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                          "colorMode": "value", "graphMode": "none", "textMode": "value_and_name"}
    return out


def _layout(panels) -> list[dict]:
    """Left to right, a new line when a panel does not fit in the 24 columns."""
    x = y = row_h = 0
    out = []
    for p in panels:
        h = 4 if p.kind == "stat" else 8
        if x + p.width > 24:
            x, y, row_h = 0, y + row_h, 0
        out.append({"x": x, "y": y, "w": p.width, "h": h})
        x, row_h = x + p.width, max(row_h, h)
    return out


def render(inv: Inventory, board: Board, ds: tuple[str, str], *, scope_id: str | None = None,
           fixed: dict[str, str] | None = None, names: dict[str, str] | None = None, title: str | None = None) -> dict:
    """One dashboard's JSON model: ``fixed`` label values (escaped into every matcher), the board's
    query variables after them, the datasource variable defaulting to ``ds`` (its uid and name)."""
    fixed = fixed or {}
    scope = _matchers(fixed, board.variables)
    variables = [{"type": "datasource", "name": "datasource", "label": "数据源 Prometheus", "query": "prometheus",
                  "current": {"selected": True, "value": ds[0], "text": ds[1]}, "refresh": 1, "regex": "", "hide": 0,
                  "options": []}]
    variables += [_variable(v, fixed, board.variables[:i]) for i, v in enumerate(board.variables)]
    panels = [_panel(p, i + 1, pos, scope, names or {}) for i, (p, pos) in enumerate(zip(board.panels, _layout(board.panels)))]
    return {"uid": uid(inv.network.id, board.kind, *([scope_id] if scope_id else [])),
            "title": title or f"{board.zh} {board.en} · {inv.network.name}",
            "tags": ["netops", *board.tags], "schemaVersion": SCHEMA_VERSION, "version": 1, "editable": True,
            "timezone": "browser", "refresh": "30s", "time": {"from": "now-6h", "to": "now"},
            "graphTooltip": 1, "links": [], "annotations": {"list": []},
            "templating": {"list": variables}, "panels": panels}


def _label(inv: Inventory, site_id: str) -> str:
    return f"{inv.sites[site_id].name} {site_id}"


def _datasource(inv: Inventory, key: str, site_id: str) -> tuple[str, str]:
    """(uid, name) of the datasource for the Prometheus of monitor server ``key`` (at ``site_id``)."""
    return uid(inv.network.id, "prom", key), f"{inv.sites[site_id].name} Prometheus ({inv.network.id}/{key})"


def dashboards(inv: Inventory, servers: dict[str, tuple[str, str]], ministry: str) -> dict[str, tuple[str, dict]]:
    """Relative path → (the key of the monitor server whose Prometheus it reads by default, its JSON
    model). ``servers``: each monitor server's key → (its site, its Prometheus URL): the provinces',
    and ``ministry``'s."""
    ds = {key: _datasource(inv, key, site) for key, (site, _) in servers.items()}
    provinces = [k for k in servers if k != ministry]
    first = provinces[0] if provinces else ministry
    province = BOARDS["province"]
    out = {"grafana/dashboards/national.json": (ministry, render(
        inv, BOARDS["national"], ds[ministry], names={p: _label(inv, p) for p in provinces}))}
    for p in provinces:
        below = {s: _label(inv, s) for s in inv.sites if s == p or p in {a.id for a in inv.ancestors(s)}}
        out[f"grafana/dashboards/province-{p}.json"] = (p, render(
            inv, province, ds[p], scope_id=p, fixed={"province": p}, names=below,
            title=f"{inv.sites[p].name} {p} · {province.zh} {province.en}"))
    for kind in ("device", "database", "backup", "collector"):
        out[f"grafana/dashboards/{kind}.json"] = (first, render(inv, BOARDS[kind], ds[first]))
    return out


def files(inv: Inventory, servers: dict[str, tuple[str, str]], ministry: str) -> dict[str, str]:
    """Relative path → text: the dashboards, and Grafana's provisioning of one Prometheus datasource per
    monitor server and of the dashboards. ``servers``: key → (site, Prometheus URL)."""
    out = {rel: json.dumps(model, ensure_ascii=False, indent=2) + "\n"
           for rel, (_, model) in dashboards(inv, servers, ministry).items()}
    sources = []
    for key, (site, url) in servers.items():
        ds_uid, name = _datasource(inv, key, site)
        sources.append({"name": name, "uid": ds_uid, "type": "prometheus", "access": "proxy", "url": url,
                        "isDefault": False, "editable": False, "jsonData": {"httpMethod": "POST"}})
    out["grafana/provisioning/datasources/netops.yml"] = _yaml({"apiVersion": 1, "datasources": sources})
    out["grafana/provisioning/dashboards/netops.yml"] = _yaml({"apiVersion": 1, "providers": [
        {"name": f"netops-{inv.network.id}", "folder": inv.network.name, "type": "file", "disableDeletion": False,
         "allowUiUpdates": False, "options": {"path": DASHBOARD_DIR}}]})
    return out


def _yaml(data) -> str:
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=200)
