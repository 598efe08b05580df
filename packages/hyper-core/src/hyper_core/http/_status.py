"""HTTP status codes.

What belongs here: :class:`StatusCode` and the table of registered codes.

Strategy: a status code is an ``int`` (so ``StatusCode.OK == 200``), limited
to the three-digit range 100-999 that RFC 9110 section 15 allows on the wire.
Every one of the 900 possible instances is created once at import and
``StatusCode(n)`` returns the shared instance: building a response never
allocates a status object and never checks the range twice.

The names and reason phrases come from the IANA "HTTP Status Code Registry"
(https://www.iana.org/assignments/http-status-codes). Codes the registry marks
"(Unused)" (306, 418) and temporary registrations get no constant and an
empty reason phrase, like any other unregistered code.
"""

from __future__ import annotations

import operator
from typing import ClassVar, final

from hyper_core.error import InvalidStatusCode

__all__ = ["StatusCode"]

# (code, constant name, reason phrase): the IANA registry, in order.
_REGISTRY: tuple[tuple[int, str, str], ...] = (
    (100, "CONTINUE", "Continue"),
    (101, "SWITCHING_PROTOCOLS", "Switching Protocols"),
    (102, "PROCESSING", "Processing"),
    (103, "EARLY_HINTS", "Early Hints"),
    (200, "OK", "OK"),
    (201, "CREATED", "Created"),
    (202, "ACCEPTED", "Accepted"),
    (203, "NON_AUTHORITATIVE_INFORMATION", "Non-Authoritative Information"),
    (204, "NO_CONTENT", "No Content"),
    (205, "RESET_CONTENT", "Reset Content"),
    (206, "PARTIAL_CONTENT", "Partial Content"),
    (207, "MULTI_STATUS", "Multi-Status"),
    (208, "ALREADY_REPORTED", "Already Reported"),
    (226, "IM_USED", "IM Used"),
    (300, "MULTIPLE_CHOICES", "Multiple Choices"),
    (301, "MOVED_PERMANENTLY", "Moved Permanently"),
    (302, "FOUND", "Found"),
    (303, "SEE_OTHER", "See Other"),
    (304, "NOT_MODIFIED", "Not Modified"),
    (305, "USE_PROXY", "Use Proxy"),
    (307, "TEMPORARY_REDIRECT", "Temporary Redirect"),
    (308, "PERMANENT_REDIRECT", "Permanent Redirect"),
    (400, "BAD_REQUEST", "Bad Request"),
    (401, "UNAUTHORIZED", "Unauthorized"),
    (402, "PAYMENT_REQUIRED", "Payment Required"),
    (403, "FORBIDDEN", "Forbidden"),
    (404, "NOT_FOUND", "Not Found"),
    (405, "METHOD_NOT_ALLOWED", "Method Not Allowed"),
    (406, "NOT_ACCEPTABLE", "Not Acceptable"),
    (407, "PROXY_AUTHENTICATION_REQUIRED", "Proxy Authentication Required"),
    (408, "REQUEST_TIMEOUT", "Request Timeout"),
    (409, "CONFLICT", "Conflict"),
    (410, "GONE", "Gone"),
    (411, "LENGTH_REQUIRED", "Length Required"),
    (412, "PRECONDITION_FAILED", "Precondition Failed"),
    (413, "CONTENT_TOO_LARGE", "Content Too Large"),
    (414, "URI_TOO_LONG", "URI Too Long"),
    (415, "UNSUPPORTED_MEDIA_TYPE", "Unsupported Media Type"),
    (416, "RANGE_NOT_SATISFIABLE", "Range Not Satisfiable"),
    (417, "EXPECTATION_FAILED", "Expectation Failed"),
    (421, "MISDIRECTED_REQUEST", "Misdirected Request"),
    (422, "UNPROCESSABLE_CONTENT", "Unprocessable Content"),
    (423, "LOCKED", "Locked"),
    (424, "FAILED_DEPENDENCY", "Failed Dependency"),
    (425, "TOO_EARLY", "Too Early"),
    (426, "UPGRADE_REQUIRED", "Upgrade Required"),
    (428, "PRECONDITION_REQUIRED", "Precondition Required"),
    (429, "TOO_MANY_REQUESTS", "Too Many Requests"),
    (431, "REQUEST_HEADER_FIELDS_TOO_LARGE", "Request Header Fields Too Large"),
    (451, "UNAVAILABLE_FOR_LEGAL_REASONS", "Unavailable For Legal Reasons"),
    (500, "INTERNAL_SERVER_ERROR", "Internal Server Error"),
    (501, "NOT_IMPLEMENTED", "Not Implemented"),
    (502, "BAD_GATEWAY", "Bad Gateway"),
    (503, "SERVICE_UNAVAILABLE", "Service Unavailable"),
    (504, "GATEWAY_TIMEOUT", "Gateway Timeout"),
    (505, "HTTP_VERSION_NOT_SUPPORTED", "HTTP Version Not Supported"),
    (506, "VARIANT_ALSO_NEGOTIATES", "Variant Also Negotiates"),
    (507, "INSUFFICIENT_STORAGE", "Insufficient Storage"),
    (508, "LOOP_DETECTED", "Loop Detected"),
    # Registered but marked obsolete (RFC 2774 moved to Historic); still sent.
    (510, "NOT_EXTENDED", "Not Extended"),
    (511, "NETWORK_AUTHENTICATION_REQUIRED", "Network Authentication Required"),
)

