"""QPACK (RFC 9204) with the static table only: encode and decode field sections.

What belongs here: the field-section encoder and decoder of HTTP/3, and the
static table (RFC 9204 Appendix A).

Strategy: we advertise a dynamic table capacity of 0 (the default of
SETTINGS_QPACK_MAX_TABLE_CAPACITY), so a conforming peer's field sections
refer only to the static table, and we never use the peer's dynamic table
either. That makes every field line context-free: no encoder or decoder
stream traffic, no blocked streams (head-of-line blocking is what QPACK's
dynamic table trades for compression), and an encoded field line can be
memoized like HPACK blocks are in the HTTP/2 code. Huffman coding is the
same code as HPACK's (RFC 7541 Appendix B), reused from ``hpack``. The
cost is compression: repeated custom fields are sent in full each time.
"""

from __future__ import annotations

from typing import Final

from hpack.exceptions import HPACKDecodingError
from hpack.huffman import HuffmanEncoder
from hpack.huffman_constants import REQUEST_CODES, REQUEST_CODES_LENGTH
from hpack.huffman_table import decode_huffman

from ._frames import H3Error, H3ErrorCode

__all__ = ["STATIC_TABLE", "decode_field_section", "encode_field_section", "field_section_size"]

STATIC_TABLE: Final[tuple[tuple[bytes, bytes], ...]] = (
    (b":authority", b""),
    (b":path", b"/"),
    (b"age", b"0"),
    (b"content-disposition", b""),
    (b"content-length", b"0"),
    (b"cookie", b""),
    (b"date", b""),
    (b"etag", b""),
    (b"if-modified-since", b""),
    (b"if-none-match", b""),
    (b"last-modified", b""),
    (b"link", b""),
    (b"location", b""),
    (b"referer", b""),
    (b"set-cookie", b""),
    (b":method", b"CONNECT"),
    (b":method", b"DELETE"),
    (b":method", b"GET"),
    (b":method", b"HEAD"),
    (b":method", b"OPTIONS"),
    (b":method", b"POST"),
    (b":method", b"PUT"),
    (b":scheme", b"http"),
    (b":scheme", b"https"),
    (b":status", b"103"),
    (b":status", b"200"),
    (b":status", b"304"),
    (b":status", b"404"),
    (b":status", b"503"),
    (b"accept", b"*/*"),
    (b"accept", b"application/dns-message"),
    (b"accept-encoding", b"gzip, deflate, br"),
    (b"accept-ranges", b"bytes"),
    (b"access-control-allow-headers", b"cache-control"),
    (b"access-control-allow-headers", b"content-type"),
    (b"access-control-allow-origin", b"*"),
    (b"cache-control", b"max-age=0"),
    (b"cache-control", b"max-age=2592000"),
    (b"cache-control", b"max-age=604800"),
    (b"cache-control", b"no-cache"),
    (b"cache-control", b"no-store"),
    (b"cache-control", b"public, max-age=31536000"),
    (b"content-encoding", b"br"),
    (b"content-encoding", b"gzip"),
    (b"content-type", b"application/dns-message"),
    (b"content-type", b"application/javascript"),
    (b"content-type", b"application/json"),
    (b"content-type", b"application/x-www-form-urlencoded"),
    (b"content-type", b"image/gif"),
    (b"content-type", b"image/jpeg"),
    (b"content-type", b"image/png"),
    (b"content-type", b"text/css"),
    (b"content-type", b"text/html; charset=utf-8"),
    (b"content-type", b"text/plain"),
    (b"content-type", b"text/plain;charset=utf-8"),
    (b"range", b"bytes=0-"),
    (b"strict-transport-security", b"max-age=31536000"),
    (b"strict-transport-security", b"max-age=31536000; includesubdomains"),
    (b"strict-transport-security", b"max-age=31536000; includesubdomains; preload"),
    (b"vary", b"accept-encoding"),
    (b"vary", b"origin"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-xss-protection", b"1; mode=block"),
    (b":status", b"100"),
    (b":status", b"204"),
    (b":status", b"206"),
    (b":status", b"302"),
    (b":status", b"400"),
    (b":status", b"403"),
    (b":status", b"421"),
    (b":status", b"425"),
    (b":status", b"500"),
    (b"accept-language", b""),
    (b"access-control-allow-credentials", b"FALSE"),
    (b"access-control-allow-credentials", b"TRUE"),
    (b"access-control-allow-headers", b"*"),
    (b"access-control-allow-methods", b"get"),
    (b"access-control-allow-methods", b"get, post, options"),
    (b"access-control-allow-methods", b"options"),
    (b"access-control-expose-headers", b"content-length"),
    (b"access-control-request-headers", b"content-type"),
    (b"access-control-request-method", b"get"),
    (b"access-control-request-method", b"post"),
    (b"alt-svc", b"clear"),
    (b"authorization", b""),
    (
        b"content-security-policy",
        b"script-src 'none'; object-src 'none'; base-uri 'none'",
    ),
    (b"early-data", b"1"),
    (b"expect-ct", b""),
    (b"forwarded", b""),
    (b"if-range", b""),
    (b"origin", b""),
    (b"purpose", b"prefetch"),
    (b"server", b""),
    (b"timing-allow-origin", b"*"),
    (b"upgrade-insecure-requests", b"1"),
    (b"user-agent", b""),
    (b"x-forwarded-for", b""),
    (b"x-frame-options", b"deny"),
    (b"x-frame-options", b"sameorigin"),
)

_EXACT: Final = {entry: index for index, entry in reversed(list(enumerate(STATIC_TABLE)))}
_NAMES: Final = {name: index for index, (name, _) in reversed(list(enumerate(STATIC_TABLE)))}
_HUFFMAN: Final = HuffmanEncoder(REQUEST_CODES, REQUEST_CODES_LENGTH)
#: Encoded field lines kept for reuse (a bound, not a policy: emptied when full).
_LINE_CACHE_SIZE: Final = 4096
_line_cache: dict[tuple[bytes, bytes], bytes] = {}
#: Every field section starts with Required Insert Count 0 and Base 0.
_PREFIX: Final = b"\x00\x00"
#: Per-field overhead in the size limit (RFC 9114 section 4.2.2, after RFC 7541).
FIELD_OVERHEAD: Final = 32


def _integer(value: int, prefix_bits: int, first: int) -> bytes:
    """An integer with an N-bit prefix (RFC 7541 section 5.1), ``first`` holding the flag bits."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes((first | value,))
    out = bytearray((first | limit,))
    value -= limit
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _string(value: bytes, prefix_bits: int, first: int) -> bytes:
    """A string literal: Huffman-coded when that is shorter."""
    coded = _HUFFMAN.encode(value) if len(value) > 2 else value
    if len(coded) < len(value):
        return _integer(len(coded), prefix_bits, first | (1 << prefix_bits)) + coded
    return _integer(len(value), prefix_bits, first) + value


def _encode_line(name: bytes, value: bytes) -> bytes:
    index = _EXACT.get((name, value))
    if index is not None:
        return _integer(index, 6, 0xC0)  # indexed field line, static
    index = _NAMES.get(name)
    if index is not None:
        return _integer(index, 4, 0x50) + _string(value, 7, 0x00)  # name reference, static
    return _string(name, 3, 0x20) + _string(value, 7, 0x00)  # literal name


def encode_field_section(fields: list[tuple[bytes, bytes]]) -> bytes:
    """Encode ``fields`` (lower-case names) as a QPACK field section."""
    cache = _line_cache
    parts = [_PREFIX]
    for field in fields:
        line = cache.get(field)
        if line is None:
            line = _encode_line(*field)
            if len(cache) >= _LINE_CACHE_SIZE:
                cache.clear()
            cache[field] = line
        parts.append(line)
    return b"".join(parts)


def field_section_size(fields: list[tuple[bytes, bytes]]) -> int:
    """The size RFC 9114 section 4.2.2 limits: names, values and 32 bytes per field."""
    return sum(len(n) + len(v) for n, v in fields) + FIELD_OVERHEAD * len(fields)


def _fail(why: str) -> H3Error:
    return H3Error(H3ErrorCode.QPACK_DECOMPRESSION_FAILED, why)


def _read_integer(data: bytes, pos: int, prefix_bits: int) -> tuple[int, int]:
    if pos >= len(data):
        raise _fail("truncated integer")
    limit = (1 << prefix_bits) - 1
    value = data[pos] & limit
    pos += 1
    if value < limit:
        return value, pos
    shift = 0
    while True:
        if pos >= len(data) or shift > 62:
            raise _fail("truncated or oversized integer")
        byte = data[pos]
        pos += 1
        value += (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def _read_string(data: bytes, pos: int, prefix_bits: int) -> tuple[bytes, int]:
    huffman = data[pos] & (1 << prefix_bits) if pos < len(data) else 0
    length, pos = _read_integer(data, pos, prefix_bits)
    end = pos + length
    if end > len(data):
        raise _fail("truncated string")
    raw = data[pos:end]
    if huffman:
        try:
            raw = decode_huffman(raw)
        except HPACKDecodingError as exc:
            raise _fail("invalid Huffman code") from exc
    return raw, end


def _static(index: int) -> tuple[bytes, bytes]:
    if index >= len(STATIC_TABLE):
        raise _fail(f"static table index {index} out of range")
    return STATIC_TABLE[index]


def decode_field_section(data: bytes, max_size: int) -> list[tuple[bytes, bytes]]:
    """Decode a field section that uses the static table only.

    Raises:
        H3Error: QPACK_DECOMPRESSION_FAILED for a malformed section or a
            reference to the dynamic table (we allowed none); a stream-level
            H3_EXCESSIVE_LOAD once the decoded size passes ``max_size``.
    """
    required, pos = _read_integer(data, 0, 8)
    if required != 0:
        raise _fail("a field section refers to the dynamic table, whose capacity is 0")
    _, pos = _read_integer(data, pos, 7)  # Base: meaningless without the dynamic table
    fields: list[tuple[bytes, bytes]] = []
    size = 0
    end = len(data)
    while pos < end:
        first = data[pos]
        if first & 0x80:  # indexed field line
            if not first & 0x40:
                raise _fail("dynamic table reference")
            index, pos = _read_integer(data, pos, 6)
            name, value = _static(index)
        elif first & 0x40:  # literal with name reference
            if not first & 0x10:
                raise _fail("dynamic table reference")
            index, pos = _read_integer(data, pos, 4)
            name = _static(index)[0]
            value, pos = _read_string(data, pos, 7)
        elif first & 0x20:  # literal with literal name
            name, pos = _read_string(data, pos, 3)
            value, pos = _read_string(data, pos, 7)
        else:  # post-base forms: dynamic table only
            raise _fail("dynamic table reference")
        size += len(name) + len(value) + FIELD_OVERHEAD
        if size > max_size:
            raise H3Error(
                H3ErrorCode.H3_EXCESSIVE_LOAD, "field section larger than allowed", stream=True
            )
        fields.append((name, value))
    return fields
