"""Pieces the REST controllers share."""

from __future__ import annotations

from litestar import Controller, Litestar, get
from litestar.handlers import HTTPRouteHandler
from litestar.testing import TestClient

from service.api.common import named_handler


def _say(word: str) -> HTTPRouteHandler:
    async def handler(self: Controller) -> str:
        return word

    return get(f"/{word}")(named_handler(handler, word, f"Say {word}."))


class Greetings(Controller):
    hello = _say("hello")
    goodbye = _say("goodbye")


def test_a_handler_made_by_a_factory_is_described_and_served_under_its_given_name() -> None:
    app = Litestar([Greetings])
    paths = app.openapi_schema.paths
    assert paths is not None
    operation = paths["/hello"].get
    assert operation is not None
    assert (operation.summary, operation.operation_id) == ("Hello", "HelloHello")
    assert Greetings.hello.fn.__doc__ == "Say hello."
    with TestClient(app) as client:
        assert client.get("/goodbye").text == "goodbye"
