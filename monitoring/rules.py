"""Alert and recording rules as data. The metric names come from the collector (collectors/METRICS.md)
and the backup catalogue (backup/catalogue.py); ``generate`` writes them as Prometheus rule files.

Every alert carries ``severity``, ``level`` (the level of the site where the fault is: a device
alert copies the series' ``level`` label, an aggregate alert names its level), ``summary_zh``,
``summary_en`` and ``runbook``. Aggregates federated to the ministry follow ``level:metric:operation``.
"""
from __future__ import annotations

from jinbao_netops.inventory.model import LEVEL_NAMES

SERIES_LEVEL = "{{ $labels.level }}"
BACKUP_STALE_S = 26 * 3600  # an asset without a successful backup for longer is stale (alert, dashboards)  # a device alert is at the level of the device's site

# the province's view of the inventory, joined to the collector's series (written per province by generate)
LINK_END_INFO = "inventory:netops_link_end:info"      # labels device, interface, link, uplink
DEVICE_INFO = "inventory:netops_device:info"          # labels device, role
STANDBYS_INFO = "inventory:netops_db_standbys:count"  # label device (a PostgreSQL primary): its standbys (value)
SYNC_STANDBYS_INFO = "inventory:netops_db_sync_standbys:count"  # label device: its synchronous standbys (value, ≥ 1)
# labels device (a MariaDB replica), primary: the replication channels it has (value: one per primary it copies)
REPLICA_CHANNELS_INFO = "inventory:netops_mysql_replica_channels:count"
WAL_ARCHIVE_INFO = "inventory:netops_db_wal_archived:info"  # label device: its WAL is archived (backup/policy.yml)
# label device (a MariaDB server): how many read its binary log — its replicas, and its archive (backup/binlog.py)
BINLOG_READERS_INFO = "inventory:netops_mysql_binlog_readers:count"

UTIL = "interface:netops_interface_utilisation:ratio"

# what every Prometheus that scrapes a collector records (a province's, and the ministry's for its own devices)
DEVICE_RECORDS = [
    # per interface and direction: bits/s over the speed (a device whose speed is 0 is left out)
    (UTIL, ('label_replace(rate(netops_interface_in_bytes_total[5m]) * 8 / (netops_interface_speed_bits_per_second > 0), "direction", "in", "", "")'
            ' or label_replace(rate(netops_interface_out_bytes_total[5m]) * 8 / (netops_interface_speed_bits_per_second > 0), "direction", "out", "", "")')),
]

PROVINCE_RECORDS = [
    *DEVICE_RECORDS,
    # the aggregates the ministry federates (match[] = {__name__=~"province:.*"})
    ("province:netops_snmp_up:sum", "sum by (province) (netops_snmp_up)"),
    ("province:netops_snmp_up:count", "count by (province) (netops_snmp_up)"),
    ("province:netops_link_end_up:sum",
     f"sum by (province) ((netops_interface_oper_status == bool 1) * on (device, interface) group_left () {LINK_END_INFO})"),
    ("province:netops_link_end:count",
     f"count by (province) (netops_interface_oper_status * on (device, interface) group_left () {LINK_END_INFO})"),
    ("province:netops_interface_utilisation:max",
     f"max by (province) ({UTIL} * on (device, interface) group_left () {LINK_END_INFO})"),
    ("province:netops_db_up:sum", "sum by (province) (netops_db_up)"),
    ("province:netops_db_up:count", "count by (province) (netops_db_up)"),
    ("province:netops_db_replication_lag_seconds:max", "max by (province) (netops_db_replication_lag_seconds)"),
    ("province:netops_backup_age_seconds:max", "max by (province) (time() - netops_backup_last_success_timestamp_seconds)"),
    ("province:alerts_firing:count", 'count by (province, severity) (ALERTS{alertstate="firing"})'),
]


def _alert(name, expr, for_, severity, level, zh, en, runbook, **labels):
    return {"alert": name, "expr": expr, "for": for_,
            "labels": {"severity": severity, "level": level, **labels},
            "annotations": {"summary_zh": zh, "summary_en": en, "runbook": runbook}}


