"""The sentence reader: the passage sentence that best matches the question, as the answer.

The baseline reader and the span reader's fallback. A sentence is scored by how much of the
question it covers (IDF-weighted over the retrieved passages) plus the passage's retrieval
score; the weights and the confidence calibration were fitted on SQuAD *train* questions by
``bench/fit_sentence_reader.py``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from qa.index.keywords import tokenize
from qa.text import sentence_spans
from qa.types import Answer, Hit, Span


@dataclass(frozen=True)
class SentenceWeights:
    """Scoring and calibration constants of the sentence reader.

    Ranking: ``coverage * cov + retrieval * rel``. Confidence: a logistic model of the
    probability that the sentence holds the answer, on features that are absolute (not
    relative to the other candidates), so that an off-topic question scores low.
    """

    coverage: float = 1.0
    retrieval: float = 1.0
    conf_coverage: float = 3.603
    conf_cosine: float = 1.341
    conf_bias: float = -1.201


class SentenceReader:
    """Baseline reader: the best sentence of the top passages.

    Args:
        max_passages: How many top passages to read.
        weights: Scoring/calibration constants.
        threshold: Confidence under which the pipeline says there is no answer.
    """

    def __init__(
        self, max_passages: int = 5, weights: SentenceWeights | None = None, threshold: float = 0.5
    ) -> None:
        self.max_passages = max_passages
        self.weights = weights or SentenceWeights()
        # 0.5: below it the fitted probability that the sentence holds the answer is < 1/2.
        self.threshold = threshold

    def features(
        self, question: str, passages: Sequence[Hit]
    ) -> list[tuple[Hit, Span, float, float]]:
        """(hit, sentence span, coverage, relative retrieval score) for every candidate."""
        hits = list(passages[: self.max_passages])
        if not hits:
            return []
        q_terms = set(tokenize(question))
        docs = [set(tokenize(h.passage.text + " " + h.title)) for h in hits]
        # IDF over the retrieved passages: a term in every passage tells nothing apart.
        idf = {t: math.log(1 + (len(docs) + 1) / (1 + sum(t in d for d in docs))) for t in q_terms}
        total = sum(idf.values()) or 1.0
        top = max(h.score for h in hits) or 1.0
        out = []
        for hit in hits:
            text = hit.passage.text
            title_terms = set(tokenize(hit.title))
            for a, b in sentence_spans(text):
                if _is_question(text[a:b]):
                    continue  # it restates the question (live blogs, FAQs): never an answer
                s_terms = set(tokenize(text[a:b])) | title_terms
                cov = sum(idf[t] for t in q_terms & s_terms) / total
                out.append((hit, Span(a, b), cov, hit.score / top))
        return out

    def read(self, question: str, passages: Sequence[Hit]) -> list[Answer]:
        """Rank the sentences of the top passages.

        Args:
            question: The question.
            passages: Retrieved hits, best first.

        Returns:
            One Answer per sentence, best first, confidence in [0, 1].
        """
        w = self.weights
        scored = []
        for hit, span, cov, rel in self.features(question, passages):
            score = w.coverage * cov + w.retrieval * rel
            cosine = hit.dense_score if hit.dense_score is not None else 0.0
            z = w.conf_coverage * cov + w.conf_cosine * cosine + w.conf_bias
            conf = 1 / (1 + math.exp(-z))
            scored.append((score, conf, hit, span))
        scored.sort(key=lambda x: -x[0])
        answers = []
        for score, conf, hit, span in scored:
            sentence = hit.passage.text[span.start : span.end]
            answers.append(
                Answer(
                    text=sentence,
                    sentence=sentence,
                    confidence=conf,
                    hit=hit,
                    span=span,
                    sentence_span=span,
                    score=score,
                    kind="sentence",
                )
            )
        return answers


def _is_question(sentence: str) -> bool:
    """True for a sentence that asks (ends in a question mark, before closing quotes)."""
    return sentence.rstrip().rstrip("\"'”’)").endswith("?")
