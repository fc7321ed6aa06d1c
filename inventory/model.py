"""Typed inventory objects: the schema of one site, device, link, credentials profile.

Per-object checks (types, enums, formats) live here as pydantic models; checks that
relate objects to each other live in ``validate.py``.
"""
from __future__ import annotations

import ipaddress
import re
import unicodedata
from enum import Enum
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    field_validator,
    model_validator,
)

from .platforms import PLATFORMS

SITE_ID = r"^[a-z][a-z0-9_]{0,39}$"        # pinyin, also a valid Ansible group name
DEVICE_ID = r"^[a-z][a-z0-9-]{0,39}$"      # pinyin, a valid hostname
IFACE_NAME = r"^[A-Za-z][A-Za-z0-9/._-]{0,47}$"
ENV_NAME = r"^[A-Z_][A-Z0-9_]*$"
VAULT_NAME = r"^[a-z_][a-z0-9_]*$"


def _ip_text(v):
    """Addresses are written as text. pydantic would also take a number (``management: 1`` → 0.0.0.1,
    ``block: true`` → 0.0.0.1/32), which in an inventory is always a slip."""
    if isinstance(v, (bool, int, float)):
        raise ValueError(f"write the address as text (e.g. 10.44.0.0/16 or 10.254.44.11), not {type(v).__name__} {v!r}")
    return v


# Unicode categories free text never carries: control (Cc: line breaks, tabs, NUL…), format (Cf: bidi
# overrides, zero-width characters), line and paragraph separators, surrogates.
_INVISIBLE = {"Cc", "Cf", "Zl", "Zp", "Cs"}


def _free_text(forbidden: str = ""):
    """A validator for text a person types: it reaches router configs, lab commands, reports and
    screens, so it is data only: no control or invisible character, nor ``forbidden`` characters."""

    def check(v: str) -> str:
        bad = next((c for c in v if unicodedata.category(c) in _INVISIBLE or c in forbidden), None)
        if bad is not None:
            what = f"{bad!r}" if bad in forbidden else f"control or invisible character U+{ord(bad):04X}"
            raise ValueError(f"{what} is not allowed here (free text is data, never syntax)")
        if v != v.strip():
            raise ValueError("leading or trailing spaces are not allowed")
        return v

    return AfterValidator(check)


# a display name (Chinese): shown in reports, diagrams, the map
DisplayName = Annotated[str, Field(min_length=1, max_length=64), _free_text()]
# an interface description: also a line of router configuration (VRP, Comware, IOS, FRR — where '?' asks
# the CLI for help and '"' cannot be quoted) and the interface's alias in the lab (ifAlias: 64 at most;
# set through `ip -batch`, which cuts a line at any '#')
Description = Annotated[str, Field(min_length=1, max_length=64), _free_text('"?#')]
# a short label that names a thing (a carrier, a shared-risk group)
Label = Annotated[str, Field(min_length=1, max_length=64), _free_text('"?')]
# what a device says of itself (a chassis serial number, a software version), as the inventory expects it
Reported = Annotated[str, Field(min_length=1, max_length=128), _free_text()]

IPv4Address = Annotated[ipaddress.IPv4Address, BeforeValidator(_ip_text)]
IPv4Network = Annotated[ipaddress.IPv4Network, BeforeValidator(_ip_text)]
IPv4Interface = Annotated[ipaddress.IPv4Interface, BeforeValidator(_ip_text)]


class Level(str, Enum):
    ministry = "ministry"
    province = "province"
    city = "city"
    county = "county"
    dr = "dr"


LEVEL_ORDER = {Level.ministry: 0, Level.province: 1, Level.dr: 1, Level.city: 2, Level.county: 3}
# how people call each level, Chinese and English, senior first: the one table every report, diagram
# and the health map's API take their labels from
LEVEL_NAMES = {Level.ministry: ("部", "ministry"), Level.province: ("省", "province"), Level.dr: ("灾备", "DR"),
               Level.city: ("市", "city"), Level.county: ("县", "county")}


def level_label(level: Level | str) -> str:
    """'省 province': the level as reports and the map show it."""
    zh, en = LEVEL_NAMES[Level(level)]
    return f"{zh} {en}"
PARENT_LEVELS = {
    Level.ministry: (),
    Level.province: (Level.ministry,),
    Level.city: (Level.province,),
    Level.county: (Level.city,),
    Level.dr: (Level.province, Level.ministry),
}


class Role(str, Enum):
    router = "router"
    firewall = "firewall"        # a boundary device (see BOUNDARY_ROLES)
    gap_gateway = "gap_gateway"  # 网闸: a boundary device that passes only a declared exchange, one way
    switch = "switch"
    server = "server"
    database = "database"
    backup_store = "backup_store"
    monitor = "monitor"


