from hypothesis import given
from hypothesis import strategies as st

from paywire import Response, Result, Subject, ValidatorComposite

outcomes = st.lists(st.tuples(st.booleans(), st.booleans(), st.text(min_size=1, max_size=4)), max_size=6)


@given(outcomes)
def test_composite_aggregates_until_a_chain_breaking_failure(spec: list[tuple[bool, bool, str]]) -> None:
    ran: list[int] = []

    def make(index: int, ok: bool, code: str):  # type: ignore[no-untyped-def]
        def validator(subject: Subject, response: Response) -> Result:
            ran.append(index)
            return Result.success() if ok else Result.failure(f"bad {code}", code)

        return validator

    composite = ValidatorComposite([(make(i, ok, code), breaks) for i, (ok, breaks, code) in enumerate(spec)])
    result = composite(Subject(), Response(200))

    stop = next((i for i, (ok, breaks, _) in enumerate(spec) if not ok and breaks), len(spec) - 1)
    expected_run = spec[: stop + 1]
    assert ran == list(range(len(expected_run)))
    assert result.ok == all(ok for ok, _, _ in expected_run)
    assert result.codes == tuple(code for ok, _, code in expected_run if not ok)
    assert result.messages == tuple(f"bad {code}" for ok, _, code in expected_run if not ok)


def test_plain_validators_do_not_break_the_chain() -> None:
    composite = ValidatorComposite([lambda s, r: Result.failure("a", "A"), lambda s, r: Result.failure("b", "B")])
    assert composite(Subject(), Response(400)).codes == ("A", "B")