def link_down(link: str = "") -> str:
    """The ends of links that are down (oper down where admin up), joined to the inventory's link ends; ``link``: a
    PromQL string literal (``escape.promql``) to keep one link's ends only."""
    return (f"(netops_interface_oper_status != 1 and on (device, interface) netops_interface_admin_status == 1)"
            f" * on (device, interface) group_left (link, uplink) {LINK_END_INFO}" + (f"{{link={link}}}" if link else ""))


LINK_DOWN_EXPR = link_down()

# alerts about the devices a collector covers and about the collector itself (a province's Prometheus
# and the ministry's, for its own devices)
DEVICE_ALERTS = [
    _alert("NodeDown", f"(netops_snmp_up == 0) * on (device) group_left (role) {DEVICE_INFO}", "2m", "critical", SERIES_LEVEL,
           "设备 {{ $labels.device }}（{{ $labels.site }}）无响应", "Device {{ $labels.device }} at {{ $labels.site }} does not answer SNMP",
           "检查设备电源与管理口 / check power and the management port: netops lab exec {{ $labels.device }} -- systemctl status snmpd"),
    _alert("LinkDown", LINK_DOWN_EXPR, "1m", "critical", SERIES_LEVEL,
           "链路 {{ $labels.link }} 中断（{{ $labels.device }} {{ $labels.interface }}）",
           "Link {{ $labels.link }} is down at {{ $labels.device }} {{ $labels.interface }}",
           "核对线路与运营商 / check the line and its carrier: netops topology impact {{ $labels.link }}"),
    _alert("LinkUtilisationHigh",
           f"{UTIL} * on (device, interface) group_left (link) {LINK_END_INFO} > 0.8", "10m", "warning", SERIES_LEVEL,
           "链路 {{ $labels.link }} 利用率超过 80%（{{ $labels.direction }}）",
           "Link {{ $labels.link }} above 80 % utilisation ({{ $labels.direction }}) for 10 minutes",
           "查看流量来源，考虑扩容 / find the traffic source, plan an upgrade: netops collect once --interfaces --scope {{ $labels.site }}"),
    _alert("InterfaceErrorsRising",
           "increase(netops_interface_in_errors_total[10m]) + increase(netops_interface_out_errors_total[10m]) > 10",
           "5m", "warning", SERIES_LEVEL,
           "接口 {{ $labels.device }} {{ $labels.interface }} 错包增加", "Errors rising on {{ $labels.device }} {{ $labels.interface }}",
           "检查光模块、线缆与双工 / check optics, cabling and duplex"),
    _alert("DatabaseDown", "netops_db_up == 0", "1m", "critical", SERIES_LEVEL,
           "数据库 {{ $labels.service }} 在 {{ $labels.device }} 不可用", "Database {{ $labels.service }} on {{ $labels.device }} is down",
           "检查服务与磁盘 / check the service and disk: systemctl status {{ $labels.service }}"),
    _alert("ReplicationLag", "netops_db_replication_lag_seconds > 300", "5m", "warning", SERIES_LEVEL,
           "{{ $labels.device }} 数据库复制延迟 {{ $value | humanizeDuration }}",
           "Replication lag {{ $value | humanizeDuration }} on {{ $labels.device }}",
           "检查主备链路与备库负载 / check the primary-standby path and standby load"),
    # a primary streams to fewer standbys than the inventory gives it: the DR copy is not being kept
    _alert("ReplicationBroken", f"netops_pg_replicas < on (device) group_left () {STANDBYS_INFO}", "1m", "critical", SERIES_LEVEL,
           "{{ $labels.device }} 的灾备复制中断（在线备库 {{ $value }}）",
           "DR replication from {{ $labels.device }} is broken ({{ $value }} standbys streaming)",
           "查看复制状态 / check the pairs: netops dr status; then netops dr setup --scope {{ $labels.device }}"),
    # a MariaDB replica (GTID, asynchronous) is judged by its own readings, a primary cannot see its replicas: its IO
    # or SQL thread stopped, or a channel the inventory gives it missing (RESET REPLICA ALL); the copy is not kept
    # a MariaDB primary read by fewer than its replicas and its archive: a copy (or point-in-time recovery) stops here;
    # the replica's own threads are MariaDBReplicationBroken's, this sees the archive, which has no readings of its own
    _alert("BinlogReadersMissing", f"netops_mysql_binlog_readers < on (device) group_left () {BINLOG_READERS_INFO}", "2m",
           "critical", SERIES_LEVEL,
           "{{ $labels.device }} 的二进制日志读取方不足（归档或备库未连接，读取方 {{ $value }}）",
           "Fewer readers of {{ $labels.device }}'s binary log than its archive and replicas ({{ $value }} connected): "
           "point-in-time recovery or a copy stops here",
           "查看归档与复制 / check the archive and pairs: netops dr status; then netops dr setup --scope {{ $labels.device }}"),
    _alert("MariaDBReplicationBroken",
           f"(netops_mysql_replica_channels < on (device) group_left (primary) {REPLICA_CHANNELS_INFO})"
           f" or ((netops_mysql_replica_io_running == 0 or netops_mysql_replica_sql_running == 0)"
           f" * on (device) group_left (primary) {REPLICA_CHANNELS_INFO})", "1m", "critical", SERIES_LEVEL,
           "{{ $labels.primary }} → {{ $labels.device }} 的 MariaDB 灾备复制中断（IO/SQL 线程停止或复制通道缺失）",
           "MariaDB DR replication from {{ $labels.primary }} to {{ $labels.device }} is broken (IO or SQL thread "
           "stopped, or its channel missing)",
           "查看复制状态 / check the pairs: netops dr status; then netops dr setup --scope {{ $labels.device }}"),
    # every standby streams, yet the primary's commits wait for fewer of them than the inventory makes synchronous
    # (synchronous_standby_names emptied, a standby reconnected under another application_name): RPO 0 is lost
    # silently. A standby gone is ReplicationBroken's, not this one's too.
    _alert("SyncReplicationDegraded",
           f"netops_pg_sync_standbys < on (device) group_left () {SYNC_STANDBYS_INFO}"
           f" and on (device) netops_pg_replicas >= on (device) group_left () {STANDBYS_INFO}", "2m", "critical",
           SERIES_LEVEL, "{{ $labels.device }} 的同步复制已降为异步（同步备库 {{ $value }}，RPO 不再为 0）",
           "Synchronous replication from {{ $labels.device }} fell back to asynchronous ({{ $value }} synchronous "
           "standbys: RPO is no longer 0)",
           "查看 sync_state 与 synchronous_standby_names / check sync_state and synchronous_standby_names: "
           "netops dr status; then netops dr setup --scope {{ $labels.device }}"),
    # a server whose WAL the policy archives has no receiver streaming: no point-in-time recovery past this moment
    _alert("WalArchiveBroken", f"netops_pg_wal_archivers < on (device) group_left () {WAL_ARCHIVE_INFO}", "2m", "critical",
           SERIES_LEVEL, "{{ $labels.device }} 的 WAL 归档中断（时间点恢复停止于此刻）",
           "The WAL archive of {{ $labels.device }} is not receiving (point-in-time recovery stops here)",
           "查看归档 / check the archive: netops dr status; then netops dr setup --scope {{ $labels.device }}"),
    _alert("DiskNearlyFull",
           'netops_host_root_filesystem_used_ratio > 0.9'
           ' or netops_storage_used_bytes{storage=~"/.*"} / (netops_storage_size_bytes{storage=~"/.*"} > 0) > 0.9',
           "10m", "warning", SERIES_LEVEL,
           "{{ $labels.device }} 磁盘将满", "Disk nearly full on {{ $labels.device }}",
           "清理日志或扩容 / clean logs or grow the volume: df -h"),
    # the scrape job's target labels name the collector's monitor host and level (generate._monitor_jobs)
    _alert("SnmpScrapeFailing",
           'up{job="netops-collect"} == 0 or time() - netops_collect_round_timestamp_seconds > 300', "5m", "critical", SERIES_LEVEL,
           "采集器 {{ $labels.monitor }}（{{ $labels.level }}）无数据", "The collector on {{ $labels.monitor }} ({{ $labels.level }}) is not delivering",
           "检查采集器进程 / check the collector: netops monitor status"),
    _alert("TrapReceiverDown", 'up{job="netops-traps"} == 0', "5m", "critical", SERIES_LEVEL,
           "trap 接收器 {{ $labels.monitor }}（{{ $labels.level }}）无响应",
           "The SNMP trap receiver on {{ $labels.monitor }} ({{ $labels.level }}) does not answer",
           "检查 trap 接收器进程 / check the trap receiver: netops monitor status"),
    # a device that answered throughout the window yet timed out (an outage's own timeouts are NodeDown's: a device
    # back from one would otherwise warn for ten more minutes)
    _alert("SnmpTimeouts", "rate(netops_snmp_timeouts_total[10m]) > 0 and on (device) min_over_time(netops_snmp_up[10m]) == 1",
           "15m", "warning",
           SERIES_LEVEL,
           "{{ $labels.device }} SNMP 请求超时", "SNMP requests to {{ $labels.device }} are timing out",
           "检查设备 CPU 与管理链路 / check the device CPU and management path"),
]