# the only devices whose interfaces may sit in two zones: every crossing between zones passes one
BOUNDARY_ROLES = (Role.firewall, Role.gap_gateway)


class Zone(str, Enum):
    """Security zones (GB/T 22239-2019 8.1.3: boundary protection between them). ``business`` 业务专网
    carries the social-security business (everything, when an inventory names no zones); ``internet``
    外网 the public services (12333 web and mobile); ``dmz`` 前置区 the front-end servers where data is
    staged between the two; ``management`` 管理网 the out-of-band management network (every device's
    ``management`` address is in it)."""
    business = "business"
    internet = "internet"
    dmz = "dmz"
    management = "management"


ZONE_NAMES = {Zone.business: ("业务专网", "business"), Zone.internet: ("外网", "internet"),
              Zone.dmz: ("前置区", "DMZ"), Zone.management: ("管理网", "management")}


def zone_label(zone: Zone | str) -> str:
    """'外网 internet': the zone as reports show it."""
    zh, en = ZONE_NAMES[Zone(zone)]
    return f"{zh} {en}"


class LinkKind(str, Enum):
    dedicated_line = "dedicated_line"
    mpls_vpn = "mpls_vpn"
    lan = "lan"


class LinkState(str, Enum):
    planned = "planned"
    active = "active"


Service = Literal["postgresql", "mariadb"]  # services the suite deploys, monitors and backs up


class _Obj(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False, use_enum_values=False)
    # where the object was declared, for error messages
    _file: str = PrivateAttr(default="")
    _line: int = PrivateAttr(default=0)

    def where(self) -> str:
        return f"{self._file}:{self._line}" if self._line else self._file


class SecretRef(BaseModel):
    """A reference to a secret: an environment variable or an ansible-vault variable. Never the value."""

    model_config = ConfigDict(extra="forbid")
    env: Annotated[str, Field(pattern=ENV_NAME)] | None = None
    vault: Annotated[str, Field(pattern=VAULT_NAME)] | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_plaintext(cls, v):
        if not isinstance(v, dict):
            raise ValueError("plaintext secrets are not allowed; give {env: NAME} or {vault: name}")
        return v

    @model_validator(mode="after")
    def _exactly_one(self):
        if (self.env is None) == (self.vault is None):
            raise ValueError("give exactly one of env or vault")
        return self

    def ansible_expr(self) -> str:
        """How Ansible spells this reference in a host variable."""
        if self.env:
            return "{{ lookup('ansible.builtin.env', '%s') }}" % self.env
        return "{{ %s }}" % self.vault


class SnmpCredentials(BaseModel):
    """What SNMP needs: the v3 user and keys for devices polled with v3, the community for v2c ones; which of
    them a profile must give follows the devices that use it (validate.py)."""
    model_config = ConfigDict(extra="forbid")
    user: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,32}$")] | None = None
    # net-snmp's names (snmpcmd -a/-x, snmpd createUser); AES-192/256 extend the key the standard (Blumenthal) way,
    # AES-192-C/AES-256-C the Cisco way (snmp_exporter's AES192C/AES256C)
    auth_protocol: Literal["SHA", "SHA-224", "SHA-256", "SHA-384", "SHA-512"] = "SHA"
    auth_key: SecretRef | None = None
    priv_protocol: Literal["AES", "AES-192", "AES-256", "AES-192-C", "AES-256-C"] = "AES"
    priv_key: SecretRef | None = None
    community: SecretRef | None = None  # only used by devices whose snmp_version is v2c


class Credentials(_Obj):
    id: str = ""
    username: Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_-]{0,31}$")]
    ssh_key: SecretRef | None = None    # names a private key file
    password: SecretRef | None = None
    snmp: SnmpCredentials | None = None
    db_password: SecretRef | None = None  # the least-privilege monitoring role on the device's databases
    replication_password: SecretRef | None = None  # the replication role a standby logs in to its primary as
    restic_password: SecretRef | None = None  # the restic repositories on a backup store
    # ssh_key or password: required where a device using the profile is reached by SSH (validate.py)


class AddressPlan(BaseModel):
    model_config = ConfigDict(extra="forbid")
    national: IPv4Network
    management: IPv4Network
    ops_host: IPv4Address  # the address of the operations host (where netops runs)

    @model_validator(mode="after")
    def _ops_in_mgmt(self):
        if self.ops_host not in self.management:
            raise ValueError(f"@ops_host: {self.ops_host} is outside the management pool {self.management}")
        return self


