"""The declare form: what `incident declare` with no title opens, and the task module that
"Declare incident" on a message opens (prefilled from the message, submitted with Action.Submit:
a task module's submit goes back as composeExtension/submitAction)."""
from __future__ import annotations

from typing import Any, Sequence

from cards.common import block, card, execute, plain, truncate

TITLE_LIMIT = 250
QUOTE_LIMIT = 1000


def _inputs(services: Sequence[str], levels: Sequence[str], *, title: str, service: str | None,
            private: bool) -> list[dict[str, Any]]:
    service_input: dict[str, Any] = {
        "type": "Input.ChoiceSet", "id": "service", "label": "Service", "style": "compact",
        "placeholder": "(let Firebell guess)",
        "choices": [{"title": s, "value": s} for s in services]}
    if service:
        service_input["value"] = service
    return [
        {"type": "Input.Text", "id": "title", "label": "What is broken?", "isRequired": True,
         "maxLength": TITLE_LIMIT, "value": title, "placeholder": "checkout is down",
         "errorMessage": "A short title is required"},
        # Nothing chosen (the placeholder) sends "": Firebell guesses. A choice whose value is ""
        # is invalid for the Adaptive Cards SDK (PropertyCantBeNull), so there is none.
        service_input,
        {"type": "Input.ChoiceSet", "id": "level", "label": "Level", "style": "compact",
         "placeholder": "(from the title)",
         "choices": [{"title": lv, "value": lv} for lv in levels]},
        {"type": "Input.Toggle", "id": "private", "title": "Private: only a private chat with "
         "me and the service's responders sees it", "valueOn": "true", "valueOff": "false",
         "value": "true" if private else "false"},
    ]


def declare_form(services: Sequence[str], levels: Sequence[str], *, title: str = "",
                 error: str | None = None, private: bool = False) -> dict[str, Any]:
    body: list[dict] = [block("🔥 **Declare an incident**", size="Medium")]
    if error:
        body.append(plain(error, limit=1000, color="Attention"))  # quotes what was typed: no Markdown
    body += _inputs(services, levels, title=title, service=None, private=private)
    return card(body, [execute("Declare", "declare", {}, style="destructive")])


def message_declare_form(services: Sequence[str], levels: Sequence[str], *, title: str,
                         quote: str, author: str | None, service: str | None,
                         private: bool = False, error: str | None = None) -> dict[str, Any]:
    """The task module of "Declare incident" on a message: the message quoted, the title and
    service guessed from it."""
    body: list[dict] = [block("🔥 **Declare an incident from this message**", size="Medium")]
    if error:
        body.append(plain(error, limit=1000, color="Attention"))
    # A display name is someone's text: no Markdown.
    body.append(plain(f"Message from {author}:" if author else "Message:", subtle=True))
    body.append(plain(truncate(quote, QUOTE_LIMIT), limit=QUOTE_LIMIT))
    body += _inputs(services, levels, title=title, service=service, private=private)
    return card(body, [{"type": "Action.Submit", "title": "Declare", "style": "destructive",
                        "data": {"verb": "declare"}}])