# the province's operations service (`netops serve`, scrape job netops-serve: generate.province_config)
SERVE_ALERTS = [
    _alert("ServeDown", 'up{job="netops-serve"} == 0', "5m", "critical", "province",
           "运维服务 {{ $labels.monitor }} 停止，定时作业不再运行", "The operations service on {{ $labels.monitor }} is down: no scheduled job runs",
           "查看服务 / check the service: systemctl status jinbao-netops-serve; journalctl -u jinbao-netops-serve"),
    # a job that never succeeded is not stale here: its failed runs raise ServeJobFailing
    _alert("ServeJobStale", "netops_serve_job_last_success_timestamp_seconds > 0 and time() - netops_serve_job_last_success_timestamp_seconds"
                            " > 2 * netops_serve_job_interval_seconds", "15m", "warning", "province",
           "作业 {{ $labels.job_name }}（{{ $labels.scope }}）超过两个周期未成功",
           "Job {{ $labels.job_name }} ({{ $labels.scope }}) has not succeeded for over two intervals",
           "查看作业状态 / check the jobs: netops serve status"),
    _alert("ServeJobFailing", "netops_serve_job_failures_in_a_row > 0", "5m", "warning", "province",
           "作业 {{ $labels.job_name }}（{{ $labels.scope }}）上次运行失败", "Job {{ $labels.job_name }} ({{ $labels.scope }}): its last run failed",
           "查看作业结果与日志 / check its result and log: netops serve status; /var/lib/jinbao-netops/serve/jobs/{{ $labels.job_name }}/last.err"),
]

