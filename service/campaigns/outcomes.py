"""Outcome classification: what a device's answer means for one inverter of a campaign, and rollback grouping.

Pure functions of (answer, values known so far) -> next state. The rules that keep the wire exactly-once:

- ``-1``, ``-5``, ``-6`` (and a write with no answer for the inverter) are *potentially applied*: the inverter
  becomes ``unverified`` and is decided by reading, never by writing again;
- ``-2`` (offline) was not applied: the inverter is retried in a later wave;
- ``-3``, ``-4``, ``-7`` are final;
- an inverter whose write chunk went on the wire without a recorded answer (``writing``, after a crash) is read:
  unchanged means verified not applied and it is written again (the one documented re-write); otherwise its
  read value decides like a read-back.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from service.campaigns.values import ValueKind, canonical, same
from service.campaigns.waves import MULTI_CONTROL_MAX, chunks
from service.db.models.campaign import TargetState
from service.givenergy import ControlResult, RemoteControlCode

OFFLINE = int(RemoteControlCode.OFFLINE)
POTENTIALLY_APPLIED = frozenset({int(RemoteControlCode.TIMEOUT), int(RemoteControlCode.SERVER_ERROR),
                                 int(RemoteControlCode.NO_SERVER_RESPONSE)})
REASONS = {
    -1: "timeout", -2: "offline", -3: "no_access", -4: "validation", -5: "server_error", -6: "no_server_response",
    -7: "locked",
}


@dataclass(frozen=True)
class Answer:
    """One inverter's answer to a multi-control call: a canonical value, or a failure with its code (``code`` is
    ``None`` for a failure without one, e.g. no answer for this inverter)."""

    value: str | None = None
    code: int | None = None
    ok: bool = True

    @classmethod
    def of(cls, result: ControlResult) -> Answer:
        """From the client's classified result."""
        if result.success:
            return cls(value=canonical(result.value))
        return cls(code=result.code, ok=False)

    @property
    def reason(self) -> str:
        """A short reason for a failure (``offline``, ``locked``, ``no_answer``...)."""
        if self.code is None:
            return "no_answer"
        return REASONS.get(self.code, f"code_{self.code}")


@dataclass(frozen=True)
class Step:
    """The next state of an inverter, with what was learnt."""

    state: TargetState
    reason: str | None = None
    value: str | None = None
    """The value the answer carried (read, or what the device reported storing)."""
    code: int | None = None


def after_read(answer: Answer, target: str, kind: ValueKind, *, skip_if_set: bool) -> Step:
    """The read before writing: the previous value (what rollback restores) and already-set detection."""
    if not answer.ok:
        if answer.code == OFFLINE or answer.code in POTENTIALLY_APPLIED or answer.code is None:
            # Nothing was written yet: reading again later is always safe.
            return Step(TargetState.RETRYING, answer.reason, code=answer.code)
        return Step(TargetState.FAILED, answer.reason, code=answer.code)
    if skip_if_set and same(answer.value, target, kind):
        return Step(TargetState.SKIPPED, "already_set", answer.value)
    return Step(TargetState.READY, None, answer.value)


def after_snapshot(answer: Answer) -> Step:
    """A read campaign's read."""
    if answer.ok:
        return Step(TargetState.RECORDED, None, answer.value)
    if answer.code == OFFLINE or answer.code in POTENTIALLY_APPLIED:
        return Step(TargetState.RETRYING, answer.reason, code=answer.code)
    return Step(TargetState.FAILED, answer.reason, code=answer.code)


