"""The receipts a worker holds: whatever the order of letting go, exactly the rest stay, in pop order."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from sergeant.loop.held import HeldReceipts


def receipts_of(pop: int, count: int) -> list[bytes]:
    return [f'{pop:04}:{position:04}'.encode() for position in range(count)]


@st.composite
def histories(draw: st.DrawFn) -> list[tuple[str, list[bytes]]]:
    """Pops of receipts, and releases of some of them (in order, shuffled, twice, or never held)."""
    steps: list[tuple[str, list[bytes]]] = []
    received: list[bytes] = []
    for pop in range(draw(st.integers(1, 4))):
        batch = receipts_of(pop, draw(st.integers(0, 12)))
        steps.append(('add', batch))
        received += batch
        for _ in range(draw(st.integers(0, 3))):
            chosen = draw(st.lists(st.sampled_from(received), max_size=8)) if received else []
            if draw(st.booleans()):  # a run in pop order, as a serial worker lets go
                start = draw(st.integers(0, len(received)))
                chosen = received[start : start + draw(st.integers(0, 15))]
            if draw(st.booleans()):
                chosen = [*chosen, b'never held']
            steps.append(('remove', chosen))
    return steps


@given(histories())
def test_exactly_the_receipts_not_let_go_stay_held_in_pop_order(
    history: list[tuple[str, list[bytes]]],
) -> None:
    held = HeldReceipts()
    expected: list[bytes] = []

    for action, receipts in history:
        if action == 'add':
            held.add(receipts)
            expected += receipts
        else:
            held.remove(receipts)
            expected = [receipt for receipt in expected if receipt not in set(receipts)]

        assert list(held) == expected


def test_letting_go_of_runs_across_pops_empties_it() -> None:
    held = HeldReceipts()
    first, second = receipts_of(0, 5), receipts_of(1, 5)
    held.add(first)
    held.add(second)

    held.remove(first[:3])
    assert list(held) == first[3:] + second

    held.remove(first[3:] + second[:2])
    assert list(held) == second[2:]

    held.remove(second[2:])
    assert list(held) == []


def test_a_receipt_still_running_keeps_its_later_ones_released() -> None:
    """A threaded worker: the first task runs long while the others finish."""
    held = HeldReceipts()
    batch = receipts_of(0, 6)
    held.add(batch)

    held.remove(batch[1:])
    assert list(held) == batch[:1]

    held.remove(batch[:1])
    assert list(held) == []