class Ospf(BaseModel):
    model_config = ConfigDict(extra="forbid")
    hello_interval: Annotated[int, Field(ge=1, le=65535)] = 10
    dead_interval: Annotated[int, Field(ge=2, le=65535)] = 40

    @model_validator(mode="after")
    def _dead_gt_hello(self):
        if self.dead_interval <= self.hello_interval:
            raise ValueError("@dead_interval: must be greater than hello_interval")
        return self


class Alerting(BaseModel):
    """Where Alertmanager delivers: one webhook URL for every receiver (team), ``{receiver}`` standing for
    the team's name (e.g. ``guangdong-county-ops``). The default reaches nobody: set the NOC's hook."""
    model_config = ConfigDict(extra="forbid")
    webhook: Annotated[str, _free_text()] = "http://127.0.0.1:9095/alerts/{receiver}"

    @field_validator("webhook")
    @classmethod
    def _url(cls, v: str) -> str:
        try:
            url = v.format(receiver="r")
        except (KeyError, IndexError, ValueError):
            raise ValueError(f"{v!r}: the only placeholder allowed is {{receiver}}") from None
        if not re.match(r"^https?://[^/\s]+(/\S*)?$", url):
            raise ValueError(f"{v!r}: give an http:// or https:// URL")
        return v


class Network(_Obj):
    id: Annotated[str, Field(pattern=SITE_ID)]
    name: DisplayName
    address_plan: AddressPlan
    ospf: Ospf = Ospf()
    alerting: Alerting = Alerting()


class Pools(BaseModel):
    model_config = ConfigDict(extra="forbid")
    p2p: list[IPv4Network] = []
    loopback: list[IPv4Network] = []


class Site(_Obj):
    id: Annotated[str, Field(pattern=SITE_ID)] = ""  # the mapping key: pinyin, also an Ansible group name
    name: DisplayName
    level: Level
    parent: str | None = None
    code: Annotated[str, Field(pattern=r"^[0-9]{2,6}$")] | None = None  # administrative division code
    block: IPv4Network
    pools: Pools = Pools()
    homing: Literal["single", "dual"] = "single"
    ospf_area: Annotated[int, Field(ge=0, le=4294967295)] | None = None

    @model_validator(mode="after")
    def _shape(self):
        if self.level == Level.ministry and self.parent is not None:
            raise ValueError("@parent: the ministry has no parent")
        if self.level != Level.ministry and self.parent is None:
            raise ValueError(f"@parent: a {self.level.value} site needs a parent")
        if self.homing == "dual" and self.level != Level.county:
            raise ValueError("@homing: applies to county sites only")
        return self


class Interface(BaseModel):
    model_config = ConfigDict(extra="forbid")
    address: IPv4Interface | None = None
    description: Description | None = None
    zone: Zone | None = None  # None: the device's zone; another zone only on a boundary device


class Replica(BaseModel):
    """This server's database ``service`` is a standby of the same service on device ``of`` (netops dr setup):
    PostgreSQL streaming replication, or MariaDB GTID replication (asynchronous). ``sync`` (PostgreSQL): a commit on
    the primary returns only once this standby has flushed it (RPO 0).
    ``service_address``: the business address clients use for the database, in the primary's LAN; whichever of
    the pair is primary holds it (a failover moves it to the standby's site, announced there as a /32)."""
    model_config = ConfigDict(extra="forbid")
    of: str
    service: Service = "postgresql"
    sync: bool = False
    service_address: IPv4Address | None = None


