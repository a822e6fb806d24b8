"""Citations an answer may keep. One rule, enforced at both ends of the answerer: a [n]
in the answer counts only when the answerer itself wrote it, for a claim that source n
supports.

Before: `neutralise` runs over every piece of document text an answerer is shown
(`Source.text`, `Source.document`), so a document cannot write what the prompt or the
answer is made of:

* bracketed numbers -- ``[5]``, ``[ 5 ]``, ``[5, 6]``, and the full-width and CJK
  brackets a model may normalise -- become ``(5)``: a marker quoted from a document is
  no longer a marker, and the extractive answerer's verbatim quotes carry none;
* bracketed upper-case tags (``[INST]``, ``[/INST]``: special tokens of some chat
  templates) become ``(INST)``;
* ``<`` and ``>`` become ``‹`` and ``›``: no ``</source>`` to close a source block, no
  chat-template special token (``<end_of_utterance>``, ``<|im_start|>``, ``<image>``);
* a line that starts with a role or prompt label (``Question:``, ``Answer:``,
  ``System:``, ``User:``, ``Assistant:``, ...) starts with ``(Question)`` instead:
  plain-text role labels are how the SmolVLM template separates turns.

After: `CitationCheck` reads the answer as it streams. A marker group (``[1]``,
``[1] [2]``, ``[1, 2]``) is kept number by number when the number is a source that was
shown and the source supports the claim the marker is attached to (`supports`). The claim
is the clause before the group: the text since the previous group, cut to its last
sentence. When that clause has no content words (``According to [2], sales rose.``), the
text after the group up to the end of its sentence is added to it.

A claim is supported by a source when:

* it has no content words and is a verbatim quote of the source (``It is. [1]``); else
* the source was shown as pixels: it has no text at all (nothing to check; the model can
  only have used the pixels -- a known gap, see below) or it shares at least one content
  word with the claim (the VLM saw more than the caption says, so one word of overlap
  with the caption or OCR text suffices); else
* at least `MIN_COVERAGE` of the claim's content words occur in the source text, and
  every number in the claim occurs in it. Words of the question are left out of the
  claim first, unless nothing else remains: every source was retrieved for the question,
  so they all share its words, and restating the question proves nothing.

Content words are lower-cased words less stop and citation filler words ("according",
"source", ...), lightly stemmed; numbers are compared without thousands separators.

A dropped marker is also taken out of the answer text (with the space before it): the
API returns the text and the citations, and a client that renders a leftover ``[5]`` by
position in ``sources`` would bring the forged citation back. Text is held back from the
stream only from a possible marker until its claim is known, so streamed tokens and the
final text agree.

Known gaps: a source shown only as pixels with no caption or OCR text accepts any claim;
scripts written without spaces (Chinese, Japanese) form one "word" per run and mostly
fail the coverage test, so their citations are dropped rather than forged.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mmrag.models.base import Source

MIN_COVERAGE = 0.5  # share of a claim's content words a cited text source must contain

_OPEN = "[［【〖〔⟦〚"
_CLOSE = "]］】〗〕⟧〛"
_BRACKETED_NUMBERS = re.compile(
    rf"[{re.escape(_OPEN)}]\s*(\d[\d\s,;\-–]*?)\s*\\?[{re.escape(_CLOSE)}]"
)
_BRACKETED_TAG = re.compile(r"\[\s*(/?[A-Z][A-Z_]*)\s*\]")
_ROLE_LABEL = re.compile(
    r"^([ \t>›*#\-]*)(system|user|assistant|human|question|answer|instructions?|sources?"
    r"|context)[ \t]*:",
    re.IGNORECASE | re.MULTILINE,
)
_ANGLES = str.maketrans({"<": "‹", ">": "›"})


def neutralise(text: str) -> str:
    """Document text an answerer may read: nothing in it passes for a citation marker, a
    prompt delimiter, a special token or a turn of the conversation. Idempotent."""
    text = _BRACKETED_NUMBERS.sub(lambda m: f"({' '.join(m.group(1).split())})", text)
    text = _BRACKETED_TAG.sub(r"(\1)", text)
    text = _ROLE_LABEL.sub(r"\1(\2)", text)
    return text.translate(_ANGLES)


def without_delimiters(text: str) -> str:
    """``<`` and ``>`` replaced, for text put between the prompt's tags (the question)."""
    return text.translate(_ANGLES)


# -- content words -------------------------------------------------------------------

_TOKEN = re.compile(r"\d+(?:[.,]\d+)*|[^\W\d_]+")
_STOPWORDS = frozenset(
    """a about all also an and any are as at be been being but by can could did do does
    each every for from had has have having he her here his how i if in into is it its
    just may me might more most must my no not of on only or other our over she should so
    some such than that the their them then there these they this those to under very
    was we were what when where which who whom why will with would yes you your
    according answer based cite cited document documents image mention mentioned page
    pages passage per said say says see show shown shows source sources state stated
    states text""".split()  # noqa: SIM905 - a word list reads best as text
)
_SUFFIXES = ("ing", "ed", "es", "e", "s")


def _stem(word: str) -> str:
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def content_terms(text: str) -> set[str]:
    """The words a claim is checked on: lower-cased, stemmed, no stop or filler words;
    numbers without thousands separators."""
    terms = set()
    for token in _TOKEN.findall(text.lower()):
        if token[0].isdigit():
            terms.add(token.replace(",", ""))
        elif len(token) > 1 and token not in _STOPWORDS:
            terms.add(_stem(token))
    return terms


