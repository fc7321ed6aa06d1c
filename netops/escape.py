"""One escape function per target syntax: text a person typed (a name, a description, a carrier) or
a device sent is data, and every renderer of a syntax passes it through that syntax's function here
— never a quoting rule of its own at the call site. The inventory model already rejects control
characters in free text (and what a syntax cannot carry, such as '"' and '?' in a description);
these functions are the second line, so a value that slipped past the model still cannot add a line,
a word or a tag to what is rendered.

Targets: Rich console markup, HTML, a spreadsheet cell (``cell``: text that stays text), the POSIX shell, a
systemd unit's word (``systemd``), Graphviz DOT (quoted strings and HTML-like labels), a line of device configuration
(VRP, Comware, IOS and FRR's vtysh, and the firewalls' rules: USG, SecPath), an nftables ruleset, an
``ip -batch`` word, a value of a line-based daemon
configuration (snmpd.conf), an rsyslog RainerScript string constant, a PromQL string literal in a Grafana
query (``promql``), an Alertmanager label or annotation value (``alert``), a literal in an RE2 regular expression (an
Alertmanager silence's regex matcher: ``re2``), a configuration matcher's quoted value over several such literals
(``matcher_any``), the Jinja environments that render those files (``jinja``), and what
the suite sends a database engine: an SQL identifier, an SQL string literal, a libpq
connection-string value.
"""
from __future__ import annotations

import html as _html
import shlex
import unicodedata

from rich.markup import escape as _rich_escape

_INVISIBLE = {"Cc", "Cf", "Zl", "Zp", "Cs"}


def one_line(text: object) -> str:
    """The text on one line: every control or invisible character (line breaks among them) a space."""
    return "".join(" " if unicodedata.category(c) in _INVISIBLE else c for c in str(text))


def rich(text: object) -> str:
    """Rich console markup: ``[`` that could open a tag is escaped (``番禺[/]区`` prints as typed), and
    control characters are spaces (a tab or an ESC sequence would otherwise move the cursor or
    shrink the cell's measured width until its text is cut)."""
    return _rich_escape(one_line(text))


def html(text: object) -> str:
    """HTML text or a double-quoted attribute value."""
    return _html.escape(str(text), quote=True)


CELL_MAX = 32767          # the most characters a spreadsheet cell holds
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # what a spreadsheet reads as the start of a formula


def cell(text: object) -> tuple[str, bool]:
    """A spreadsheet cell's text: the characters XML 1.0 cannot carry (controls other than tab and line
    breaks) as spaces, cut to a cell's size; and whether it must be marked as text because a
    spreadsheet would read it as a formula (the writer stores it as a string with a quote prefix)."""
    s = "".join(" " if (unicodedata.category(c) in _INVISIBLE and c not in "\t\n\r") or c in "\ufffe\uffff" else c
                for c in str(text))[:CELL_MAX]
    return s, s.startswith(FORMULA_START)


def shell(text: object) -> str:
    """One POSIX shell word."""
    return shlex.quote(str(text))


def systemd(text: object) -> str:
    """One word of a systemd unit's command line (``ExecStart=``): one line,
    double-quoted with backslash and double quote escaped, ``%`` (a specifier) as ``%%`` and ``$``
    (an environment variable) as ``$$``."""
    return '"' + one_line(text).replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%").replace("$", "$$") + '"'


def dot(text: object) -> str:
    """A Graphviz DOT double-quoted string: a line break becomes DOT's own \\n (the suite writes
    two-line labels), any other control or invisible character a space."""
    lines = str(text).replace("\\", "\\\\").replace('"', '\\"').split("\n")
    return '"' + "\\n".join(one_line(line) for line in lines) + '"'


def dot_html(text: object) -> str:
    """Text inside a Graphviz HTML-like label (``label=<…>``: XML, so one line of escaped text)."""
    return html(one_line(text))


def cli(text: object) -> str:
    """Free text at the end of a line of device configuration (``description …``): one line, and no
    character the vendor CLIs interpret — ``?`` (context help in VRP, Comware and IOS), ``"`` (quoting)."""
    return one_line(text).replace("?", "？").replace('"', "'")


def cli_delimited(text: object, delimiter: str) -> str:
    """Free text between a delimiter pair on a line of device configuration (a login banner: IOS
    ``banner login ^C…^C``, Comware ``header login %…%``): :func:`cli`, and the delimiter's first character
    in its full-width form, so the text cannot end the banner and go on as a configuration line."""
    first = delimiter[0]
    return cli(text).replace(first, chr(ord(first) + 0xFEE0))


def conf(text: object) -> str:
    """A value at the end of a line of a line-based daemon configuration (snmpd.conf ``sysLocation``):
    one line; a leading ``#`` or quote cannot turn it into a comment or a quoted token."""
    return one_line(text).replace('"', "'").lstrip("#").strip()


ALERT_MAX = 512  # characters of an Alertmanager label or annotation value


