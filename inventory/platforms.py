"""The one platform table: every vendor/OS difference the suite knows lives here.

Code that drives devices looks a platform up here instead of branching on its name; templates,
parsers and rule packs are per platform, the code that drives them is one.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class EnvSensor:
    """One environment column of a vendor MIB, indexed by entity (or the MIB's own sensor index).

    ``kind`` "temperature" (°C), "rx_power" / "tx_power" (an optical transceiver's dBm, indexed by the MIB's own
    index: ifIndex on H3C, entPhysicalIndex on Huawei and Cisco): the value × ``scale`` is the measure — or, with
    ``milliwatts``, a linear power in mW whose dBm (10·log10) is the measure, a power of zero having none and
    being dropped; ``scale_columns`` (an RFC 3433 sensor table's SensorDataScale and SensorPrecision columns)
    scale each row's value by its own SI prefix and decimals; "fan" / "power": the value is a state, ``ok``
    lists the states that mean working. A value in ``absent`` means "no such sensor here" and is dropped.
    ``where`` names sibling columns of the same row and the values they must hold for the row to count (a
    sensor type, a presence state): a row whose sibling holds another value, or none, is dropped.
    ``named``: a regex the row's entity must match by its ENTITY-MIB entPhysicalName (what tells a receive from
    a transmit sensor where both are of one type); a row whose entity has another name, or none, is dropped.
    ``release``: a regex on sysDescr; the sensor is read only on the releases it matches (where a vendor
    changed a column's unit between releases), on none where the agent does not say its release.
    ``fallback``: read only where no sensor listed before it in the platform's ``snmp_env`` gave a reading of
    its kind (another MIB with the same sensors under other indexes)."""
    kind: str
    oid: str
    ok: tuple[int, ...] = ()
    absent: tuple[int, ...] = ()
    scale: float = 1
    where: tuple[tuple[str, tuple[int, ...]], ...] = ()
    milliwatts: bool = False
    scale_columns: tuple[str, str] | None = None
    named: str | None = None
    release: str | None = None
    fallback: bool = False

    @property
    def columns(self) -> tuple[str, ...]:
        """Every column a reading needs: its own and the siblings it is read with."""
        return (self.oid, *(c for c, _ in self.where), *(self.scale_columns or ()))

    @property
    def state(self) -> bool:
        """The value is a state (working or not), not a measure."""
        return self.kind in ("fan", "power")


def _entity_sensors(entry: str, dbm: int) -> tuple[EnvSensor, ...]:
    """An RFC 3433-shaped sensor table (ENTITY-SENSOR-MIB entPhySensorEntry, or Cisco's entSensorValueEntry before
    it), per entPhysicalIndex: value (.4) where the status (.5) is ok(1) — unavailable(2) and nonoperational(3)
    readings are no measure — scaled by its SI prefix (.2) and precision (.3); temperatures where the type (.1)
    is celsius(8), a transceiver's receive and transmit power where it is ``dbm`` and the entity's name says
    which (IOS-XE names them "Te1/1/1 Receive Power Sensor", IOS-XE routers "subslot 0/1 transceiver 2 Rx Power
    Sensor")."""
    def sensor(kind: str, type_: int, named: str | None = None) -> EnvSensor:
        return EnvSensor(kind, f"{entry}.4", where=((f"{entry}.1", (type_,)), (f"{entry}.5", (1,))),
                         scale_columns=(f"{entry}.2", f"{entry}.3"), named=named)
    return (sensor("temperature", 8), sensor("rx_power", dbm, r"\b(?:Receive|Rx) Power Sensor"),
            sensor("tx_power", dbm, r"\b(?:Transmit|Tx) Power Sensor"))


@dataclass(frozen=True)
class Trap:
    """A notification the trap receiver (collectors/traps.py) makes an Alertmanager alert of: its snmpTrapOID, the
    alert's name and severity, and what it is about — "device", "interface" (the ifIndex its varbinds carry) or
    "entity" (the entity index its varbinds carry). A ``clear`` trap raises nothing: it ends the alert of that name
    about the same interface or entity (linkUp ends TrapLinkDown; a vendor's resume trap its fault's alert)."""
    oid: str
    alert: str
    severity: str = "warning"
    subject: str = "device"
    clear: bool = False


_V2 = "1.3.6.1.6.3.1.1.5."   # SNMPv2-MIB snmpTraps (IF-MIB's linkDown/linkUp among them); RFC 3584 maps v1's generic traps here
# what every agent sends, whatever its vendor
STANDARD_TRAPS = (Trap(_V2 + "1", "TrapColdStart"), Trap(_V2 + "2", "TrapWarmStart"),
                  Trap(_V2 + "3", "TrapLinkDown", "critical", "interface"),
                  Trap(_V2 + "4", "TrapLinkDown", subject="interface", clear=True),
                  Trap(_V2 + "5", "TrapAuthenticationFailure"))
_HW = "1.3.6.1.4.1.2011.5.25.219.2."       # HUAWEI-ENTITY-TRAP-MIB hwEntityTrap notifications
_H3C = "1.3.6.1.4.1.25506.2.6.2.0."        # HH3C-ENTITY-EXT-MIB hh3cEntityExtTraps
_HWE = "1.3.6.1.4.1.2011.5.25.31.1.1"      # HUAWEI-ENTITY-EXTENT-MIB hwEntityState
# Huawei releases by sysDescr: VRP5 ("VRP (R) software,Version 5.170 (S5720 V200R011C10SPC500)"), VRP8
# ("VRP (R) software, Version 8.180 (CE6850EI V200R005C10SPC800)") and its successor YunShan OS
# ("Huawei YunShan OS\nVersion 1.24.0.1 (S6700 V600R024C00SPC100)")
_VRP5 = r"VRP \(R\) software, ?Version 5\."
_VRP8 = r"VRP \(R\) software, ?Version 8\.|\bYunShan OS\b"


def _pair(fault: str, resume: str, alert: str, severity: str = "critical") -> tuple[Trap, Trap]:
    """A vendor's fault trap about an entity and the trap that ends it."""
    return Trap(fault, alert, severity, "entity"), Trap(resume, alert, subject="entity", clear=True)


@dataclass(frozen=True)
class Platform:
    name: str
    kind: str                 # "network" (a router/switch/firewall OS) or "server" (a Linux host)
    netmiko_device_type: str  # driver name for SSH sessions
    ansible_network_os: str | None  # set for network OSes only
    ansible_connection: str
    lab_image: str            # what the lab twin runs for this platform: "frr" router or "linux" host
    # --- network CLI (None for servers) ---
    paging_off: str | None = None      # disable the pager for the session
    show_running: str | None = None    # the running configuration
    save: str | None = None            # persist the running configuration
    # native safety for a push: a change that reverts itself unless confirmed
    commit_confirm: str | None = None  # how the change is armed, with {minutes}
    confirm: str | None = None         # how it is confirmed
    revert: str | None = None          # abandons an armed change at once (run where confirm runs);
                                       # None: the change is undone line by line, then confirmed
    snmp_enterprise: str | None = None  # sysObjectID prefix that identifies the vendor
    # --- configuration syntax (link provisioning: topology/provision) ---
    negate: str = "no"                 # prefix that removes a configuration line
    stanza_exit: str = "exit"          # leaves a sub-mode (interface view)
    config_mode: str = "configure terminal"  # enters configuration mode (used where commands are exec'd)
    commit_confirm_at: str = "first"   # where commit_confirm goes: "enter" (is the config-mode command),
                                       # "first" or "last" (a line in configuration mode)
    # verification after a push: {name} interface, {source}/{target} addresses
    show_interface: str = "show interface {name}"
    interface_up: str = r"is up, line protocol is up"   # regex on show_interface output
    show_ospf_neighbor: str = "show ip ospf neighbor"  # a line with the peer's router id and "Full"
    interface_short: tuple[tuple[str, str], ...] = ()   # how show output abbreviates names (long, short)
    ping: str | None = None            # run as is (a shell command where cli_exec is set)
    ping_ok: str = r" 0% packet loss"  # regex on the ping output
    # a CLI command run as one non-interactive SSH exec (no interactive session needed), with {command}
    cli_exec: str | None = None
    # vendor CPU / memory utilisation columns (percent per entity); None: HOST-RESOURCES-MIB
    snmp_cpu_oid: str | None = None
    snmp_mem_oid: str | None = None
    # memory as used / free amounts per entity (CISCO-PROCESS-MIB) where the vendor gives no percentage
    snmp_mem_used_oid: str | None = None
    snmp_mem_free_oid: str | None = None
    # temperature, fan and power-supply columns of the vendor's entity / environment MIB
    snmp_env: tuple[EnvSensor, ...] = ()
    # vendor notifications the trap receiver alerts on, besides STANDARD_TRAPS
    snmp_traps: tuple[Trap, ...] = ()
    # SSH health collection: (command, parser name in collectors/parsers.py) run in one session
    ssh_health: tuple[tuple[str, str], ...] = ()
    # configuration lines that carry a secret (a password, a key, a community): ^(kept part)secret
    secrets: tuple[str, ...] = ()
    # --- zone rules on a boundary device (topology/zones): the syntax its rules render in (a template
    # topology/provision/templates/zones/<syntax>.j2; None: this platform is no boundary device), and the
    # vendor's names for the suite's zones ((zone, name) pairs; a zone not listed keeps its own name)
    zone_rules: str | None = None
    zone_names: tuple[tuple[str, str], ...] = ()
    # --- the device baseline (harden devices): configuration lines that hold one value, as regexes on
    # the line; a running line matching the same regex as an intended one is that setting's old value,
    # removed with the negation when the intended line replaces it (so a line-by-line rollback restores it)
    single_value: tuple[str, ...] = ()
    # settings the device acts on without printing them (its defaults): in place when the running
    # stanza shows no value of that setting; the audit's rules read an absent setting as this value;
    # another value of the setting is undone by setting the default (FRR's `no exec-timeout` is no timeout)
    unprinted: tuple[str, ...] = ()
    # stanzas that always exist and cannot be negated whole (FRR's `line vty`): undone line by line
    fixed_stanzas: tuple[str, ...] = ()
    # --- drift (topology/provision/drift): intended vs running vs saved ---
    hier_config: str = "GENERIC"       # hier_config's Platform for the hierarchical comparison (its negation forms)
    show_saved: str | None = None      # the saved (startup) configuration; run as is (a shell command where
                                       # cli_exec is set), like ping
    # lines (regexes) that differ between running and saved without being a change: headers, byte counts,
    # version stamps. Comment lines, separators and mode exits are dropped for every platform (so VRP's
    # "!Software Version" and "!Last configuration was saved" need no entry)
    volatile: tuple[str, ...] = ()
    # --- reconciliation (topology/reconcile): what the device reports about its interfaces (state and
    # addresses), OSPF neighbours and LLDP neighbours, as (command, parser name in collectors/parsers.py),
    # run like ``ssh_health``; an LLDP parser gives no record where the device runs no LLDP
    reconcile: tuple[tuple[str, str], ...] = ()
    # the software version in the agent's sysDescr: a regex whose groups, joined by a space, are the version in
    # the form the inventory's ``software`` field is written (compared by reconcile); None: not known
    snmp_software: str | None = None
    # --- a service address moved by a failover (backup/replication): the site router announces a host route to it
    # into OSPF. ``host_route``: the static /32 with {address} and {next_hop}, as the running configuration prints
    # it; ``ospf_process``: the view of the OSPF process, named as the link templates name it (a running header
    # that starts with it is that process: VRP's and Comware's ``ospf 1 router-id X``); ``redistribute_static``:
    # the line in that view that redistributes static routes. None: a failover cannot move an address here
    host_route: str | None = None
    ospf_process: str | None = None
    redistribute_static: str | None = None

    @property
    def static_route(self) -> str | None:
        """How a static route's line starts (``ip route-static ``): the part of ``host_route`` before its address."""
        return self.host_route.partition("{address}")[0] if self.host_route else None

    def software_version(self, sys_descr: str) -> str | None:
        """The software version ``sys_descr`` names, in the inventory's form; None where it names none this
        platform's regex knows."""
        m = re.search(self.snmp_software, sys_descr) if self.snmp_software else None
        return " ".join(g for g in m.groups() if g) if m else None

    def full_name(self, name: str) -> str:
        """An interface name as the inventory writes it, from the abbreviation show output may print
        (``interface_short``: VRP's GE0/0/1, Comware's XGE1/0/1, IOS's Gi0/1)."""
        for long, abbr in self.interface_short:
            if name.startswith(abbr) and name[len(abbr):len(abbr) + 1].isdigit():
                return long + name[len(abbr):]
        return name

    @property
    def session(self) -> str:
        """How the access layer reaches it: "exec" (one SSH exec per command: Linux hosts, and FRR
        through ``cli_exec``) or "interactive" (a vendor CLI through netmiko, paging off)."""
        return "exec" if self.cli_exec or self.kind == "server" else "interactive"


_NET = "ansible.netcommon.network_cli"
# configuration lines that carry a secret, per platform: group 1 is kept, the secret after it is shown as
# <redacted> — in the config archive, audit findings and excerpts, reports, change records and diffs
_FRR_SECRETS = (r"^(\s*(?:enable )?password )\S+", r"^(\s*ip ospf authentication-key )\S+",
                r"^(\s*ip ospf message-digest-key \d+ md5 )\S+", r"^(\s*neighbor \S+ password )\S+",
                r"^(\s*key-string )\S+",
                # its host's snmpd.conf, as the audit collects it (keys are cut on the host already)
                r"^(\s*createUser\s+\S+\s+\S+\s+)(?:\"[^\"]*\"|\S+)",
                r"^(\s*createUser\s+\S+\s+\S+\s+<redacted>\s+\S+\s+)(?:\"[^\"]*\"|\S+)",
                r"^(\s*(?:ro|rw)community6?\s+)\S+", r"^(\s*com2sec6?\s+(?:-Cn\s+\S+\s+)?\S+\s+\S+\s+)\S+",
                r"^(\s*trapsess\s.*?\s-A\s+)(?:\"[^\"]*\"|\S+)", r"^(\s*trapsess\s.*?\s-X\s+)(?:\"[^\"]*\"|\S+)",
                r"^(\s*(?:trap|trap2|inform)sink\s+\S+\s+)\S+")
_IOS_SECRETS = (r"^(\s*enable (?:secret|password)(?: \d+)? )\S+",
                r"^(\s*username \S+ (?:privilege \d+ )?(?:secret|password)(?: \d+)? )\S+",
                r"^(\s*snmp-server community )\S+", r"^(\s*(?:ip ospf )?(?:authentication-key|key-string)(?: \d+)? )\S+",
                r"^(\s*(?:ip ospf )?message-digest-key \d+ md5(?: \d+)? )\S+", r"^(\s*neighbor \S+ password(?: \d+)? )\S+",
                r"^(\s*(?:pre-shared-key|key)(?: \d+)? )\S+$", r"^(\s*password(?: \d+)? )\S+",
                r"^(\s*snmp-server user \S+ \S+ v3 auth \S+ )\S+", r"^(\s*snmp-server user .* priv \S+(?: \d+)? )\S+")
_VRP_SECRETS = (r"^(.*\b(?:cipher|irreversible-cipher|simple) )\S+",
                r"^(\s*snmp-agent community (?:read|write) )(?!cipher |simple )\S+",
                r"^(\s*snmp-agent usm-user v3 \S+ (?:authentication-mode|privacy-mode) \S+ )(?!cipher |simple )\S+")
_COMWARE_SECRETS = (r"^(.*\b(?:cipher|simple|hash) )(?!authentication-mode )\S+",
                    r"^(\s*snmp-agent community (?:read|write) )(?!cipher |simple )\S+",
                    r"^(\s*snmp-agent usm-user v3 .*\bauthentication-mode \S+ )\S+", r"^(.* privacy-mode \S+ )\S+")
_ASA_SECRETS = (r"^(\s*enable password )\S+", r"^(\s*passwd )\S+", r"^(\s*username \S+ password )\S+",
                r"^(\s*snmp-server community )\S+", r"^(\s*snmp-server host .* community )\S+",
                r"^(\s*snmp-server user .* auth \S+ )\S+", r"^(\s*snmp-server user .* priv \S+(?: \d+)? )\S+",
                r"^(\s*(?:ikev1 |ikev2 (?:local|remote)-authentication )?pre-shared-key )\S+", r"^(\s*key )\S+")
# running-config headers and the clock's drift correction IOS rewrites by itself; startup-config's usage line
_IOS_VOLATILE = (r"^Building configuration", r"^Current configuration : \d+ bytes", r"^Using \d+ out of \d+ bytes",
                 r"^ntp clock-period ")
# load, memory, root file system and failed units of a Linux host in one round trip
LINUX_HEALTH = "cat /proc/loadavg; free -b; df -P -B1 /; systemctl --failed --no-legend --plain"
VTYSH = "vtysh -H /dev/null"  # FRR's shell, keeping no history
_LINUX = ((LINUX_HEALTH, "linux"),)

PLATFORMS: dict[str, Platform] = {
    p.name: p
    for p in (
        Platform("huawei_vrp", "network", "huawei_vrpv8", "community.network.ce", _NET, "frr",
                 paging_off="screen-length 0 temporary", show_running="display current-configuration",
                 save="save", commit_confirm="commit trial {seconds}", confirm="commit", revert="abort trial", negate="undo",
                 stanza_exit="quit", config_mode="system-view", commit_confirm_at="last",
                 show_interface="display interface {name}",
                 interface_up=r"(?m)^\S+ current state : UP\b.*\n\s*Line protocol current state : UP\b",
                 show_ospf_neighbor="display ospf peer brief", interface_short=(("GigabitEthernet", "GE"),),
                 ping="ping -c 3 -a {source} {target}",
                 ping_ok=r" 0.00% packet loss",
                 snmp_enterprise="1.3.6.1.4.1.2011",
                 snmp_cpu_oid="1.3.6.1.4.1.2011.5.25.31.1.1.1.1.5",    # hwEntityCpuUsage
                 snmp_mem_oid="1.3.6.1.4.1.2011.5.25.31.1.1.1.1.7",    # hwEntityMemUsage
                 # HUAWEI-ENTITY-EXTENT-MIB: 0 °C is what an entity without a sensor (chassis, card slot) reports
                 snmp_env=(EnvSensor("temperature", f"{_HWE}.1.1.11", absent=(0,)),  # hwEntityTemperature
                           # hwOpticalModuleInfoTable hwEntityOpticalRxPower (.8) / TxPower (.9), per entPhysicalIndex of
                           # the transceiver. The MIB (V2.58 of 2014 to V3.05 of 2017) documents both as dBm × 100 and has
                           # no column that says otherwise, but VRP5 (the S and AR series: sysDescr "VRP (R) software,
                           # Version 5.xxx") sends µW; VRP8 (CloudEngine, NetEngine: "Version 8.xxx") and YunShan OS send
                           # what the MIB says: positive powers among them (+4.59 dBm from a 100GBASE-LR4), -4000 where no
                           # light is seen, -1 in every column of an empty cage (dropped, a true -0.01 dBm with it). One
                           # column, two units: the release decides; a release not listed (or an agent that hides its
                           # sysDescr) gets no optical reading rather than a wrong one
                           *(EnvSensor(kind, f"{_HWE}.3.1.{col}", scale=0.001, milliwatts=True, release=_VRP5)
                             for kind, col in (("rx_power", 8), ("tx_power", 9))),
                           *(EnvSensor(kind, f"{_HWE}.3.1.{col}", scale=0.01, absent=(-1,), release=_VRP8)
                             for kind, col in (("rx_power", 8), ("tx_power", 9))),
                           EnvSensor("fan", f"{_HWE}.10.1.7", ok=(1,)),   # hwEntityFanState normal(1)
                           # hwPwrStatusTable: hwEntityPwrState supply(1), notSupply(2), sleep(3) (a standby supply in
                           # energy saving: working), unknown(4); only where hwEntityPwrPresent is present(1) — an empty
                           # slot's row says notSupply
                           EnvSensor("power", f"{_HWE}.18.1.6", ok=(1, 3), where=((f"{_HWE}.18.1.5", (1,)),))),
                 snmp_traps=(*_pair(_HW + "1.3", _HW + "1.4", "TrapChassisFail"),       # hwChassisFail / …Resume
                             *_pair(_HW + "2.1", _HW + "2.2", "TrapBoardRemoved"),      # hwBoardRemove / hwBoardInsert
                             *_pair(_HW + "2.3", _HW + "2.4", "TrapBoardFail"),         # hwBoardFail / …Resume
                             *_pair(_HW + "2.5", _HW + "2.6", "TrapBoardInvalid"),      # hwBoardInvalid / …Resume
                             *_pair(_HW + "5.1", _HW + "5.2", "TrapPowerRemoved")),     # hwPowerRemove / hwPowerInsert
                 single_value=(r"idle-timeout ", r"protocol inbound ", r"authentication-mode ", r"acl (ipv6 )?\d+ inbound$",
                               r"snmp-agent sys-info version ", r"local-aaa-user wrong-password "),
                 ssh_health=(("display cpu-usage", "cpu_vrp"), ("display memory-usage", "mem_vrp"),
                             ("display ospf peer brief", "ospf_vrp")), secrets=_VRP_SECRETS,
                 # a firewall on VRP is a USG: security zones and security-policy rules
                 zone_rules="usg", zone_names=(("business", "trust"), ("internet", "untrust"), ("dmz", "dmz")),
                 hier_config="HUAWEI_VRP", show_saved="display saved-configuration",
                 reconcile=(("display ip interface brief", "ip_brief_vrp"), ("display ospf peer brief", "ospf_vrp"),
                            ("display lldp neighbor brief", "lldp_vrp")),
                 # the release in the parentheses after the model: "VRP (R) software, Version 8.180 (CE6881
                 # V200R005C10SPC800)" (VRP5, VRP8, YunShan OS alike) → V200R005C10SPC800
                 snmp_software=r"\bVersion [\d.]+ \([^()]*?\b(V\d{3}R\d{3}\w*)\)",
                 host_route="ip route-static {address} 255.255.255.255 {next_hop}", ospf_process="ospf 1",
                 redistribute_static="import-route static"),
        Platform("hp_comware", "network", "hp_comware", "community.network.hpe_comware", _NET, "frr",
                 paging_off="screen-length disable", show_running="display current-configuration",
                 save="save force", commit_confirm="configuration commit delay {minutes}",
                 confirm="configuration commit", snmp_enterprise="1.3.6.1.4.1.25506", negate="undo",
                 stanza_exit="quit", config_mode="system-view", show_interface="display interface {name}",
                 interface_up=r"(?m)^Current state: UP\s*\n\s*Line protocol state: UP\b",
                 show_ospf_neighbor="display ospf peer",
                 interface_short=(("Ten-GigabitEthernet", "XGE"), ("GigabitEthernet", "GE")),
                 ping="ping -c 3 -a {source} {target}",
                 ping_ok=r" 0.0% packet loss",
                 snmp_cpu_oid="1.3.6.1.4.1.25506.2.6.1.1.1.1.6",       # hh3cEntityExtCpuUsage
                 snmp_mem_oid="1.3.6.1.4.1.25506.2.6.1.1.1.1.8",       # hh3cEntityExtMemUsage
                 snmp_env=(EnvSensor("temperature", "1.3.6.1.4.1.25506.2.6.1.1.1.1.12", absent=(65535,)),  # hh3cEntityExtTemperature
                           # HH3C-LSW-DEV-ADM-MIB: active(1), deactive(2), not-install(3), unsupport(4)
                           EnvSensor("fan", "1.3.6.1.4.1.25506.8.35.9.1.1.1.2", ok=(1,), absent=(3, 4)),  # hh3cDevMFanStatus
                           EnvSensor("power", "1.3.6.1.4.1.25506.8.35.9.1.2.1.2", ok=(1,), absent=(3, 4)),  # hh3cDevMPowerStatus
                           # HH3C-TRANSCEIVER-INFO-MIB, per ifIndex, hundredths of dBm; 2147483647: no reading
                           EnvSensor("rx_power", "1.3.6.1.4.1.25506.2.70.1.1.1.12", absent=(2147483647,), scale=0.01),
                           EnvSensor("tx_power", "1.3.6.1.4.1.25506.2.70.1.1.1.9", absent=(2147483647,), scale=0.01)),
                 snmp_traps=(*_pair(_H3C + "1", _H3C + "22", "TrapTemperature", "warning"),   # …TemperatureThresholdNotification / …Normal
                             *_pair(_H3C + "4", _H3C + "25", "TrapCpuUsage", "warning"),      # …CpuUsageThresholdNotfication / …Recover
                             *_pair(_H3C + "5", _H3C + "26", "TrapMemoryUsage", "warning"),   # …MemUsageThresholdNotification / …Recover
                             *_pair(_H3C + "7", _H3C + "6", "TrapEntityDisabled"),            # …OperDisabled / …OperEnabled
                             *_pair(_H3C + "13", _H3C + "12", "TrapEntityRemoved"),           # hh3cEntityRemove / hh3cEntityInsert
                             *_pair(_H3C + "16", _H3C + "17", "TrapEntityFault")),            # …FaultAlarmOn / …FaultAlarmOff
                 single_value=(r"idle-timeout ", r"protocol inbound ", r"authentication-mode ", r"ssh server acl ",
                               r"snmp-agent sys-info version ", r"password-control login-attempt "),
                 ssh_health=(("display cpu-usage", "cpu_comware"), ("display memory", "mem_comware"),
                             ("display ospf peer", "ospf_comware")), secrets=_COMWARE_SECRETS,
                 # a firewall on Comware is a SecPath: security zones and security-policy ip rules
                 zone_rules="secpath", zone_names=(("business", "Trust"), ("internet", "Untrust"), ("dmz", "DMZ"),
                                                   ("management", "Management")),
                 hier_config="HP_COMWARE5", show_saved="display saved-configuration",
                 reconcile=(("display ip interface brief", "ip_brief_comware"), ("display ospf peer", "ospf_comware"),
                            ("display lldp neighbor-information list", "lldp_comware")),
                 # "Software Version 7.1.070, Release 6728P22" → 7.1.070 Release 6728P22 (Comware 5 and 7)
                 snmp_software=r"\bVersion (\d+(?:\.\d+)+), (Release \w+)",
                 # Comware takes a mask or its length and prints the length
                 host_route="ip route-static {address} 32 {next_hop}", ospf_process="ospf 1",
                 redistribute_static="import-route static"),
        Platform("cisco_ios", "network", "cisco_ios", "cisco.ios.ios", _NET, "frr",
                 paging_off="terminal length 0", show_running="show running-config",
                 save="write memory", commit_confirm="configure terminal revert timer {minutes}",
                 commit_confirm_at="enter", show_interface="show interfaces {name}",
                 ping="ping {target} source {source} repeat 3", ping_ok=r"Success rate is 100 percent",
                 confirm="configure confirm", revert="configure revert now", snmp_enterprise="1.3.6.1.4.1.9",
                 snmp_cpu_oid="1.3.6.1.4.1.9.9.109.1.1.1.1.8",         # cpmCPUTotal5minRev
                 snmp_mem_used_oid="1.3.6.1.4.1.9.9.109.1.1.1.1.12",   # cpmCPUMemoryUsed (KB)
                 snmp_mem_free_oid="1.3.6.1.4.1.9.9.109.1.1.1.1.13",   # cpmCPUMemoryFree (KB)
                 # CISCO-ENVMON-MIB: states normal(1), warning(2), critical(3), shutdown(4), notPresent(5), notFunctioning(6)
                 # The entity sensor MIBs first (per entPhysicalIndex): ENTITY-SENSOR-MIB, where IOS-XE reports its
                 # chassis and transceiver sensors (RFC 3433 has no dBm type: Cisco's transceiver powers are other(1)
                 # there), then ENVMON's temperatures (their own indexes), read only where ENTITY-SENSOR-MIB gave none
                 # (IOS before IOS-XE; an IOS-XE agent that fills both reports the same sensors twice), then
                 # CISCO-ENTITY-SENSOR-MIB (dBm(14)), which older IOS fills with its transceivers' diagnostics only and
                 # IOS-XE with the same entities as ENTITY-SENSOR-MIB (one entPhysicalIndex, one series)
                 snmp_env=(*_entity_sensors("1.3.6.1.2.1.99.1.1.1", 1),             # ENTITY-SENSOR-MIB entPhySensorEntry
                           EnvSensor("temperature", "1.3.6.1.4.1.9.9.13.1.3.1.3", fallback=True),  # ciscoEnvMonTemperatureStatusValue
                           *_entity_sensors("1.3.6.1.4.1.9.9.91.1.1.1.1", 14),      # CISCO-ENTITY-SENSOR-MIB entSensorValueEntry
                           EnvSensor("fan", "1.3.6.1.4.1.9.9.13.1.4.1.3", ok=(1,), absent=(5,)),   # ciscoEnvMonFanState
                           EnvSensor("power", "1.3.6.1.4.1.9.9.13.1.5.1.3", ok=(1,), absent=(5,))),  # ciscoEnvMonSupplyState
                 single_value=(r"exec-timeout ", r"transport input ", r"access-class \S+ in$",
                               r"aaa local authentication attempts max-fail "),
                 ssh_health=(("show processes cpu | include CPU utilization", "cpu_ios"),
                             ("show ip ospf neighbor", "ospf_ios")), secrets=_IOS_SECRETS,
                 hier_config="CISCO_IOS", show_saved="show startup-config", volatile=_IOS_VOLATILE,
                 # show ip ospf neighbor prints names in full; show lldp neighbors abbreviates them
                 interface_short=(("TenGigabitEthernet", "Te"), ("GigabitEthernet", "Gi"), ("FastEthernet", "Fa")),
                 reconcile=(("show ip interface brief", "ip_brief_ios"), ("show ip ospf neighbor", "ospf_ios"),
                            ("show lldp neighbors", "lldp_ios")),
                 # "Cisco IOS Software, C2960X Software (…), Version 15.2(7)E3, RELEASE SOFTWARE" → 15.2(7)E3 (IOS-XE alike)
                 snmp_software=r"\bVersion ([^\s,]+)",
                 host_route="ip route {address} 255.255.255.255 {next_hop}", ospf_process="router ospf 1",
                 redistribute_static="redistribute static subnets"),
        # Cisco's firewall (ASA OS, not IOS): no commit-confirm (a push is undone line by line), no ping from a
        # source address; it shares IOS's enterprise number, so SNMP cannot tell them apart (set the platform)
        Platform("cisco_asa", "network", "cisco_asa", "cisco.asa.asa", _NET, "frr",
                 paging_off="terminal pager 0", show_running="show running-config", save="write memory",
                 show_ospf_neighbor="show ospf neighbor", ssh_health=(("show cpu usage", "cpu_asa"),),
                 secrets=_ASA_SECRETS, zone_rules="asa", show_saved="show startup-config",
                 volatile=(r"^:", r"^Cryptochecksum:"),  # ": Saved", ": Written by …", the checksum
                 snmp_software=r"\bVersion ([^\s,]+)"),  # "Cisco Adaptive Security Appliance Version 9.12(4)22"
        # FRR runs on Linux: Ansible reaches it over plain SSH and drives vtysh (no pager with -c; no history
        # file either: vtysh appends every -c command to ~/.history_frr, a write on each read-only audit and poll).
        Platform("frr", "network", "linux", "frr.frr.frr", "ssh", "frr",
                 show_running="show running-config", save="write memory",
                 snmp_enterprise="1.3.6.1.4.1.8072", cli_exec=f"{VTYSH} -c {{command}}",
                 # the kernel's interface state and counters: FRR's show interface prints no counters on Linux
                 ssh_health=((f"{VTYSH} -c 'show ip ospf neighbor'", "ospf_frr"), ("ip -s -j link", "links_linux"), *_LINUX),
                 ping="ping -c 3 -W 1 -I {source} {target}", secrets=_FRR_SECRETS, zone_rules="nftables",
                 single_value=(r"exec-timeout ", r"access-class "),
                 unprinted=("exec-timeout 10 0",),  # FRR's vty idle timeout, printed only when changed
                 fixed_stanzas=("line vty",),
                 # the integrated config `write memory` writes, read through its group (the login is in frr)
                 show_saved="cat /etc/frr/frr.conf",
                 volatile=(r"^Building configuration", r"^Current configuration:", r"^frr version "),
                 # the kernel's interfaces (zebra's view of them), FRR's OSPF neighbours, lldpd's neighbours
                 # (json0: one shape whatever the number of neighbours; /usr/sbin is not on a user's PATH over SSH)
                 reconcile=(("ip -j addr", "addrs_linux"), (f"{VTYSH} -c 'show ip ospf neighbor'", "ospf_frr"),
                            ("/usr/sbin/lldpcli -f json0 show neighbors", "lldp_lldpd")),
                 # net-snmp's sysDescr is `uname -snrvm`: "Linux xa-r1 6.1.0-28-amd64 #1 SMP …" → the kernel release
                 snmp_software=r"^Linux \S+ (\S+)",
                 host_route="ip route {address}/32 {next_hop}", ospf_process="router ospf",
                 redistribute_static="redistribute static"),
        Platform("debian", "server", "linux", None, "ssh", "linux", snmp_enterprise="1.3.6.1.4.1.8072",
                 ssh_health=_LINUX, zone_rules="nftables"),
        Platform("openeuler", "server", "linux", None, "ssh", "linux", snmp_enterprise="1.3.6.1.4.1.8072",
                 ssh_health=_LINUX, zone_rules="nftables"),
        Platform("kylin", "server", "linux", None, "ssh", "linux", snmp_enterprise="1.3.6.1.4.1.8072",
                 ssh_health=_LINUX, zone_rules="nftables"),
    )
}


REDACTED = "<redacted>"


@functools.cache
def _secret_patterns(platform: str) -> tuple[re.Pattern, ...]:
    return tuple(re.compile(rx) for rx in PLATFORMS[platform].secrets)


def redact(platform: str, text: str) -> str:
    """``text`` (a configuration, an excerpt, a diff, commands) with every secret the platform's lines
    carry replaced by <redacted>; line by line, a diff's leading +/- and a command's negation kept (the
    line that removes a community names it too)."""
    patterns = _secret_patterns(platform)
    if not patterns:
        return text
    neg = re.compile(rf"^\s*{re.escape(PLATFORMS[platform].negate)} ")
    out = []
    for line in text.split("\n"):
        mark = line[:1] if line[:1] in "+-" and not line.startswith(("+++", "---")) else ""
        body = line[len(mark):]
        if m := neg.match(body):
            mark, body = mark + m.group(0), body[m.end():]
        for rx in patterns:
            body = rx.sub(lambda m: m.group(1) + REDACTED, body)
        out.append(mark + body)
    return "\n".join(out)