class Device(_Obj):
    id: Annotated[str, Field(pattern=DEVICE_ID)] = ""  # the mapping key: pinyin, a valid hostname
    name: DisplayName | None = None  # Chinese display name
    site: str
    role: Role
    platform: str
    management: IPv4Address
    loopback: IPv4Address | None = None
    credentials: str
    # how the suite reaches the device: a device reached by SNMP only needs no SSH login, and the reverse
    access: Annotated[list[Literal["ssh", "snmp"]], Field(min_length=1)] = ["ssh", "snmp"]
    snmp_version: Literal["v3", "v2c"] = "v3"
    snmp_port: Annotated[int, Field(ge=1, le=65535)] = 161
    snmp_timeout: Annotated[float, Field(gt=0, le=60)] | None = None  # per request attempt; None: the collector's
    snmp_retries: Annotated[int, Field(ge=0, le=10)] | None = None     # None: the collector's --retries
    services: list[Service] = []
    replica: Replica | None = None
    zone: Zone = Zone.business
    interfaces: dict[Annotated[str, Field(pattern=IFACE_NAME)], Interface] = {}
    # what `inventory reconcile` expects the device to report over SNMP (None: not compared): its chassis
    # serial number (ENTITY-MIB; written as one text, or a list for a stack: one per member chassis, kept as a
    # list) and its software version in the platform's normal form (platforms.py ``snmp_software``)
    serial: Annotated[list[Reported], BeforeValidator(lambda v: [v] if isinstance(v, str) else v),
                      Field(min_length=1)] | None = None
    software: Reported | None = None

    @property
    def primary_services(self) -> list[str]:
        """The database services this server serves as their primary: all but the one it is a replica of."""
        return [s for s in self.services if not (self.replica and self.replica.service == s)]

    @field_validator("platform")
    @classmethod
    def _platform_known(cls, v: str) -> str:
        if v not in PLATFORMS:
            raise ValueError(f"unknown platform {v!r}; one of {', '.join(PLATFORMS)}")
        return v

    @model_validator(mode="after")
    def _shape(self):
        kind = PLATFORMS[self.platform].kind
        if self.role == Role.router and self.loopback is None:
            raise ValueError("@loopback: a router needs a loopback address")
        if self.services and kind != "server":
            raise ValueError(f"@services: services run on servers, not on platform {self.platform}")
        if len(set(self.services)) != len(self.services):
            raise ValueError("@services: a service is listed twice")
        if self.replica and self.replica.service not in self.services:
            raise ValueError(f"@replica: this server does not run {self.replica.service}")
        if len(set(self.access)) != len(self.access):
            raise ValueError("@access: a way of access is listed twice")
        for name in ("serial", "software"):
            if getattr(self, name) is not None and kind != "network":
                raise ValueError(f"@{name}: compared on network devices only, not on platform {self.platform}")
        if self.serial and len({s.casefold() for s in self.serial}) != len(self.serial):
            raise ValueError("@serial: a serial number is listed twice")
        return self

    @property
    def platform_info(self):
        return PLATFORMS[self.platform]

    @property
    def boundary(self) -> bool:
        return self.role in BOUNDARY_ROLES

    def interface_zone(self, name: str) -> Zone:
        return self.interfaces[name].zone or self.zone


class Endpoint(BaseModel):
    device: str
    interface: str

    def __str__(self) -> str:
        return f"{self.device}:{self.interface}"


_ENDPOINT = re.compile(r"^([a-z][a-z0-9-]*):(\S+)$")


class Link(_Obj):
    id: str = ""
    a: Endpoint
    b: Endpoint
    kind: LinkKind
    bandwidth_mbps: Annotated[int, Field(gt=0)]
    carrier: Label | None = None
    srlg: Label | None = None  # shared-risk group: lines that fail together (same carrier duct, same conduit)
    state: LinkState = LinkState.active

    @field_validator("a", "b", mode="before")
    @classmethod
    def _parse_end(cls, v):
        if isinstance(v, str):
            m = _ENDPOINT.match(v)
            if not m:
                raise ValueError(f"{v!r} is not DEVICE:INTERFACE")
            return {"device": m.group(1), "interface": m.group(2)}
        raise ValueError("give the end as DEVICE:INTERFACE")

    @model_validator(mode="after")
    def _distinct(self):
        if self.a.device == self.b.device:
            raise ValueError("@b: both ends are on the same device")
        return self

    def ends(self) -> tuple[Endpoint, Endpoint]:
        return (self.a, self.b)


FLOW_ID = r"^[a-z][a-z0-9-]{0,31}$"  # also a rule / access-list name on the boundary devices


class FlowEnd(BaseModel):
    """One side of a flow: a zone, narrowed to the devices of a role, the sites under ``site`` and/or the
    ``devices`` named. Without any of them the side is the whole zone (matched by the boundary's interface,
    any address)."""
    model_config = ConfigDict(extra="forbid")
    zone: Zone
    role: Role | None = None
    site: str | None = None
    devices: list[str] = []

    @property
    def narrowed(self) -> bool:
        return self.role is not None or self.site is not None or bool(self.devices)


class Flow(_Obj):
    """A flow allowed across zone boundaries (the zone policy; everything else is denied). ``from``
    opens the connection to ``to`` (the direction); the boundary lets its replies back and nothing else."""
    id: Annotated[str, Field(pattern=FLOW_ID)] = ""
    description: Description | None = None
    from_: FlowEnd = Field(alias="from")
    to: FlowEnd
    protocol: Literal["tcp", "udp", "icmp"]
    ports: list[Annotated[int, Field(ge=1, le=65535)]] = []
    via: list[str] = []  # boundary device ids; empty: every boundary device between the two zones

    @model_validator(mode="after")
    def _shape(self):
        if self.from_.zone == self.to.zone:
            raise ValueError(f"@to.zone: the flow stays in zone {self.to.zone.value}; a flow crosses a boundary")
        if (self.protocol == "icmp") == bool(self.ports):
            raise ValueError("@ports: give destination ports for tcp and udp, none for icmp")
        if len(set(self.ports)) != len(self.ports):
            raise ValueError("@ports: a port is listed twice")
        return self
