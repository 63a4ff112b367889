"""The headline route's fusion: headline hits lift their articles' passages among the candidates.

The question's vector is searched among the articles' own headline vectors
(:mod:`qa.index.headlines`; a title several articles share is not searched, see
:meth:`qa.search.local.LocalView.headlines`). Each of the nearest ``hits`` headlines, with
cosine ``h``, lifts its article's best candidate passage by ``weight * best * h`` (``best``:
the query's best fused score, so that the weight means the same for every fusion). An article
none of whose passages is a candidate is brought in with its first passage, at the score a
passage found by neither side gets plus the lift.

The route reorders only the passages below those the reader reads (``spread_from``, as the
same-article penalty): lifted into the reader's passages, headline hits displaced passages of
the best article, and EM fell from 50.9 to 41.8 on the news dev questions
(docs/benchmarks.md).
"""

from __future__ import annotations

from qa.search.backend import PassageRecord, SearchView

Scored = list[tuple[int, float]]


def lift(
    view: SearchView,
    fused: Scored,
    heads: dict[str, float],
    weight: float,
    floor: float,
) -> tuple[Scored, dict[int, PassageRecord]]:
    """Fuse headline hits into the candidates.

    Args:
        view: The generation searched (its ``lead`` gives each article's first passage).
        fused: Candidates (document, fused score), best first.
        heads: Headline cosine by article id.
        weight: The route's weight.
        floor: What a passage found by neither side scores.

    Returns:
        The candidates rescored, best first, and the records of every one of them.
    """
    lead = getattr(view, "lead", None)
    leads: dict[str, int] = lead(list(heads)) if lead is not None else {}
    docs = [d for d, _ in fused]
    known = set(docs)
    records = view.records(docs + [d for d in leads.values() if d not in known])
    best = max(max((s for _, s in fused), default=0.0), 0.0)
    lifted: set[str] = set()
    out = []
    for doc, score in fused:  # best first: only an article's best candidate is lifted
        rec = records.get(doc)
        aid = rec.passage.article_id if rec is not None else ""
        if aid in heads and aid not in lifted:
            score += weight * best * heads[aid]
            lifted.add(aid)
        out.append((doc, score))
    for aid, cos in heads.items():
        doc = leads.get(aid, -1)
        if aid not in lifted and doc not in known and doc in records:
            out.append((doc, floor + weight * best * cos))
    return sorted(out, key=lambda x: -x[1]), records


def below(plain: Scored, lifted: Scored, keep: int) -> Scored:
    """The first ``keep`` of ``plain`` (the passages the reader reads) in place, then the rest
    as ``lifted`` ranks them, their scores scaled to stay at or below the last kept one's."""
    if lifted is plain:
        return plain
    top = plain[:keep]
    kept = {d for d, _ in top}
    rest = [(d, s) for d, s in lifted if d not in kept]
    high = max((s for _, s in rest), default=0.0)
    cap = top[-1][1] if top else high
    scale = cap / high if high > cap and high > 0 else 1.0
    return top + [(d, s * scale) for d, s in rest]
