"""The upload state machine, checked over every pair of statuses."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared import states
from shared.states import (
    ALL_STATUSES,
    CREATED,
    CREATING,
    DELETED,
    EXPIRED,
    FAILED,
    PROCESSING,
    READY,
    UPLOADED,
)

# The whole table, written out independently of the module: (from, to) pairs that are allowed.
EXPECTED_MOVES = {
    (CREATING, CREATED),
    (UPLOADED, CREATED),  # only when VOD says the source is still Uploading (cleanup)
    (CREATED, UPLOADED),
    (CREATED, PROCESSING),
    (UPLOADED, PROCESSING),
    (CREATED, READY),
    (UPLOADED, READY),
    (PROCESSING, READY),
    (CREATED, FAILED),
    (UPLOADED, FAILED),
    (PROCESSING, FAILED),
    (CREATED, EXPIRED),
    (CREATED, DELETED),
    (UPLOADED, DELETED),
    (PROCESSING, DELETED),
    (READY, DELETED),
    (FAILED, DELETED),
}

ALL_PAIRS = list(itertools.product(ALL_STATUSES, repeat=2))


@pytest.mark.parametrize(("frm", "to"), ALL_PAIRS)
def test_can_move_matches_the_table_for_every_pair(frm: str, to: str) -> None:
    assert states.can_move(frm, to) is ((frm, to) in EXPECTED_MOVES)


@pytest.mark.parametrize("to", ALL_STATUSES)
def test_allowed_from_is_the_column_of_the_table(to: str) -> None:
    expected = frozenset(frm for frm, target in EXPECTED_MOVES if target == to)
    assert states.allowed_from(to) == expected
    assert isinstance(states.allowed_from(to), frozenset)


@pytest.mark.parametrize(("frm", "to"), ALL_PAIRS)
def test_every_move_but_the_one_back_to_created_goes_strictly_forward(frm: str, to: str) -> None:
    if (frm, to) == (UPLOADED, CREATED):
        return
    if states.can_move(frm, to):
        assert states.rank(to) > states.rank(frm)
    if states.rank(to) <= states.rank(frm):
        assert not states.can_move(frm, to)


@pytest.mark.parametrize("status", ALL_STATUSES)
def test_no_status_moves_to_itself(status: str) -> None:
    assert not states.can_move(status, status)


@pytest.mark.parametrize("terminal", [EXPIRED, DELETED])
def test_terminal_statuses_have_no_way_out(terminal: str) -> None:
    assert states.is_terminal(terminal)
    assert not any(states.can_move(terminal, to) for to in ALL_STATUSES)


@pytest.mark.parametrize("final", [READY, FAILED])
def test_ready_and_failed_only_lead_to_deleted(final: str) -> None:
    assert {to for to in ALL_STATUSES if states.can_move(final, to)} == {DELETED}
    assert not states.can_move(final, EXPIRED)
    assert not states.can_move(FAILED, READY)
    assert not states.can_move(READY, FAILED)


def test_creating_is_internal_and_only_inserted() -> None:
    assert states.allowed_from(CREATING) == frozenset()
    assert CREATING not in states.PUBLIC_STATUSES
    assert {to for to in ALL_STATUSES if states.can_move(CREATING, to)} == {CREATED}
    assert {CREATING, CREATED} == states.PENDING_STATUSES


def test_only_created_uploads_expire() -> None:
    assert states.allowed_from(EXPIRED) == {CREATED}


def test_non_terminal_statuses_are_not_terminal() -> None:
    assert [s for s in ALL_STATUSES if states.is_terminal(s)] == [EXPIRED, DELETED]


@given(st.lists(st.sampled_from(ALL_STATUSES), max_size=12))
def test_any_sequence_of_accepted_moves_never_revisits_a_status(targets: list[str]) -> None:
    # Apply moves the way the store does (conditional on the current status): whatever order
    # events arrive in, the path is strictly increasing in rank and never repeats a status.
    # The one backwards move (uploaded -> created) is cleanup's, after asking VOD: never an event's.
    current = CREATING
    seen = [current]
    for to in targets:
        if states.can_move(current, to) and (current, to) != (UPLOADED, CREATED):
            current = to
            seen.append(current)
    assert len(seen) == len(set(seen))
    assert [states.rank(s) for s in seen] == sorted({states.rank(s) for s in seen})


def test_the_only_move_back_is_uploaded_to_created() -> None:
    backwards = {
        (a, b)
        for a in states.ALL_STATUSES
        for b in states.ALL_STATUSES
        if states.can_move(a, b) and states.rank(b) < states.rank(a)
    }
    assert backwards == {(UPLOADED, CREATED)}


@pytest.mark.parametrize("bad", ["", "Created", "done", "CREATING"])
def test_unknown_statuses_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="unknown upload status"):
        states.allowed_from(bad)
    with pytest.raises(ValueError, match="unknown upload status"):
        states.can_move(bad, CREATED)
    with pytest.raises(ValueError, match="unknown upload status"):
        states.can_move(CREATED, bad)
    with pytest.raises(ValueError, match="unknown upload status"):
        states.rank(bad)


@pytest.mark.parametrize(
    ("vod_status", "ours"),
    [
        ("Uploading", CREATED),
        ("UploadSucc", UPLOADED),
        ("Transcoding", PROCESSING),
        ("Checking", PROCESSING),
        ("Normal", READY),
        ("UploadFail", FAILED),
        ("TranscodeFail", FAILED),
        ("ProduceFail", FAILED),
        ("Blocked", FAILED),
        ("normal", READY),
        (" UPLOADSUCC ", UPLOADED),
    ],
)
def test_vod_statuses_map_to_ours(vod_status: str, ours: str) -> None:
    assert states.status_from_vod(vod_status) == ours


@pytest.mark.parametrize("vod_status", [None, "", "Deleted", "Unknown", "Uploading2"])
def test_unknown_vod_statuses_map_to_none(vod_status: str | None) -> None:
    assert states.status_from_vod(vod_status) is None
