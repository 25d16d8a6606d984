"""The one authorization policy: who may do what, asked by every service method that writes or reaches upstream.

:class:`~service.core.principal.Principal` is the only caller type. A protected operation starts with
``authorize(principal, Action.X)``; REST, GraphQL, the CLI and jobs all reach the same call, so they all get the
same answer (a :class:`~service.core.errors.PermissionDeniedError`, 403 in REST, ``FORBIDDEN`` in GraphQL).

Adding a protected operation (campaigns, monitoring, notifications, ...):

1. add a member to :class:`Action`: ``CAMPAIGN_START = Rule("campaign.start", Role.OPERATOR, whole_tenant=True)``
   (the value's name is also the audit action, by convention);
2. begin the service method with ``authorize(principal, Action.CAMPAIGN_START)``;
3. add a case to the role matrix (``tests/policy_matrix.py``, see its docstring) for each of its REST and
   GraphQL entry points; ``tests/test_policy.py`` fails for an :class:`Action` with no case there, unless it is
   listed as a read.

Expired, revoked and foreign keys never become a principal (authentication refuses them), so the policy sees
only the role and the scope of a valid key.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from service.core.errors import PermissionDeniedError
from service.core.principal import Principal
from service.core.roles import Role


@dataclass(frozen=True)
class Rule:
    """What an action needs.

    Attributes:
        name: ``"domain.verb"`` (also the audit action of writes).
        role: The lowest role allowed.
        whole_tenant: Refused to keys restricted to an account subtree (tenant-wide actions: a subtree key could
            otherwise act beyond its subtree or mint itself an unrestricted key).
    """

    name: str
    role: Role
    whole_tenant: bool = False


class Action(enum.Enum):
    """Every protected operation and its rule."""

    SYNC_REQUEST = Rule("mirror.sync.request", Role.OPERATOR, whole_tenant=True)
    SYNC_RUNS_READ = Rule("mirror.sync_runs.read", Role.OPERATOR)
    CREDENTIAL_READ = Rule("credential.read", Role.VIEWER, whole_tenant=True)
    CREDENTIAL_ADD = Rule("credential.add", Role.ADMIN, whole_tenant=True)
    CREDENTIAL_CHECK = Rule("credential.check", Role.ADMIN, whole_tenant=True)
    CREDENTIAL_REMOVE = Rule("credential.remove", Role.ADMIN, whole_tenant=True)
    APIKEY_READ = Rule("apikey.read", Role.ADMIN, whole_tenant=True)
    APIKEY_CREATE = Rule("apikey.create", Role.ADMIN, whole_tenant=True)
    APIKEY_REVOKE = Rule("apikey.revoke", Role.ADMIN, whole_tenant=True)
    AUDIT_READ = Rule("audit.read", Role.ADMIN, whole_tenant=True)
    LIVE_SETTINGS_READ = Rule("live.settings.read", Role.OPERATOR)
    LIVE_UNMIRRORED_READ = Rule("live.unmirrored.read", Role.VIEWER, whole_tenant=True)
    ALERT_READ = Rule("monitoring.alert.read", Role.VIEWER)
    ALERT_ACKNOWLEDGE = Rule("monitoring.alert.acknowledge", Role.OPERATOR)
    ALERT_CLEAR = Rule("monitoring.alert.clear", Role.OPERATOR)
    MAINTENANCE_MANAGE = Rule("monitoring.maintenance.manage", Role.OPERATOR, whole_tenant=True)
    MONITORING_SETTINGS_READ = Rule("monitoring.settings.read", Role.VIEWER)
    MONITORING_SETTINGS_WRITE = Rule("monitoring.settings.write", Role.ADMIN, whole_tenant=True)
    # Campaigns: a subtree key acts only on its subtree (targets and campaigns are scoped), so none is tenant-wide.
    CAMPAIGN_READ = Rule("campaign.read", Role.VIEWER)
    CAMPAIGN_CREATE = Rule("campaign.create", Role.OPERATOR)
    CAMPAIGN_APPROVE = Rule("campaign.approve", Role.ADMIN)
    CAMPAIGN_START = Rule("campaign.start", Role.OPERATOR)
    CAMPAIGN_PAUSE = Rule("campaign.pause", Role.OPERATOR)
    CAMPAIGN_RESUME = Rule("campaign.resume", Role.OPERATOR)
    CAMPAIGN_CANCEL = Rule("campaign.cancel", Role.OPERATOR)
    CAMPAIGN_ROLLBACK = Rule("campaign.rollback", Role.OPERATOR)
    # Firmware watches are scoped like campaigns; restarting stragglers also needs campaign.create.
    FIRMWARE_WATCH_READ = Rule("firmware_watch.read", Role.VIEWER)
    FIRMWARE_WATCH_CREATE = Rule("firmware_watch.create", Role.OPERATOR)
    FIRMWARE_WATCH_RESTART = Rule("firmware_watch.restart_stragglers", Role.OPERATOR)

    # Notifications: channels and rules are the tenant's (a subtree key neither reads nor changes them).
    NOTIFICATION_READ = Rule("notification.read", Role.OPERATOR, whole_tenant=True)
    NOTIFICATION_MANAGE = Rule("notification.manage", Role.ADMIN, whole_tenant=True)
    NOTIFICATION_REPLAY = Rule("notification.replay", Role.OPERATOR, whole_tenant=True)
    NOTIFICATION_TEST = Rule("notification.test", Role.OPERATOR, whole_tenant=True)

    @property
    def rule(self) -> Rule:
        """The action's rule."""
        value: Rule = self.value
        return value


def authorize(principal: Principal, action: Action) -> None:
    """Raise unless ``principal`` may do ``action``.

    Raises:
        PermissionDeniedError: The role is too low, or the key is restricted to a subtree and the action is
            tenant-wide (a 403 / ``FORBIDDEN`` at the edges).
    """
    rule = action.rule
    if principal.role.rank < rule.role.rank:
        raise PermissionDeniedError(
            f"this action needs the {rule.role.value} role; the key in use has the {principal.role.value} role"
        )
    if rule.whole_tenant and principal.restricted_account_id is not None:
        raise PermissionDeniedError("a key restricted to an account subtree cannot act on the whole tenant")


__all__ = ["Action", "Rule", "authorize"]