def alert(text: object) -> str:
    """A label or annotation value posted to Alertmanager (text a device sent in a trap, such as ifDescr): JSON
    carries any text, but what the NOC's receivers render it into (a chat line, a mail subject, a page) must not
    gain a line or hide text — so one line (:func:`one_line`: a lone surrogate, which no UTF-8 carries, is a space
    too), cut to ALERT_MAX characters."""
    return one_line(text)[:ALERT_MAX]


_RE2_META = frozenset("\\.+*?()|[]{}^$")


def re2(text: object) -> str:
    """A literal inside a Go RE2 regular expression (the value of an Alertmanager silence's regex matcher, which
    Alertmanager anchors as ``^(?:…)$``): every metacharacter backslash-escaped as Go's ``regexp.QuoteMeta`` does,
    so ``.``, ``|`` or ``(`` in a name matches only itself and cannot widen the silence; nothing else changes."""
    return "".join("\\" + c if c in _RE2_META else c for c in str(text))


def rsyslog(text: object) -> str:
    """An rsyslog RainerScript string constant (``target="…"``, ``permittedPeer=["…"]``, a template's
    literal text): one line, double-quoted, backslash and double quote escaped with a backslash, and
    ``%`` (a property reference inside a template string) the full-width ``％``."""
    return '"' + one_line(text).replace("\\", "\\\\").replace('"', '\\"').replace("%", "％") + '"'


def ip_batch(text: object) -> str:
    """One word of ``ip -batch`` input: iproute2 cuts a line at any ``#`` (quoted or not), splits on
    blanks and honours "…" and '…' quotes without escapes — so the text is one line, double-quoted,
    with no double quote and no ``#`` inside."""
    return '"' + one_line(text).replace('"', "'").replace("#", "＃") + '"'


def nft(text: object) -> str:
    """A word or the inside of a double-quoted string of an nftables ruleset (``nft -f``): one line (a
    line break would start a new rule), no double quote (nft strings have no escapes)."""
    return one_line(text).replace('"', "'")


def jinja(target) -> dict:
    """Keyword arguments for a Jinja environment rendering one target syntax: every ``{{ value }}``
    goes through ``target`` (e.g. ``Environment(..., **escape.jinja(escape.cli))``)."""
    return {"finalize": lambda v: v if v is None else target(v)}


def _no_nul(text: object) -> str:
    from .errors import UsageError

    text = str(text)
    if "\0" in text:
        raise UsageError(f"{text!r}: a NUL character cannot be passed to a database")
    return text


def sql_identifier(text: object, quote: str) -> str:
    """An SQL identifier (a database, table or role name): enclosed in ``quote`` (a double quote for
    PostgreSQL, a backtick for MariaDB), the quote doubled inside."""
    return quote + _no_nul(text).replace(quote, quote * 2) + quote


def sql_string(text: object, prefix: str = "") -> str:
    """An SQL string literal whose backslashes are escapes (PostgreSQL's ``E'…'``, given ``prefix="E"``;
    MariaDB's default sql_mode): backslashes doubled, quotes doubled."""
    return f"{prefix}'" + _no_nul(text).replace("\\", "\\\\").replace("'", "''") + "'"


def conninfo(text: object) -> str:
    """A value in a libpq connection string (``dbname=…``): single-quoted, backslash and quote
    escaped with a backslash."""
    return "'" + _no_nul(text).replace("\\", "\\\\").replace("'", "\\'") + "'"


def pgpass(text: object) -> str:
    """A field of a libpq password file line (``host:port:db:user:password``): ``:`` and ``\\`` escaped
    with a backslash."""
    return _no_nul(text).replace("\\", "\\\\").replace(":", "\\:")


def promql(text: object) -> str:
    """A PromQL string literal (a label value in a matcher) that also stays itself inside a Grafana
    query: double-quoted, ``\\`` and ``"`` escaped; control, invisible and line-break characters, and
    ``$`` and ``[`` (where Grafana would expand ``$var``, ``${var}`` or ``[[var]]``) as ``\\uXXXX``
    (``\\UXXXXXXXX`` above U+FFFF) that PromQL decodes as Go does. A lone surrogate, which no UTF-8
    text can carry, becomes U+FFFD."""
    out = []
    for c in str(text):
        cat = unicodedata.category(c)
        if c in '\\"':
            out.append("\\" + c)
        elif cat == "Cs":
            out.append("\\ufffd")
        elif cat in _INVISIBLE or c in "$[":
            out.append(f"\\u{ord(c):04x}" if ord(c) < 0x10000 else f"\\U{ord(c):08x}")
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


def matcher_any(values) -> str:
    r"""The value of an Alertmanager matcher ``label=~…`` (``source_matchers``, ``target_matchers``) that matches
    exactly one of ``values``: each one line, an RE2 literal (:func:`re2`), joined with ``|``, double-quoted with
    ``\`` and ``"`` escaped as Alertmanager's matcher parser unescapes them. Alertmanager anchors the expression at both ends."""
    alts = "|".join(re2(one_line(v)) for v in values)
    return '"' + alts.replace("\\", "\\\\").replace('"', '\\"') + '"'
