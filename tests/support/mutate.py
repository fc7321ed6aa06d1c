"""Hypothesis strategies that damage an SNMP message the way a broken or hostile agent would: truncated, a bit
flipped, a TLV's tag or length replaced (huge and invalid lengths included), bytes inserted. A damage is
drawn without seeing the message (so a test can apply it to one it only has later, such as an answer to a
request with a fresh ID) and always changes it."""
from __future__ import annotations

from typing import NamedTuple

from hypothesis import strategies as st

from jinbao_netops.collectors import wire

# a TLV's length as an agent might send it: short form, long form with 1-4 octets, and what BER or SNMP forbids
LENGTHS = st.one_of(
    st.integers(0, 0x7F).map(lambda n: bytes((n,))),
    st.integers(1, 4).flatmap(lambda k: st.integers(0, 256 ** k - 1).map(lambda n: bytes((0x80 | k,)) + n.to_bytes(k, "big"))),
    st.sampled_from([b"\x80", b"\x84\xff\xff\xff\xff", b"\x85\x00\x00\x00\x00\x10", b"\xff"]),
)
AT = st.integers(0, 1 << 16)  # a position, taken modulo what the message has


def tlv_starts(buf: bytes) -> list[tuple[int, int]]:
    """(offset of the tag, offset of the contents) of every TLV in ``buf``, nested ones included: constructed
    types, and OCTET STRINGs whose contents parse as BER (SNMPv3's security parameters)."""
    out: list[tuple[int, int]] = []

    def walk(i: int, end: int) -> None:
        while i < end:
            try:
                tag, s, e = wire.header(buf, i)
            except wire.WireError:
                return
            if e > end:
                return
            out.append((i, s))
            if tag & 0x20 or tag == 0x04:
                walk(s, e)
            i = e

    walk(0, len(buf))
    return out


def _flip(buf: bytes, at: int, mask: int) -> bytes:
    return buf[:at] + bytes((buf[at] ^ mask,)) + buf[at + 1:]


class Damage(NamedTuple):
    kind: str     # truncate, flip, tag, length, insert
    at: int
    value: object

    def __call__(self, buf: bytes) -> bytes:
        starts = tlv_starts(buf) or [(0, 1)]
        if self.kind == "truncate":
            return buf[:self.at % len(buf)]
        if self.kind == "flip":
            return _flip(buf, self.at % len(buf), 1 << self.value)
        if self.kind == "tag":
            return _flip(buf, starts[self.at % len(starts)][0], self.value)
        if self.kind == "length":
            tag_at, contents = starts[self.at % len(starts)]
            out = buf[:tag_at + 1] + self.value + buf[contents:]
            return out if out != buf else _flip(buf, tag_at + 1, 1)
        return buf[:self.at % (len(buf) + 1)] + self.value + buf[self.at % (len(buf) + 1):]


DAMAGES = st.one_of(
    st.builds(Damage, st.just("truncate"), AT, st.none()),
    st.builds(Damage, st.just("flip"), AT, st.integers(0, 7)),
    st.builds(Damage, st.just("tag"), AT, st.integers(1, 255)),
    st.builds(Damage, st.just("length"), AT, LENGTHS),
    st.builds(Damage, st.just("insert"), AT, st.binary(min_size=1, max_size=16)),
)


def damaged(buf: bytes) -> st.SearchStrategy[bytes]:
    """``buf`` with one drawn damage."""
    return DAMAGES.map(lambda d: d(buf))
