"""The parsing policy, as code: when our codec may differ from h11 and llhttp.

What belongs here: :func:`judge`, which says whether our outcome for one
input is acceptable, and :data:`DELIBERATE`, the allow-list of known,
documented differences (each with its RFC 9112 / RFC 9110 section and the
reason). ``docs/guides/http1-parsing.md`` renders the same table for users;
a rule added here is added there.

Strategy: the policy of issue 9, in three checks, in order:

1. Our codec fed the input in pieces says exactly what it says fed in one
   piece. Never allow-listed.
2. When all three parsers accept and both oracles frame every message the
   same way (same count, same bodies and trailers), ours frames them that
   way too. Never allow-listed: a body framed differently is a bug.
3. Otherwise our outcome equals h11's or llhttp's (where they disagree we
   may take either side), or a rule of :data:`DELIBERATE` explains the
   difference. A rule is tied to *our* stated reason (the error we raised)
   or to one exact behaviour, so that a new difference of another kind
   still fails. What both oracles reject and we accept, and what both
   accept and we reject, fall here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Final

from .subjects import Case, Outcome

__all__ = ["DELIBERATE", "QUIRKS", "Quirk", "Rule", "Verdict", "judge"]


@dataclass(frozen=True)
class Rule:
    """One deliberate difference from both oracles.

    Attributes:
        name: A stable identifier (used in reports and in the docs table).
        rfc: The section that allows or requires our behaviour.
        what: What we do, in one line.
        why: Why, in one or two lines.
        explains: Whether this rule covers our outcome for a case, given the
            outcomes of (ours, h11, llhttp).
    """

    name: str
    rfc: str
    what: str
    why: str
    explains: Callable[[Case, Outcome, Outcome, Outcome], bool]


def _refused_because(pattern: str) -> Callable[[Case, Outcome, Outcome, Outcome], bool]:
    """We refused, for the stated reason, after the same messages as an oracle."""
    reason = re.compile(pattern)

    def explains(case: Case, ours: Outcome, h11: Outcome, ll: Outcome) -> bool:
        if ours.accepted or reason.search(ours.detail) is None:
            return False
        n = len(ours.messages)
        return any(ours.messages == o.messages[:n] for o in (h11, ll))

    return explains


def _te_and_cl_request_closes(case: Case, ours: Outcome, h11: Outcome, ll: Outcome) -> bool:
    # h11 reads the chunked body and keeps the connection; we read the same
    # body and close after it, so the messages after it are not read.
    data = case.data.lower()
    if case.role != "request" or b"content-length" not in data:
        return False
    if b"transfer-encoding" not in data or not ours.accepted or not ours.messages:
        return False
    *before, last = ours.messages
    n = len(before)
    if last.keep_alive is not False or tuple(before) != h11.messages[:n]:
        return False
    return len(h11.messages) > n and replace(h11.messages[n], keep_alive=False) == last


#: Every deliberate difference from both oracles, in the docs table's order.
DELIBERATE: Final[tuple[Rule, ...]] = (
    Rule(
        "te-and-cl-request-closes",
        "RFC 9112 §6.1, §6.3 (3)",
        "A request with both Transfer-Encoding and Content-Length is read as "
        "chunked, Content-Length is removed, and the connection closes after it.",
        "The RFC's own rule for a server (h11 keeps the connection open; llhttp "
        "refuses the request). hyper does the same.",
        _te_and_cl_request_closes,
    ),
    Rule(
        "te-in-http10",
        "RFC 9112 §6.1",
        "Transfer-Encoding in an HTTP/1.0 request (400) or response is an error.",
        "The RFC says to treat the framing as faulty: an HTTP/1.0 peer may not "
        "know chunked, so two parsers could frame the message differently.",
        _refused_because(r"Transfer-Encoding in an HTTP/1\.0"),
    ),
    Rule(
        "framing-fields-in-trailers",
        "RFC 9110 §6.5.1",
        "Content-Length or Transfer-Encoding in a trailer section is an error (400).",
        "A trailer cannot frame the message it ends. h11 and llhttp refuse "
        "Content-Length there, and llhttp Transfer-Encoding in requests; we refuse "
        "both in both directions (hyper passes them to the application).",
        _refused_because(r"(?i)(content-length|transfer-encoding) in trailers"),
    ),
    Rule(
        "invalid-host",
        "RFC 9112 §3.2, RFC 9110 §7.2",
        'A Host value that is not uri-host [":" port] gets 400.',
        "The RFC requires 400 for an invalid Host; both oracles pass any value.",
        _refused_because(r"invalid Host"),
    ),
    Rule(
        "unsupported-version",
        "RFC 9112 §2.3, RFC 9110 §15.6.6",
        "Only HTTP/1.0 and HTTP/1.1 are read; another version gets 505 (a response: an error).",
        "hyper's behaviour; h11 accepts any digit.digit, llhttp 0.9 and 2.0 too.",
        _refused_because(r"unsupported HTTP version"),
    ),
    Rule(
        "target-form",
        "RFC 9112 §3.2",
        "The target must be in the form its method uses: origin-form, "
        "absolute-form, authority-form for CONNECT only, asterisk for OPTIONS "
        "only; otherwise 400.",
        "A target in no form cannot be routed safely; h11 passes any target, "
        "llhttp accepts `*` for any method.",
        _refused_because(
            r"asterisk-form target|invalid request target|CONNECT needs|invalid CONNECT target"
        ),
    ),
    Rule(
        "reason-phrase-controls",
        "RFC 9112 §4",
        "A reason phrase holding control bytes (other than HTAB) is an error.",
        "The grammar allows HTAB, SP, VCHAR and obs-text only; hyper (httparse) "
        "refuses the rest too.",
        _refused_because(r"invalid status line"),
    ),
)


@dataclass(frozen=True)
class Quirk:
    """A behaviour of one oracle that we do not share and the other oracle does not have.

    Where the oracles disagree we may side with either; a quirk names the
    side we did not take, so that an input combining quirks of both (each
    oracle refusing it for its own reason) is still judged.

    Attributes:
        oracle: ``"h11"`` or ``"llhttp"``.
        name: A stable identifier.
        what: The oracle's behaviour, in one line.
        rfc: The section that makes our side of it right.
        refused: A pattern of the oracle's error, when the quirk is a refusal
            (of something we and the other oracle accept).
        ours: A pattern of *our* error, when the quirk is an acceptance (of
            something we and the other oracle refuse).
    """

    oracle: str
    name: str
    what: str
    rfc: str
    refused: str = ""
    ours: str = ""


#: Where the oracles disagree, the side we did not take (the docs list these too).
QUIRKS: Final[tuple[Quirk, ...]] = (
    Quirk("h11", "leading-empty-line", "refuses an empty line before the request line",
          "RFC 9112 §2.2 (SHOULD ignore at least one)", r"no request line received"),
    Quirk("h11", "chunk-size-digits", "refuses a chunk size of more than 20 hex digits, "
          "leading zeros included", "RFC 9112 §7.1 (1*HEXDIG)", r"illegal chunk header"),
    Quirk("h11", "transfer-codings", "refuses every transfer coding but a lone `chunked` (501)",
          "RFC 9112 §6.3 (a response read until close)", r"Only Transfer-Encoding: chunked"),
    Quirk("h11", "http10-keep-alive", "closes after every HTTP/1.0 message",
          "RFC 9112 §9.3 (keep-alive on HTTP/1.0)"),
    Quirk("llhttp", "extension-methods", "refuses methods outside its table (e.g. `get`, `PURGE`)",
          "RFC 9110 §9.1 (a method is any token)", r"InvalidMethodError"),
    Quirk("llhttp", "trailing-whitespace", "refuses whitespace after a field value",
          "RFC 9112 §5 (OWS after the value)", r"Unexpected whitespace after header value"),
    Quirk("llhttp", "equal-content-lengths", "refuses a repeated, equal Content-Length",
          "RFC 9110 §8.6 (MAY accept equal values)",
          r"Duplicate Content-Length|Invalid character in Content-Length"),
    Quirk("llhttp", "te-with-cl", "refuses Transfer-Encoding with Content-Length",
          "RFC 9112 §6.3 (3) (Transfer-Encoding wins)",
          r"Content-Length can't be present with Transfer-Encoding|"
          r"Transfer-Encoding can't be present with Content-Length"),
    Quirk("llhttp", "chunk-syntax", "refuses whitespace after a chunk size and BWS in extensions",
          "RFC 9112 §7.1.1 (BWS in chunk-ext)",
          r"InvalidChunkSizeError|Invalid character in chunk extensions"),
    Quirk("llhttp", "te-trailing-whitespace", "refuses HTAB after `chunked` in a request",
          "RFC 9110 §5.5 (OWS around a field value is not part of it)",
          r"Request has invalid `Transfer-Encoding`"),
    Quirk("llhttp", "url-parser", "refuses some RFC 3986 targets (e.g. a `-` in a scheme)",
          "RFC 9112 §3.2", refused=r"InvalidUrlError"),
    Quirk("llhttp", "empty-transfer-encoding", "reads an empty Transfer-Encoding as absent",
          "RFC 9112 §6.1 (refused, as h11 does)", ours=r"empty member in Transfer-Encoding"),
    Quirk("llhttp", "bare-lf-between-messages", "skips a lone LF between pipelined messages",
          "RFC 9112 §2.2 (bare LF refused everywhere, as h11 refuses it there)",
          ours=r"bare LF"),
    Quirk("llhttp", "keep-alive-token-whitespace",
          "does not see `keep-alive` followed by whitespace in Connection (it closes)",
          "RFC 9110 §5.5 (OWS around a field value is not part of it)"),
    Quirk("llhttp", "informational-status", "takes a status below 100 as interim", "RFC 9110 §15",
          ours=r"invalid status code"),
    Quirk("llhttp", "request-line-spaces", "accepts several spaces between request-line parts",
          "RFC 9112 §3 (exactly one SP)", ours=r"invalid request line"),
    Quirk("llhttp", "host-count", "accepts an HTTP/1.1 request without Host, or with two",
          "RFC 9112 §3.2 (MUST respond 400)", ours=r"missing Host|more than one Host"),
    Quirk("llhttp", "transfer-codings", "reads `gzip, chunked` requests as chunked",
          "RFC 9112 §6.1 (501 for a coding not understood)", ours=r"unsupported transfer coding"),
    Quirk("h11", "obs-fold", "unfolds obsolete line folding in any message",
          "RFC 9112 §5.2 (a server MAY reject it; hyper does)", ours=r"obsolete line folding"),
    Quirk("h11", "control-bytes", "accepts control bytes other than NUL in field values",
          "RFC 9110 §5.5 (field-value is VCHAR, SP, HTAB, obs-text)",
          ours=r"control character|a bare CR|a NUL"),
    Quirk("h11", "bare-lf", "accepts LF alone as a line ending",
          "RFC 9112 §2.2 (MAY accept; two parsers that disagree are a smuggling vector)",
          ours=r"bare LF"),
    Quirk("h11", "content-length-list", "accepts a request Content-Length list of equal values",
          "RFC 9110 §8.6 (MAY accept; hyper refuses on requests)", ours=r"invalid Content-Length"),
    Quirk("h11", "version-digits", "accepts any HTTP/d.d version", "RFC 9112 §2.3",
          ours=r"unsupported HTTP version"),
)  # fmt: skip


def _explained(case: Case, ours: Outcome, oracle: Outcome, which: str) -> bool:
    """Our outcome equals ``oracle``'s up to where a documented quirk of it applies."""
    if ours == oracle:
        return True
    n = 0
    mine, theirs = ours.messages, oracle.messages
    while n < len(mine) and n < len(theirs) and mine[n] == theirs[n]:
        n += 1
    for quirk in QUIRKS:
        if quirk.oracle != which:
            continue
        if quirk.refused:
            if (
                not oracle.accepted
                and len(oracle.messages) == n
                and re.search(quirk.refused, oracle.detail) is not None
            ):
                return True
        elif quirk.ours:
            # The oracle went on where we refused (it got as far as we did).
            if (
                not ours.accepted
                and len(ours.messages) == n
                and re.search(quirk.ours, ours.detail) is not None
            ):
                return True
        elif n < len(mine) and n < len(theirs) and replace(mine[n], keep_alive=False) == theirs[n]:
            # The oracle closes where we keep the connection (closing is safe).
            if quirk.name == "http10-keep-alive" and mine[n].start[2] == b"1.0":
                return True
            if quirk.name == "keep-alive-token-whitespace" and re.search(
                rb"(?i)keep-alive[ \t]+\r\n", case.data
            ):
                return True
    return False