def after_write(answer: Answer, target: str, kind: ValueKind, *, verify: bool, readable: bool = True) -> Step:
    """The device's answer to the write.

    Args:
        answer: The answer.
        target: The value written.
        kind: Its kind.
        verify: Read back before concluding.
        readable: ``False`` for write-only settings (restart): nothing can be read back.
    """
    if answer.ok:
        if verify and readable:
            return Step(TargetState.WRITTEN, None, answer.value)
        if not readable or answer.value is None or same(answer.value, target, kind):
            return Step(TargetState.APPLIED, None, answer.value)
        return Step(TargetState.APPLIED_MODIFIED, "device_stored_a_different_value", answer.value)
    if answer.code == OFFLINE:
        return Step(TargetState.RETRYING, answer.reason, code=answer.code)
    if answer.code is not None and answer.code not in POTENTIALLY_APPLIED and answer.code in REASONS:
        return Step(TargetState.FAILED, answer.reason, code=answer.code)
    if not readable:
        return Step(TargetState.FAILED, f"outcome_unknown_{answer.reason}", code=answer.code)
    return Step(TargetState.UNVERIFIED, answer.reason, code=answer.code)


def after_verify(answer: Answer, *, was: TargetState, target: str, previous: str | None, written: str | None,
                 kind: ValueKind) -> Step | None:
    """A read-back of an inverter that is ``written``, ``unverified`` or ``writing``.

    Returns:
        The next step, or ``None`` when the read failed (read again later; the caller counts attempts).
    """
    if not answer.ok:
        return None
    value = answer.value
    if same(value, target, kind):
        return Step(TargetState.APPLIED, None, value)
    if written is not None and same(value, written, kind):
        return Step(TargetState.APPLIED_MODIFIED, "device_stored_a_different_value", value)
    if previous is not None and same(value, previous, kind):
        if was is TargetState.WRITING:
            return Step(TargetState.READY, "rewrite_verified_not_applied", value)
        return Step(TargetState.NOT_APPLIED, "value_unchanged", value)
    return Step(TargetState.APPLIED_MODIFIED, "device_holds_another_value", value)


def rollback_check(answer: Answer, *, left: str | None, kind: ValueKind) -> Step:
    """Rollback's read: only an inverter still at the value the campaign left is put back."""
    if not answer.ok:
        return Step(TargetState.ROLLBACK_FAILED, answer.reason, code=answer.code)
    if left is not None and same(answer.value, left, kind):
        return Step(TargetState.ROLLBACK_READY, None, answer.value)
    return Step(TargetState.CHANGED_SINCE, "changed_since", answer.value)


def after_rollback_write(answer: Answer) -> Step:
    """The answer to a rollback write: read back unless it is a final or offline failure."""
    if answer.ok or answer.code is None or answer.code in POTENTIALLY_APPLIED:
        return Step(TargetState.ROLLBACK_WRITTEN, answer.reason if not answer.ok else None, answer.value,
                    answer.code)
    return Step(TargetState.ROLLBACK_FAILED, answer.reason, code=answer.code)


def after_rollback_verify(answer: Answer, *, was: TargetState, previous: str, left: str | None,
                          kind: ValueKind) -> Step | None:
    """The read-back of a rollback write (``None``: the read failed, read again later)."""
    if not answer.ok:
        return None
    if same(answer.value, previous, kind):
        return Step(TargetState.ROLLED_BACK, None, answer.value)
    if was is TargetState.ROLLBACK_WRITING and left is not None and same(answer.value, left, kind):
        return Step(TargetState.ROLLBACK_READY, "rewrite_verified_not_applied", answer.value)
    return Step(TargetState.ROLLBACK_FAILED, "value_not_restored", answer.value)


def rollback_groups(previous_values: Iterable[tuple[str, str]]) -> list[tuple[str, list[str]]]:
    """``(serial, previous value)`` pairs as one multi-write per distinct value per 1,000 serials.

    Returns:
        ``(value, serials)`` in value order, serials sorted, at most 1,000 per entry.
    """
    by_value: dict[str, list[str]] = defaultdict(list)
    for serial, value in previous_values:
        by_value[value].append(serial)
    return [(value, part) for value in sorted(by_value)
            for part in chunks(sorted(by_value[value]), MULTI_CONTROL_MAX)]
