"""Conversations: a follow-up question made standalone before it is searched.

"And the one before that?" finds nothing on its own. With a language model as the
answerer, the model rewrites the last user turn into a question that stands alone,
from the turns before it; without one (the extractive answerer) the last user turn is
searched as it is. The rewrite is only used for retrieval and answering, and is
reported back (the API's ``mmrag.query``) so a client can see what was searched.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from mmrag.errors import InvalidRequestError
from mmrag.models.base import Answerer

logger = logging.getLogger(__name__)

MAX_TURNS = 8  # earlier turns shown to the rewriter
MAX_TURN_CHARS = 1500  # of each
REWRITE_PROMPT = (
    "You rewrite the user's follow-up question into one standalone question. Use the "
    "conversation only to resolve what the follow-up refers to; keep its meaning and "
    "language. Reply with the rewritten question alone, on one line."
)


@dataclass(frozen=True)
class Turn:
    role: str  # user, assistant or system
    content: str


def standalone_question(turns: Sequence[Turn], answerer: Answerer, max_chars: int) -> str:
    """The question to search and answer for the conversation's last user turn."""
    last = max((i for i, turn in enumerate(turns) if turn.role == "user"), default=None)
    if last is None or not turns[last].content.strip():
        raise InvalidRequestError("the conversation has no user message to answer")
    question = turns[last].content.strip()
    earlier = [turn for turn in turns[:last] if turn.role in ("user", "assistant")]
    if not any(turn.role == "user" for turn in earlier):
        return question
    shown = "\n".join(
        f"{turn.role.capitalize()}: {' '.join(turn.content.split())[:MAX_TURN_CHARS]}"
        for turn in earlier[-MAX_TURNS:]
    )
    text = f"Conversation:\n{shown}\n\nFollow-up question: {question}\n\nStandalone question:"
    reply = answerer.complete(REWRITE_PROMPT, text)
    if reply is None:
        return question
    rewritten = next((line.strip(" \"'`") for line in reply.splitlines() if line.strip()), "")
    if not rewritten or len(rewritten) > max_chars:
        logger.info("kept the follow-up as asked: the rewrite was empty or too long")
        return question
    logger.info("follow-up %r searched as %r", question, rewritten)
    return rewritten
