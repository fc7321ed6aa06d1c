"""One escape function per target syntax: text a person typed (a name, a description, a carrier) or
a device sent is data, and every renderer of a syntax passes it through that syntax's function here
— never a quoting rule of its own at the call site. The inventory model already rejects control
characters in free text; these functions are the second line (defence in depth).
"""
from __future__ import annotations

import html as _html
import shlex

from rich.markup import escape as _rich_escape


def rich(text: object) -> str:
    """Rich console markup: ``[`` that could open a tag is escaped (``番禺[/]区`` prints as typed)."""
    return _rich_escape(str(text))


def html(text: object) -> str:
    """HTML text or a double-quoted attribute value."""
    return _html.escape(str(text), quote=True)


def shell(text: object) -> str:
    """One POSIX shell word."""
    return shlex.quote(str(text))