def _squashed(text: str) -> str:
    return " ".join(text.lower().split())


@dataclass(frozen=True)
class _Evidence:
    """What an answerer was shown of one source, ready to check claims against."""

    text: str  # lower-case, whitespace collapsed
    terms: frozenset[str]
    pixels: bool

    @classmethod
    def of(cls, source: Source) -> _Evidence:
        text = source.text
        return cls(_squashed(text), frozenset(content_terms(text)), source.image is not None)

    def supports(self, claim: str, question_terms: set[str]) -> bool:
        terms = content_terms(claim)
        if not terms:
            quote = _squashed(claim).strip(" .,;:!?")
            return len(quote) >= 3 and quote in self.text
        new = (terms - question_terms) or terms
        shared = new & self.terms
        if self.pixels:
            return not self.terms or bool(shared)
        numbers = {term for term in new if term[0].isdigit()}
        return numbers <= self.terms and len(shared) >= MIN_COVERAGE * len(new)


def supports(claim: str, source: Source, *, question: str = "") -> bool:
    """Whether ``source``, as the answerer was shown it, supports ``claim`` (rules above)."""
    return _Evidence.of(source).supports(claim, content_terms(question))


# -- reading the answer --------------------------------------------------------------

_MARKER = r"\[\s*[0-9]{1,3}(?:\s*[,;]\s*[0-9]{1,3})*\s*\]"
_MARKER_GROUP = re.compile(rf"(?:\s*,?\s*{_MARKER})+")
_NUMBER = re.compile(r"[0-9]{1,3}")
_OPEN_MARKER = re.compile(r"\[[0-9,;\s]*")  # a marker before its ']' has arrived
_GROUP_TAIL = re.compile(r"\s*,?\s*(?:\[[0-9,;\s]*)?")  # what may still extend a group
_CLAUSE_END = re.compile(r"[.!?](?=\s|$)|\n|\[\s*[0-9]")
_SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+|\n+")


def _last_sentence(text: str) -> str:
    sentences = [s for s in _SENTENCE_BREAK.split(text.strip()) if s.strip()]
    return sentences[-1] if sentences else ""


class CitationCheck:
    """Vets the [n] markers of an answer while it streams: `feed` each piece as the
    answerer writes it and emit what it returns, then emit what `close` returns. Kept
    markers are in `cited` (in order of first mention), dropped ones in `dropped`."""

    def __init__(self, sources: Sequence[Source], question: str) -> None:
        self._evidence = {source.number: _Evidence.of(source) for source in sources}
        self._question = content_terms(question)
        self._text = ""  # everything the answerer wrote so far
        self._position = 0  # the text before it is settled: emitted, or dropped
        self._claim_start = 0  # where the clause of the next marker group starts
        self.cited: list[int] = []
        self.dropped: list[int] = []

    def feed(self, piece: str) -> str:
        """The part of the answer that can be shown now that ``piece`` has arrived."""
        self._text += piece
        return self._settle(final=False)

    def close(self) -> str:
        """The rest of the answer, once the answerer has finished."""
        return self._settle(final=True)

    def _settle(self, *, final: bool) -> str:
        settled: list[str] = []
        text = self._text
        while self._position < len(text):
            start = self._position
            bracket = text.find("[", start)
            if bracket < 0 and final:
                settled.append(text[start:])
                self._position = len(text)
                break
            end = len(text) if bracket < 0 else bracket
            held = start + len(text[start:end].rstrip())  # a space before a marker goes with it
            settled.append(text[start:held])
            self._position = held
            if bracket < 0:
                break
            group = _MARKER_GROUP.match(text, held)
            if group is None:
                if not final and _OPEN_MARKER.fullmatch(text, bracket):
                    break  # may still become a marker
                settled.append(text[held : bracket + 1])
                self._position = bracket + 1
                continue
            if not final and _GROUP_TAIL.fullmatch(text, group.end()):
                break  # the group may go on, or its claim may follow
            rendered = self._vet(group, final=final)
            if rendered is None:
                break  # the claim follows the marker and is not complete yet
            settled.append(rendered)
            self._position = self._claim_start = group.end()
        return "".join(settled)

    def _vet(self, group: re.Match[str], *, final: bool) -> str | None:
        """The group as it stays in the answer, or None to wait for more text."""
        before = _last_sentence(self._text[self._claim_start : group.start()])
        after = ""
        if not content_terms(before):
            clause_end = _CLAUSE_END.search(self._text, group.end())
            if clause_end is None and not final:
                return None
            after = self._text[group.end() : clause_end.start() if clause_end else None]
        numbers = list(dict.fromkeys(int(n) for n in _NUMBER.findall(group.group())))
        kept = [n for n in numbers if self._supported(n, before, after)]
        self.dropped.extend(n for n in numbers if n not in kept)
        self.cited.extend(n for n in kept if n not in self.cited)
        original = group.group()
        if kept == numbers and original.count("[") == len(numbers):
            return original
        if not kept:
            return ""
        spaces = original[: len(original) - len(original.lstrip())]
        return spaces + " ".join(f"[{n}]" for n in kept)

    def _supported(self, number: int, before: str, after: str) -> bool:
        evidence = self._evidence.get(number)
        if evidence is None:  # not a source that was shown
            return False
        if evidence.supports(before, self._question):
            return True
        return bool(after.strip()) and evidence.supports(f"{before} {after}", self._question)