_REASONS: dict[int, str] = {code: reason for code, _, reason in _REGISTRY}


@final
class StatusCode(int):
    """An HTTP status code, 100 through 999 (RFC 9110 section 15).

    Every registered code is a class attribute (``StatusCode.NOT_FOUND``).
    A status code compares and hashes equal to the plain ``int``.

    Raises:
        InvalidStatusCode: If the code is outside 100-999.
        TypeError: If the value is not an integer.
    """

    __slots__ = ()

    CONTINUE: ClassVar[StatusCode]
    SWITCHING_PROTOCOLS: ClassVar[StatusCode]
    PROCESSING: ClassVar[StatusCode]
    EARLY_HINTS: ClassVar[StatusCode]
    OK: ClassVar[StatusCode]
    CREATED: ClassVar[StatusCode]
    ACCEPTED: ClassVar[StatusCode]
    NON_AUTHORITATIVE_INFORMATION: ClassVar[StatusCode]
    NO_CONTENT: ClassVar[StatusCode]
    RESET_CONTENT: ClassVar[StatusCode]
    PARTIAL_CONTENT: ClassVar[StatusCode]
    MULTI_STATUS: ClassVar[StatusCode]
    ALREADY_REPORTED: ClassVar[StatusCode]
    IM_USED: ClassVar[StatusCode]
    MULTIPLE_CHOICES: ClassVar[StatusCode]
    MOVED_PERMANENTLY: ClassVar[StatusCode]
    FOUND: ClassVar[StatusCode]
    SEE_OTHER: ClassVar[StatusCode]
    NOT_MODIFIED: ClassVar[StatusCode]
    USE_PROXY: ClassVar[StatusCode]
    TEMPORARY_REDIRECT: ClassVar[StatusCode]
    PERMANENT_REDIRECT: ClassVar[StatusCode]
    BAD_REQUEST: ClassVar[StatusCode]
    UNAUTHORIZED: ClassVar[StatusCode]
    PAYMENT_REQUIRED: ClassVar[StatusCode]
    FORBIDDEN: ClassVar[StatusCode]
    NOT_FOUND: ClassVar[StatusCode]
    METHOD_NOT_ALLOWED: ClassVar[StatusCode]
    NOT_ACCEPTABLE: ClassVar[StatusCode]
    PROXY_AUTHENTICATION_REQUIRED: ClassVar[StatusCode]
    REQUEST_TIMEOUT: ClassVar[StatusCode]
    CONFLICT: ClassVar[StatusCode]
    GONE: ClassVar[StatusCode]
    LENGTH_REQUIRED: ClassVar[StatusCode]
    PRECONDITION_FAILED: ClassVar[StatusCode]
    CONTENT_TOO_LARGE: ClassVar[StatusCode]
    URI_TOO_LONG: ClassVar[StatusCode]
    UNSUPPORTED_MEDIA_TYPE: ClassVar[StatusCode]
    RANGE_NOT_SATISFIABLE: ClassVar[StatusCode]
    EXPECTATION_FAILED: ClassVar[StatusCode]
    MISDIRECTED_REQUEST: ClassVar[StatusCode]
    UNPROCESSABLE_CONTENT: ClassVar[StatusCode]
    LOCKED: ClassVar[StatusCode]
    FAILED_DEPENDENCY: ClassVar[StatusCode]
    TOO_EARLY: ClassVar[StatusCode]
    UPGRADE_REQUIRED: ClassVar[StatusCode]
    PRECONDITION_REQUIRED: ClassVar[StatusCode]
    TOO_MANY_REQUESTS: ClassVar[StatusCode]
    REQUEST_HEADER_FIELDS_TOO_LARGE: ClassVar[StatusCode]
    UNAVAILABLE_FOR_LEGAL_REASONS: ClassVar[StatusCode]
    INTERNAL_SERVER_ERROR: ClassVar[StatusCode]
    NOT_IMPLEMENTED: ClassVar[StatusCode]
    BAD_GATEWAY: ClassVar[StatusCode]
    SERVICE_UNAVAILABLE: ClassVar[StatusCode]
    GATEWAY_TIMEOUT: ClassVar[StatusCode]
    HTTP_VERSION_NOT_SUPPORTED: ClassVar[StatusCode]
    VARIANT_ALSO_NEGOTIATES: ClassVar[StatusCode]
    INSUFFICIENT_STORAGE: ClassVar[StatusCode]
    LOOP_DETECTED: ClassVar[StatusCode]
    NOT_EXTENDED: ClassVar[StatusCode]
    NETWORK_AUTHENTICATION_REQUIRED: ClassVar[StatusCode]

    def __new__(cls, code: int) -> StatusCode:
        # Exact-type check first: ``dict.get(200.0)`` would also hit, and a
        # float status is a bug in the caller, not a status.
        if type(code) is int:
            cached = _BY_CODE.get(code)
            if cached is not None:
                return cached
            raise InvalidStatusCode(f"invalid status code {code}: must be 100-999")
        if type(code) is StatusCode:
            return code
        if isinstance(code, bool):
            raise TypeError("a status code must be an int, not bool")
        try:
            index = operator.index(code)
        except TypeError:
            raise TypeError(f"a status code must be an int, not {type(code).__name__}") from None
        return cls(index)

    @property
    def reason(self) -> str:
        """The canonical reason phrase, or ``""`` for an unregistered code."""
        return _REASONS.get(self, "")

    def is_informational(self) -> bool:
        """Whether the code is 1xx."""
        return 100 <= self < 200

    def is_success(self) -> bool:
        """Whether the code is 2xx."""
        return 200 <= self < 300

    def is_redirection(self) -> bool:
        """Whether the code is 3xx."""
        return 300 <= self < 400

    def is_client_error(self) -> bool:
        """Whether the code is 4xx."""
        return 400 <= self < 500

    def is_server_error(self) -> bool:
        """Whether the code is 5xx."""
        return 500 <= self < 600

    def __repr__(self) -> str:
        return f"StatusCode({int.__repr__(self)})"

    # int's str() falls back to repr(); keep the plain number for str() and
    # f-strings, which write it on the wire.
    __str__ = int.__repr__


_BY_CODE: dict[int, StatusCode] = {code: int.__new__(StatusCode, code) for code in range(100, 1000)}
for _code, _name, _ in _REGISTRY:
    setattr(StatusCode, _name, _BY_CODE[_code])