PROVINCE_ALERTS = [
    *DEVICE_ALERTS,
    *SERVE_ALERTS,
    _alert("BackupStale", f"time() - netops_backup_last_success_timestamp_seconds > {BACKUP_STALE_S}", "15m", "warning", "province",
           "资产 {{ $labels.asset }} 超过 26 小时未成功备份", "Asset {{ $labels.asset }} has no successful backup for over 26 hours",
           "查看备份目录与任务日志 / check the catalogue and job log: netops backup status"),
]

MINISTRY_RECORDS = [
    ("ministry:netops_snmp_up:sum", "sum(province:netops_snmp_up:sum)"),
    ("ministry:netops_snmp_up:count", "sum(province:netops_snmp_up:count)"),
    ("ministry:netops_link_end_up:sum", "sum(province:netops_link_end_up:sum)"),
    ("ministry:netops_link_end:count", "sum(province:netops_link_end:count)"),
]

MINISTRY_ALERTS = [
    # one alert per province cut off, instead of every device behind it
    _alert("ProvinceUnreachable", 'up{job="federate"} == 0', "2m", "critical", "ministry",
           "省中心 {{ $labels.province }} 监控失联", "Province {{ $labels.province }} is cut off from the ministry's monitoring",
           "检查部-省骨干链路与省监控主机 / check the ministry-province backbone and the province's monitor host"),
    _alert("ProvinceNodesDown",
           "(province:netops_snmp_up:count - province:netops_snmp_up:sum) / province:netops_snmp_up:count > 0.2", "5m",
           "critical", "ministry",
           "{{ $labels.province }} 超过 20% 设备无响应", "More than 20 % of devices in {{ $labels.province }} do not answer",
           "联系省中心值班 / call the province's NOC"),
]


