import datetime as dt

import pytest
from pyros_common.domain.programs.priority import effective_priority
from pyros_common.domain.programs.quotas import (
    Grade,
    QuotaLedger,
    Semester,
    allocated_s,
    book,
    check_quota,
    consume,
    give_back,
    semester_night_time_s,
)
from pyros_common.domain.sky.night import night_bounds, night_time_s
from pyros_common.domain.sky.sites import SITES

SPM = SITES["gft-spm"]
H = 3600.0


def test_accept_within_quota() -> None:
    decision = check_quota(program_allocated_s=10 * H, booked_s=3 * H, used_s=4 * H, request_s=3 * H)
    assert decision.ok and decision.reason is None and decision.over_s == 0.0


def test_refuse_over_quota_says_by_how_much() -> None:
    decision = check_quota(program_allocated_s=10 * H, booked_s=3 * H, used_s=4 * H, request_s=4.5 * H)
    assert not decision.ok
    assert decision.over_s == pytest.approx(1.5 * H)
    assert decision.reason is not None
    assert "over quota by 5400 s (1.50 h)" in decision.reason
    assert "remaining 3.00 h" in decision.reason


def test_negative_inputs_refused() -> None:
    with pytest.raises(ValueError, match="request_s"):
        check_quota(10.0, 0.0, 0.0, -1.0)


def test_ledger_book_consume_and_give_back_on_cancel() -> None:
    ledger = QuotaLedger(allocated_s=10 * H)
    ledger = book(ledger, 6 * H)
    assert ledger.remaining_s == pytest.approx(4 * H)
    with pytest.raises(ValueError, match="over quota by"):
        book(ledger, 5 * H)
    ledger = consume(ledger, booked_s=2 * H, used_s=2.1 * H)  # observed, took a bit longer
    assert (ledger.booked_s, ledger.used_s) == pytest.approx((4 * H, 2.1 * H))
    # a sequence booked for 3 h is cancelled after 0.5 h on the sky: 2.5 h come back
    ledger = give_back(ledger, booked_s=3 * H, used_s=0.5 * H)
    assert ledger.booked_s == pytest.approx(1 * H)
    assert ledger.used_s == pytest.approx(2.6 * H)
    assert ledger.remaining_s == pytest.approx(6.4 * H)
    # now the 5 h request fits
    assert book(ledger, 5 * H).remaining_s == pytest.approx(1.4 * H)


def test_give_back_more_than_booked_is_an_error() -> None:
    with pytest.raises(ValueError, match="only"):
        give_back(QuotaLedger(allocated_s=H, booked_s=10.0), booked_s=20.0)


def test_semesters() -> None:
    assert Semester.of(dt.date(2025, 6, 30)) == Semester(2025, "A")
    assert Semester.of(dt.date(2025, 7, 1)) == Semester(2025, "B")
    b = Semester.parse("2025B")
    assert (b.first_night, b.last_night, str(b)) == (dt.date(2025, 7, 1), dt.date(2025, 12, 31), "2025B")
    with pytest.raises(ValueError):
        Semester(2025, "C")


def test_semester_night_time_is_plausible_and_winter_longer() -> None:
    a = semester_night_time_s(SPM, Semester(2025, "A"))
    b = semester_night_time_s(SPM, Semester(2025, "B"))
    # 181/184 nights of 7-11 h astronomical night at 31° N
    assert 181 * 7 * H < a < 181 * 11 * H
    assert 184 * 7 * H < b < 184 * 11 * H
    assert allocated_s(10.0, a) == pytest.approx(a / 10)
    with pytest.raises(ValueError):
        allocated_s(120.0, a)


def test_night_time_sums_night_bounds() -> None:
    first, last = dt.date(2025, 3, 1), dt.date(2025, 3, 7)
    expected = 0.0
    day = first
    while day <= last:
        start, end = night_bounds(SPM, day)
        expected += (end - start).total_seconds()
        day += dt.timedelta(days=1)
    assert night_time_s(SPM, first, last) == pytest.approx(expected, abs=60.0)


def test_grades_to_priority() -> None:
    assert effective_priority(Grade.A) > effective_priority(Grade.B) > effective_priority(Grade.C)
    # offsets never cross a class
    assert effective_priority(Grade.B, -5) > effective_priority(Grade.C, +5)
    assert effective_priority("C", 0, override=80) == 80
    with pytest.raises(ValueError):
        effective_priority(Grade.A, 6)
