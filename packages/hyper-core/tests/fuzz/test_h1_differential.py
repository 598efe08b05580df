"""The differential harness, quick and deterministic: our HTTP/1 codec vs h11 and llhttp.

What belongs here: the pytest face of ``h1diff`` (this folder): every seed of
the corpus, a few thousand generated and mutated inputs from fixed seeds,
and checks that the oracles are driven correctly (an ordinary message reads
the same in all three). ``nox -s fuzz`` runs the same policy over 100,000+
inputs; ``docs/guides/http1-parsing.md`` documents the policy.

Strategy: a failure prints the input, the three outcomes and the verdict;
hypothesis runs derandomized with no database, so a failure reproduces.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).parent))

from h1diff.corpus import SEEDS
from h1diff.generate import HypothesisChooser, RandomChooser, cuts, message_case, mutate
from h1diff.policy import DELIBERATE, QUIRKS, judge
from h1diff.subjects import Case, Message, run_h11, run_llhttp, run_native


def assert_policy(case: Case, split: list[int]) -> None:
    ours, pieces = run_native(case), run_native(case, split)
    h11, ll = run_h11(case), run_llhttp(case)
    verdict = judge(case, ours, pieces, h11, ll)
    assert verdict.ok, (
        f"{verdict.reason}\n  input: {case!r}\n  ours:   {ours}\n  pieces: {pieces}\n"
        f"  h11:    {h11}\n  llhttp: {ll}"
    )


def test_an_ordinary_exchange_reads_the_same_in_all_three() -> None:
    case = Case(
        "request",
        b"POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"
        b"POST /b HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"2;x=y\r\nde\r\n0\r\nX-T: 1\r\n\r\n",
    )
    expected = (
        Message((b"POST", b"/a", b"1.1"), ((b"host", b"a"), (b"content-length", b"3")), b"abc",
                (), True),
        Message((b"POST", b"/b", b"1.1"), ((b"host", b"a"), (b"transfer-encoding", b"chunked")),
                b"de", ((b"x-t", b"1"),), True),
    )  # fmt: skip
    for outcome in (run_native(case), run_h11(case), run_llhttp(case)):
        assert outcome.accepted, outcome.detail
        assert outcome.messages == expected


@pytest.mark.parametrize(
    ("request_", "data", "body"),
    [
        ("HEAD", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", b""),
        ("GET", b"HTTP/1.1 204 No Content\r\n\r\n", b""),
        ("GET", b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\nuntil close", b"until close"),
    ],
)
def test_client_side_framing_reads_the_same_in_all_three(
    request_: str, data: bytes, body: bytes
) -> None:
    case = Case("response", data, request_)
    outcomes = [run_native(case), run_h11(case), run_llhttp(case)]
    assert all(o.accepted for o in outcomes)
    assert {o.messages[-1].body for o in outcomes} == {body}


def test_a_smuggling_attempt_is_told_apart() -> None:
    # The oracles must not be so lenient that nothing is ever refused.
    case = Case(
        "request",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 03\r\n\r\nabc",
    )
    assert not run_h11(case).accepted
    assert not run_llhttp(case).accepted
    assert not run_native(case).accepted


@pytest.mark.parametrize("case", SEEDS, ids=range(len(SEEDS)))
def test_seed(case: Case) -> None:
    assert_policy(case, list(range(1, len(case.data))))


@pytest.mark.parametrize("seed", range(4))
def test_generated_and_mutated(seed: int) -> None:
    chooser = RandomChooser(random.Random(seed))
    for i in range(750):
        case = message_case(chooser) if i % 2 else mutate(chooser)
        assert_policy(case, cuts(chooser, len(case.data)))


@settings(
    max_examples=300,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(st.data())
def test_hypothesis_grammar(data: st.DataObject) -> None:
    chooser = HypothesisChooser(data)
    case = message_case(chooser) if data.draw(st.booleans()) else mutate(chooser)
    assert_policy(case, cuts(chooser, len(case.data)))


def test_the_allow_list_is_documented() -> None:
    page = (Path(__file__).parents[4] / "docs" / "guides" / "http1-parsing.md").read_text()
    for rule in DELIBERATE:
        assert f"`{rule.name}`" in page, rule.name
    for quirk in QUIRKS:
        assert f"`{quirk.name}`" in page, quirk.name
