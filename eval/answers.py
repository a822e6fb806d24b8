"""Answer evaluation (when an answerer is configured): abstention on unanswerable
questions, exact match and token F1 against the reference, and whether the citations
point at a relevant page (a citation is tied to its dataset file by document id)."""

from __future__ import annotations

import re
import string
from collections import Counter
from typing import TYPE_CHECKING, Any

from eval.datasets import Dataset, Query
from mmrag.services import Services
from mmrag.types import Answer

if TYPE_CHECKING:  # the runner imports this module when it evaluates answers
    from eval.runner import CorpusDocuments

_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize(text: str) -> list[str]:
    """SQuAD-style: lower case, no punctuation, no articles, split on whitespace."""
    text = text.lower().translate(str.maketrans("", "", string.punctuation))
    return _ARTICLES.sub(" ", text).split()


def exact_match(prediction: str, reference: str) -> float:
    return float(normalize(prediction) == normalize(reference))


def token_f1(prediction: str, reference: str) -> float:
    predicted, expected = normalize(prediction), normalize(reference)
    common = sum((Counter(predicted) & Counter(expected)).values())
    if not predicted or not expected or common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(expected)
    return 2 * precision * recall / (precision + recall)


def cites_relevant(answer: Answer, query: Query, documents: CorpusDocuments) -> bool:
    """Whether a citation names a relevant file (and page, where relevance has one)."""
    for citation in answer.citations:
        source = documents.paths.get(citation.document_id)
        if source is None:
            continue
        for relevant in query.relevant:
            if documents.canonical(relevant.path) == source and (
                relevant.image is not None or relevant.page in (None, citation.page)
            ):
                return True
    return False


def evaluate_answers(
    services: Services, dataset: Dataset, documents: CorpusDocuments, limit: int | None = None
) -> dict[str, Any]:
    unanswerable: list[tuple[Query, Answer]] = []
    answerable: list[tuple[Query, Answer]] = []
    for query in dataset.queries[:limit]:
        answer = services.asker.ask(query.question, tenant=services.settings.ingest.tenant)
        (answerable if query.answerable else unanswerable).append((query, answer))
    result: dict[str, Any] = {
        "answerer": services.answerer.model_id,
        "answerable": len(answerable),
        "unanswerable": len(unanswerable),
    }
    if unanswerable:
        result["abstention_rate_unanswerable"] = _mean(a.abstained for _, a in unanswerable)
    if answerable:
        result["abstention_rate_answerable"] = _mean(a.abstained for _, a in answerable)
        referenced = [(q, a) for q, a in answerable if q.answer]
        result["exact_match"] = _mean(exact_match(a.text, q.answer or "") for q, a in referenced)
        result["f1"] = _mean(token_f1(a.text, q.answer or "") for q, a in referenced)
        result["cites_relevant"] = _mean(cites_relevant(a, q, documents) for q, a in answerable)
    return result


def _mean(values: Any) -> float:
    items = [float(v) for v in values]
    return sum(items) / len(items) if items else 0.0
