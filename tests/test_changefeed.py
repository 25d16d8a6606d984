"""The change hub on the run's Redis: changes reach the feeds of their tenant and topic only, a feed that falls
behind ends with an error instead of growing, and closing the hub ends every feed."""

from __future__ import annotations

import json
import uuid

import pytest

from service.changefeed import ChangeHub, SlowSubscriberError, publish_changes
from service.core.changes import Change, Topic
from service.runtime import Resources


def change(topic: Topic, tenant_id: uuid.UUID) -> Change:
    return Change(topic, tenant_id, uuid.uuid4(), f"{topic.value}.raised", site_id=7, account_id=70)


async def test_feeds_get_their_tenants_changes_of_their_topics_and_a_slow_one_is_dropped(
    resources: Resources,
) -> None:
    mine, theirs = uuid.uuid4(), uuid.uuid4()
    hub = ChangeHub(resources.redis, capacity=2)
    try:
        async with hub.subscribe(mine, {Topic.ALERT}) as alerts, hub.subscribe(mine, {Topic.CAMPAIGN}) as campaigns:
            wanted = change(Topic.ALERT, mine)
            await publish_changes(resources.redis, [change(Topic.ALERT, theirs), change(Topic.INCIDENT, mine), wanted])
            assert await anext(alerts) == wanted  # round trip through Redis and JSON, nothing else first

            await publish_changes(resources.redis, [change(Topic.ALERT, mine) for _ in range(3)])
            marker = change(Topic.CAMPAIGN, mine)
            await publish_changes(resources.redis, [marker])
            assert await anext(campaigns) == marker  # the hub has dispatched the three alerts before it
            with pytest.raises(SlowSubscriberError):  # three waiting, room for two: dropped, not grown
                await anext(alerts)

            await hub.aclose()
            with pytest.raises(StopAsyncIteration):  # the other feed ends cleanly
                await anext(campaigns)
    finally:
        await hub.aclose()


def test_a_message_that_is_not_a_change_is_refused() -> None:
    fine = json.loads(change(Topic.ALERT, uuid.uuid4()).encode())
    for data in ("not json", "[1]", json.dumps({**fine, "tenant_id": "x"}), json.dumps({**fine, "site_id": "7"}),
                 json.dumps({**fine, "topic": "weather"}), json.dumps({key: fine[key] for key in ("id", "kind")})):
        with pytest.raises(ValueError, match=r"^not a change message"):
            Change.decode(data)
    assert Change.decode(json.dumps(fine)).encode() == json.dumps(fine)
