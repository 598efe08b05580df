"""The ``nox -s fuzz`` runner: many inputs, three parsers, the policy, a report.

What belongs here: :func:`run` (judge ``inputs`` inputs from a seed) and the
command line (``python -m h1diff.run --inputs N [--seed S]``). The quick,
deterministic version of the same checks is ``test_h1_differential.py``.

Strategy: the inputs alternate between the grammar (:func:`message_case`)
and the mutation pass over the seed corpus, driven by one seeded
``random.Random`` (about 0.4 ms per input for all parsers together, where
hypothesis spends about 10 ms per draw); every 50th input is instead
drawn through hypothesis from the same grammar, so the runner also
exercises the strategies the pytest suite uses. Failures are grouped by
(verdict, our error, h11's, llhttp's) and the shortest input of each group
is printed; the exit status is 1 if any input failed.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import Counter, defaultdict
from typing import TextIO

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from .generate import HypothesisChooser, RandomChooser, cuts, message_case, mutate
from .policy import judge
from .subjects import Case, run_h11, run_llhttp, run_native

__all__ = ["check", "main", "run"]


def check(case: Case, split: list[int]) -> tuple[bool, str, str]:
    """Judge one input: ``(ok, reason, group key for reports)``."""
    ours = run_native(case)
    pieces = run_native(case, split)
    h11 = run_h11(case)
    ll = run_llhttp(case)
    verdict = judge(case, ours, pieces, h11, ll)
    key = (
        f"{verdict.reason} | ours: {ours.detail[:50]} | h11: {h11.detail[:40]} "
        f"| llhttp: {ll.detail[:50]}"
    )
    return verdict.ok, verdict.rule, key


def _hypothesis_cases(count: int, seed: int) -> list[Case]:
    cases: list[Case] = []

    @settings(
        max_examples=count,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
        deadline=None,
    )
    @given(st.data())
    def draw(data: st.DataObject) -> None:
        chooser = HypothesisChooser(data)
        cases.append(message_case(chooser) if data.draw(st.booleans()) else mutate(chooser))

    draw._hypothesis_internal_use_seed = seed  # type: ignore[attr-defined]
    draw()
    return cases


def run(inputs: int, seed: int, out: TextIO = sys.stdout) -> int:
    """Judge ``inputs`` inputs; print a report; return how many failed."""
    rng = random.Random(seed)
    chooser = RandomChooser(rng)
    drawn = _hypothesis_cases(max(inputs // 50, 1), seed)
    failures: dict[str, list[Case]] = defaultdict(list)
    rules: Counter[str] = Counter()
    start = time.monotonic()
    for i in range(inputs):
        if i % 50 == 0 and drawn:
            case = drawn.pop()
        elif i % 2:
            case = message_case(chooser)
        else:
            case = mutate(chooser)
        ok, rule, key = check(case, cuts(chooser, len(case.data)))
        if rule:
            rules[rule] += 1
        if not ok:
            failures[key].append(case)
    elapsed = time.monotonic() - start
    failed = sum(len(v) for v in failures.values())
    print(
        f"h1diff: {inputs} inputs in {elapsed:.1f} s (seed {seed}): {failed} failed; "
        f"deliberate differences and quirks applied: {dict(rules)}",
        file=out,
    )
    for key, cases in sorted(failures.items(), key=lambda kv: -len(kv[1])):
        shortest = min(cases, key=lambda c: len(c.data))
        print(f"  {len(cases)} x {key}\n      {shortest!r}", file=out)
    return failed


def main(argv: list[str] | None = None) -> int:
    """The command line; see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--inputs", type=int, default=100_000, help="how many inputs to judge")
    parser.add_argument("--seed", type=int, default=None, help="default: random, printed")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    return 1 if run(args.inputs, seed) else 0


if __name__ == "__main__":
    sys.exit(main())
