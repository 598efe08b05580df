"""HTTP/3 wire pieces checked against independent implementations: QPACK and framing.

What belongs here: our static-table QPACK encoder and decoder against
pylsqpack (ls-qpack, the C library aioquic uses), both directions, and the
varint and SETTINGS rules of RFC 9000 / RFC 9114, bytes in and bytes out.
"""

from __future__ import annotations

import pylsqpack
import pytest

from hyper_core.proto.h3._frames import (
    H3Error,
    H3ErrorCode,
    encode_settings,
    encode_varint,
    parse_settings,
)
from hyper_core.proto.h3._qpack import (
    STATIC_TABLE,
    decode_field_section,
    encode_field_section,
)

FIELDS = [
    (b":method", b"GET"),
    (b":scheme", b"https"),
    (b":authority", b"example.com:8443"),
    (b":path", b"/search?q=http%2F3"),
    (b"user-agent", b"hyper-test/1.0"),
    (b"accept", b"*/*"),
    (b"x-custom-field", b"a value with spaces and \xc3\xa9"),
    (b"cookie", b"a=1; b=2"),
    (b"content-type", b"application/json"),
]


def test_static_table_matches_ls_qpack_indices() -> None:
    encoder = pylsqpack.Encoder()  # no dynamic table: static references only
    for index, entry in enumerate(STATIC_TABLE):
        _, block = encoder.encode(0, [entry])
        # 0x0000 prefix, then an indexed static field line 11xxxxxx.
        if index < 63:
            assert block == b"\x00\x00" + bytes([0xC0 | index]), (index, entry)
        assert decode_field_section(block, 1 << 20) == [entry]
    assert len(STATIC_TABLE) == 99


def test_our_field_sections_decode_in_ls_qpack() -> None:
    decoder = pylsqpack.Decoder(0, 0)
    for stream_id, fields in enumerate(
        [FIELDS, FIELDS[:1], [(b"x", b"")], [(b"a" * 300, b"b" * 5000)]]
    ):
        instructions, decoded = decoder.feed_header(stream_id * 4, encode_field_section(fields))
        assert instructions == b""
        assert decoded == fields


def test_ls_qpack_field_sections_decode_here() -> None:
    encoder = pylsqpack.Encoder()
    _, block = encoder.encode(0, FIELDS)
    assert decode_field_section(block, 1 << 20) == FIELDS


def test_dynamic_table_references_are_refused() -> None:
    # Required Insert Count 1: refers to a dynamic table we never allowed.
    with pytest.raises(H3Error) as info:
        decode_field_section(b"\x02\x00\x80", 1 << 20)
    assert info.value.code is H3ErrorCode.QPACK_DECOMPRESSION_FAILED
    # An indexed field line with post-base index (0001xxxx).
    with pytest.raises(H3Error):
        decode_field_section(b"\x00\x00\x10", 1 << 20)


@pytest.mark.parametrize(
    "data", [b"", b"\x00", b"\x00\x00\xff", b"\x00\x00\x5f", b"\x00\x00\x27\x05ab"]
)
def test_truncated_field_sections_are_errors(data: bytes) -> None:
    with pytest.raises(H3Error) as info:
        decode_field_section(data, 1 << 20)
    assert info.value.code is H3ErrorCode.QPACK_DECOMPRESSION_FAILED


def test_field_section_size_limit_counts_32_bytes_per_field() -> None:
    block = encode_field_section([(b"a", b"b")] * 10)  # 10 * (1 + 1 + 32) = 340
    assert len(decode_field_section(block, 340)) == 10
    with pytest.raises(H3Error) as info:
        decode_field_section(block, 339)
    assert info.value.code is H3ErrorCode.H3_EXCESSIVE_LOAD
    assert info.value.stream


@pytest.mark.parametrize(
    ("value", "wire"),
    [
        (37, b"\x25"),
        (15293, b"\x7b\xbd"),
        (494878333, b"\x9d\x7f\x3e\x7d"),
        (151288809941952652, b"\xc2\x19\x7c\x5e\xff\x14\xe8\x8c"),
    ],
)
def test_varints_match_rfc_9000_examples(value: int, wire: bytes) -> None:
    # RFC 9000 appendix A.1's sample encodings.
    assert encode_varint(value) == wire


def test_settings_round_trip_and_rejections() -> None:
    frame = encode_settings({0x6: 16384, 0x8: 1, 0x21: 7})
    assert frame[:1] == b"\x04"
    assert parse_settings(frame[2:]) == {0x6: 16384, 0x8: 1, 0x21: 7}
    for bad in ({0x2: 1}, {0x8: 2}):  # an HTTP/2 setting; a boolean out of range
        with pytest.raises(H3Error) as info:
            parse_settings(encode_settings(bad)[2:])
        assert info.value.code is H3ErrorCode.H3_SETTINGS_ERROR
    with pytest.raises(H3Error) as info:
        parse_settings(b"\x06\x01\x06\x02")  # a repeated identifier
    assert info.value.code is H3ErrorCode.H3_SETTINGS_ERROR
    with pytest.raises(H3Error) as info:
        parse_settings(b"\x06")  # cut short
    assert info.value.code is H3ErrorCode.H3_FRAME_ERROR
