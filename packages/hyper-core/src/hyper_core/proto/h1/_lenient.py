r"""The opt-in lenient rules for header lines, and where they stop.

What belongs here: what ``ignore_invalid_headers`` (server) and
``ignore_invalid_headers_in_responses`` /
``allow_spaces_after_header_name_in_responses`` (client) change in the
reading of a header section, and the lines they may never touch. The strict
grammar and the loop over lines are in ``_parse.py``; a line reaches this
module only after the strict grammar refused it and only when an option is
on, so none of this runs by default.

The rule (hyper's, through httparse, made stricter where framing is at
stake). With ``ignore_invalid`` an invalid header line is dropped, as if it
had not been sent, and the rest of the head is read on; except that these
lines are never dropped, and refuse the message as before (``400`` on a
server, ``ParseError`` on a client):

1. a line holding NUL, CR or LF (httparse refuses NUL and a lone CR too; a
   bare line ending is exactly where two parsers split a head differently);
2. a line whose name, as any parser could read it, is a framing field or
   Host: the bytes before its first colon (the whole line when it has
   none), lower-cased and kept to letters and digits, contain
   ``contentlength`` or ``transferencoding``, or are ``host``. So
   ``Content-Length : 5``, ``Transfer-Encoding\x0b: chunked``,
   ``Content-Length: 5\x01``, ``Transfer-Encoding chunked`` and
   ``Host\t: a`` are all refused: a front end that reads one of them as the
   field it resembles and a back end that drops it would disagree on where
   the message ends (request smuggling, response splitting) or where it
   goes;
3. a continuation line (it starts with SP or HTAB) after a line of rule 2's
   kind, valid or not: dropped, it would leave a value that an unfolding
   parser reads longer.

Dropped lines still count against ``max_headers`` and the size bounds
(those are checked on the raw lines first). Trailers are never read
leniently (hyper does the same).

``allow_space_before_colon`` reads ``Name  : value`` as ``Name: value``, as
RFC 9112 section 5.1 tells a proxy to do with a response; it is a client
option only, since the same section makes a server refuse such a request.
"""

from __future__ import annotations

import re
from typing import Final

from hyper_core.error import ParseError

__all__ = ["SPACED_FIELD_RE", "check_droppable", "is_protected_name"]

#: A field line with whitespace between the name and the colon.
SPACED_FIELD_RE: Final = re.compile(
    rb"([-!#$%&'*+.^_`|~0-9a-zA-Z]+)[ \t]+:[ \t]*"
    rb"((?:[\x21-\x7e\x80-\xff]+(?:[ \t]+[\x21-\x7e\x80-\xff]+)*)?)[ \t]*\r\n"
)
_NOT_ALNUM: Final = re.compile(rb"[^a-z0-9]+")
_NEVER_DROPPED_BYTES: Final = re.compile(rb"[\x00\r\n]")


def is_protected_name(raw: bytes) -> bool:
    """Whether a line whose name part is ``raw`` may be read as a framing field or Host."""
    name = _NOT_ALNUM.sub(b"", raw.lower())
    return b"contentlength" in name or b"transferencoding" in name or name == b"host"


def check_droppable(line: bytes, previous: bytes | None, why: str) -> bytes:
    """Return the name part of an invalid ``line`` that may be dropped, or refuse it.

    Args:
        line: The invalid line, without its CRLF.
        previous: The name part of the line before it (``None``: it is the
            first), for a continuation line.
        why: What is wrong with the line, for the error message.

    Returns:
        The name part of ``line``, which the next line's check needs.

    Raises:
        ParseError: the line may not be dropped (see the module docstring).
    """
    if _NEVER_DROPPED_BYTES.search(line) is not None:
        raise ParseError(f"{why} (never ignored: NUL, CR or LF)", status_hint=400)
    if line[:1] in (b" ", b"\t"):
        if previous is not None and is_protected_name(previous):
            raise ParseError(
                f"{why} (never ignored: it continues a framing or Host field)", status_hint=400
            )
        return previous if previous is not None else b""
    colon = line.find(b":")
    name = line if colon < 0 else line[:colon]
    if is_protected_name(name):
        raise ParseError(f"{why} (never ignored: a framing or Host field)", status_hint=400)
    return name