@dataclass(frozen=True)
class Verdict:
    """What :func:`judge` found: ``ok`` and, if not, why."""

    ok: bool
    reason: str = ""
    rule: str = ""  # the deliberate difference that applied, if any


def _framed_differently(ours: Outcome, oracle: Outcome) -> bool:
    a, b = ours.framing(), oracle.framing()
    n = min(len(a), len(b))
    if a[:n] != b[:n]:
        return True
    if len(a) == len(b):
        return False
    # We read fewer messages: fine only because we closed the connection
    # after our last one (a keep-alive decision, judged by the rules).
    return not (len(a) < len(b) and a and ours.messages[-1].keep_alive is False)


def judge(case: Case, ours: Outcome, pieces: Outcome, h11: Outcome, ll: Outcome) -> Verdict:
    """Apply the policy (see the module docstring) to one input.

    Args:
        case: The input.
        ours: Our codec's outcome, the stream fed in one piece.
        pieces: Our codec's outcome, the stream fed in random pieces.
        h11: Bare h11's outcome.
        ll: llhttp's outcome.
    """
    if pieces != ours:
        return Verdict(False, "our codec answers differently when fed in pieces")
    both = h11.accepted and ll.accepted and h11.framing() == ll.framing()
    if both and ours.accepted and _framed_differently(ours, h11):
        return Verdict(False, "both oracles frame the messages one way, we another")
    if ours in (h11, ll):
        return Verdict(True)
    if _explained(case, ours, h11, "h11") and _explained(case, ours, ll, "llhttp"):
        return Verdict(True, rule="quirks")
    for rule in DELIBERATE:
        if rule.explains(case, ours, h11, ll):
            return Verdict(True, rule=rule.name)
    if ours.accepted and not h11.accepted and not ll.accepted:
        return Verdict(False, "both oracles reject, we accept")
    if not ours.accepted and h11.accepted and ll.accepted:
        return Verdict(False, "both oracles accept, we reject")
    return Verdict(False, "we agree with neither oracle")