# --- root causes: one pair of rules per failure unit, written by generate.impact_rules from the topology's impact
# analysis; generate.alertmanager_config holds back exactly the consequences they name
SITES_CUT_OFF, REDUNDANCY_LOST = "SitesCutOff", "RedundancyLost"
# no longer than any alert a root cause holds back (LinkDown's 1m; NodeDown's 2m): the root cause reaches Alertmanager
# with its consequences, before their first notification (group_wait), so none of them pages and then loses its
# resolved notification while held back; it keeps firing as long again after the unit returns, while the sites behind
# it converge and their alerts resolve unseen
ROOT_CAUSE_FOR = "1m"
SHOWN = 10  # site ids per level in a summary (the labels carry them all)


def _unit(kind: str, ident: str) -> tuple[str, str]:
    return ({"device": "设备", "link": "链路"}[kind] + f" {ident}", f"{kind} {ident}")


def _sites(by_level: dict[str, list[str]], lang: int) -> str:
    """'县 county huadu, …' per level, senior first: the ids (pattern-checked by the inventory: no template text)."""
    parts = []
    for lv, (zh, en) in LEVEL_NAMES.items():
        ids = by_level.get(lv.value, [])
        if ids:
            more = f" +{len(ids) - SHOWN}" if len(ids) > SHOWN else ""
            parts.append(f"{(zh, en)[lang]} {', '.join(ids[:SHOWN])}{more}")
    return ("；" if lang == 0 else "; ").join(parts)


def _where(labels: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in labels.items() if k != "level"}


def sites_cut_off(expr: str, kind: str, ident: str, by_level: dict[str, list[str]], labels: dict[str, str]) -> dict:
    """The root-cause alert of a device or link whose failure cuts sites off from the ministry: firing while ``expr``
    (the unit is down), labelled ``cut_off_<level>`` with those sites' ids, each level's comma-separated."""
    zh, en = _unit(kind, ident)
    n = sum(map(len, by_level.values()))
    rule = _alert(SITES_CUT_OFF, expr, ROOT_CAUSE_FOR, "critical", labels.get("level", SERIES_LEVEL),
                  f"{zh} 故障：{n} 个站点与部中心失联（{_sites(by_level, 0)}）",
                  f"{en} failed: {n} site(s) cut off from the ministry ({_sites(by_level, 1)})",
                  f"先恢复{zh}，受影响站点的告警已抑制 / restore it first, the cut-off sites' alerts are held back: "
                  f"netops topology impact --fail {ident}",
                  **_where(labels), **{f"cut_off_{lv}": ",".join(ids) for lv, ids in by_level.items()})
    return {**rule, "keep_firing_for": ROOT_CAUSE_FOR}


def redundancy_lost(expr: str, kind: str, ident: str, site: str, labels: dict[str, str]) -> dict:
    """A warning for a site with several uplinks that lost one of them with the unit, and still reaches the ministry."""
    zh, en = _unit(kind, ident)
    rule = _alert(REDUNDANCY_LOST, expr, ROOT_CAUSE_FOR, "warning", labels["level"],
                  f"{site} 失去上联冗余：{zh} 故障，仍经其余上联到达部中心",
                  f"{site} lost uplink redundancy: {en} failed, it still reaches the ministry over its other uplinks",
                  f"尽快恢复，再有一处故障即切断 / restore it before one more failure cuts the site off: netops topology path {site}",
                  **_where(labels))
    return {**rule, "keep_firing_for": ROOT_CAUSE_FOR}
