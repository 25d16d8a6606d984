"""The campaign's lifecycle: which action moves it from which state to which (pure)."""

from __future__ import annotations

from service.core.errors import ConflictError
from service.db.models.campaign import CampaignState as S

MOVES: dict[str, dict[S, S]] = {
    "plan": {S.DRAFT: S.PLANNED},
    "approve": {S.PLANNED: S.APPROVED},
    "start": {S.PLANNED: S.RUNNING, S.APPROVED: S.RUNNING},
    "pause": {S.RUNNING: S.PAUSED},
    "resume": {S.PAUSED: S.RUNNING},
    "cancel": {S.DRAFT: S.CANCELLED, S.PLANNED: S.CANCELLED, S.APPROVED: S.CANCELLED, S.RUNNING: S.CANCELLED,
               S.PAUSED: S.CANCELLED},
    "abort": {S.RUNNING: S.ABORTED},
    "complete": {S.RUNNING: S.COMPLETED},
    "rollback": {S.COMPLETED: S.ROLLING_BACK, S.ABORTED: S.ROLLING_BACK, S.CANCELLED: S.ROLLING_BACK},
    "finish_rollback": {S.ROLLING_BACK: S.ROLLED_BACK},
}

UNFINISHED = frozenset({S.DRAFT, S.PLANNED, S.APPROVED, S.RUNNING, S.PAUSED, S.ROLLING_BACK})
"""States in which a campaign still may write (a second one on the same setting and inverters is refused)."""
ENGINE_STATES = frozenset({S.RUNNING, S.ROLLING_BACK, S.CANCELLED, S.ABORTED})
"""States in which ticks act (cancelled and aborted campaigns only finish reading back what they wrote)."""


def move(action: str, state: S) -> S:
    """The state ``action`` leads to from ``state``.

    Raises:
        ConflictError: The action is not allowed in this state (a 409 at the edges).
    """
    target = MOVES[action].get(state)
    if target is None:
        allowed = ", ".join(sorted(s.value for s in MOVES[action]))
        raise ConflictError(f"cannot {action.replace('_', ' ')} a campaign that is {state.value} "
                            f"(only when {allowed})")
    return target
