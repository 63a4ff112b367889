"""The headline route's fusion: headline hits lift their articles' passages among the candidates.

The question's vector is searched among the articles' headline vectors
(:mod:`qa.index.headlines`). The nearest ``hits`` distinct titles, each with its cosine ``h``,
lift the best candidate passage of every article bearing that title by
``weight * best * h`` (``best``: the query's best fused score, so that the weight means the
same for every fusion). An article none of whose passages is a candidate is brought in with
its first passage, at the score a passage found by neither side gets plus the lift, when its
title is its own: a title several articles share (the paragraphs of one encyclopedia article,
a site's generic video title) says which articles are about the subject, not which one
answers, so only their candidates are lifted.
"""

from __future__ import annotations

from collections import Counter

from qa.search.backend import PassageRecord, SearchView

# Headlines fetched per distinct title wanted: identical titles have identical vectors and
# come back together.
FETCH_PER_TITLE = 10

Scored = list[tuple[int, float]]


def lift(
    view: SearchView,
    fused: Scored,
    heads: dict[str, float],
    weight: float,
    hits: int,
    floor: float,
) -> tuple[Scored, dict[int, PassageRecord]]:
    """Fuse headline hits into the candidates.

    Args:
        view: The generation searched (its ``lead`` gives each article's first passage).
        fused: Candidates (document, fused score), best first.
        heads: Headline cosine by article id, best first.
        weight: The route's weight.
        hits: Distinct titles that lift.
        floor: What a passage found by neither side scores.

    Returns:
        The candidates rescored, best first, and the records of every one of them.
    """
    lead = getattr(view, "lead", None)
    leads: dict[str, int] = lead(list(heads)) if lead is not None else {}
    docs = [d for d, _ in fused]
    known = set(docs)
    records = view.records(docs + [d for d in leads.values() if d not in known])
    by_title: dict[str, float] = {}
    holders: Counter[str] = Counter()
    for aid, h in heads.items():  # best first
        rec = records.get(leads.get(aid, -1))
        if rec is None or not rec.passage.title:
            continue
        title = rec.passage.title
        if title not in by_title and len(by_title) < hits:
            by_title[title] = h
        holders[title] += 1
    best = max(max((s for _, s in fused), default=0.0), 0.0)
    lifted: set[str] = set()
    out = []
    for doc, score in fused:  # best first: only an article's best candidate is lifted
        rec = records.get(doc)
        if rec is not None and rec.passage.article_id not in lifted:
            cos = by_title.get(rec.passage.title)
            if cos is not None:
                score += weight * best * cos
                lifted.add(rec.passage.article_id)
        out.append((doc, score))
    for aid in heads:
        doc = leads.get(aid, -1)
        rec = records.get(doc)
        if aid in lifted or doc in known or rec is None:
            continue
        cos = by_title.get(rec.passage.title)
        if cos is not None and holders[rec.passage.title] == 1:
            out.append((doc, floor + weight * best * cos))
    return sorted(out, key=lambda x: -x[1]), records
