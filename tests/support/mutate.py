"""Hypothesis strategies that damage an SNMP message the way a broken or hostile agent would: truncated, a bit
flipped, a TLV's tag or length replaced (huge and invalid lengths included), bytes inserted. Every result
differs from the message it was made from."""
from __future__ import annotations

from hypothesis import strategies as st

from jinbao_netops.collectors import wire

# a TLV's length as an agent might send it: short form, long form with 1-4 octets, and what BER or SNMP forbids
LENGTHS = st.one_of(
    st.integers(0, 0x7F).map(lambda n: bytes((n,))),
    st.integers(1, 4).flatmap(lambda k: st.integers(0, 256 ** k - 1).map(lambda n: bytes((0x80 | k,)) + n.to_bytes(k, "big"))),
    st.sampled_from([b"\x80", b"\x84\xff\xff\xff\xff", b"\x85\x00\x00\x00\x00\x10", b"\xff"]),
)


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


def _put(buf: bytes, at: int, new: bytes, upto: int | None = None) -> bytes:
    return buf[:at] + new + buf[at + 1 if upto is None else upto:]


def damaged(buf: bytes) -> st.SearchStrategy[bytes]:
    """``buf`` truncated, with a bit flipped, a tag or a length replaced, or bytes inserted."""
    starts = tlv_starts(buf)
    n = len(buf)
    return st.one_of(
        st.integers(0, n - 1).map(lambda k: buf[:k]),
        st.tuples(st.integers(0, n - 1), st.integers(0, 7)).map(lambda p: _put(buf, p[0], bytes((buf[p[0]] ^ 1 << p[1],)))),
        st.tuples(st.sampled_from(starts), st.integers(0, 255)).map(lambda p: _put(buf, p[0][0], bytes((p[1],)))),
        st.tuples(st.sampled_from(starts), LENGTHS).map(lambda p: _put(buf, p[0][0] + 1, p[1], p[0][1])),
        st.tuples(st.integers(0, n), st.binary(min_size=1, max_size=16)).map(lambda p: buf[:p[0]] + p[1] + buf[p[0]:]),
    ).filter(lambda m: m != buf)
