"""Unit tests for follow-up detection and rewriting (qa.followup)."""

from __future__ import annotations

import pytest

from qa.followup import Exchange, QueryRewriter, answer_rewritten, words
from qa.index.keywords import tokenize
from qa.types import Answer, Hit, Passage, Response, Span

SENTENCE = (
    "The Kremlin invited 1,600 Syrians to Sochi but the main opposition faction said it "
    "wouldn't attend because the conference was an attempt to usurp the role of United "
    "Nations-led talks in Geneva."
)
SOCHI = Exchange(
    "Who boycotted the Sochi conference?",
    "",
    "the main opposition faction",
    SENTENCE,
    "Putin's Syria Peace Conference Boycotted by Assad Opponents",
)


class Stats:
    """Document frequencies over a handful of 'passages' (stems counted once per passage)."""

    def __init__(self, passages: list[str]) -> None:
        self.docs = [set(tokenize(p)) for p in passages]

    @property
    def size(self) -> int:
        return len(self.docs)

    def doc_freq(self, word: str) -> int:
        stems = set(tokenize(word))
        return sum(1 for d in self.docs if stems & d)


@pytest.mark.parametrize(
    "follow_up",
    [
        "Why did they refuse?",
        "Where was it held?",
        "What did he say about those talks?",
        "and in 2019?",
        "And what about Turkey?",
        "What about the Kurds?",
        "Why?",
        "When exactly?",
        "Who attended?",
    ],
)
def test_follow_ups_get_the_subject(follow_up: str) -> None:
    rw = QueryRewriter().rewrite(follow_up, [SOCHI])
    assert rw.rewritten, rw.reason
    assert rw.query.startswith(follow_up)
    assert "Sochi" in rw.added
    assert "boycotted" in rw.added


@pytest.mark.parametrize(
    "new_topic",
    [
        "Who won the 2022 World Cup final?",
        "What is the capital of France?",
        "What did Elon Musk say about Twitter when he bought it?",
        "How much did the Mercedes EQXX concept car cost?",
        "Who is the UN envoy for Syria?",
    ],
)
def test_new_topics_are_not_polluted(new_topic: str) -> None:
    rw = QueryRewriter().rewrite(new_topic, [SOCHI])
    assert not rw.rewritten, rw.reason
    assert rw.query == new_topic
    assert rw.added == ()


def test_first_question_is_never_rewritten() -> None:
    rw = QueryRewriter().rewrite("Why did they refuse?", [])
    assert not rw.rewritten and rw.reason == "first question"


def test_only_the_last_turn_counts_and_subject_chains() -> None:
    rewriter = QueryRewriter()
    first = rewriter.rewrite("Why did they refuse?", [SOCHI])
    second_turn = Exchange("Why did they refuse?", first.query, "", "", "")
    second = rewriter.rewrite("When was it?", [SOCHI, second_turn])
    assert second.rewritten
    assert "Sochi" in second.added  # carried over from the rewritten query


def test_added_words_are_capped_and_not_repeated() -> None:
    rw = QueryRewriter(max_terms=3).rewrite("Why did they skip the conference?", [SOCHI])
    assert rw.rewritten
    assert len(rw.added) == 3
    assert "conference" not in [w.lower() for w in rw.added]  # already in the question


def test_pronouns_inside_a_question_with_its_own_names() -> None:
    rewriter = QueryRewriter()
    assert (
        rewriter.is_follow_up("What did Elon Musk say when he bought Twitter?", SOCHI)[0] is False
    )
    assert rewriter.is_follow_up("What did he say?", SOCHI)[0] is True


def test_stats_unknown_words_make_a_follow_up() -> None:
    filler = [f"Russia is hosting a Syria peace summit in Sochi, day {i}." for i in range(60)]
    stats = Stats([SENTENCE, "Putin declared victory in Syria.", *filler])
    rewriter = QueryRewriter(stats)
    # "refuse" is not in the index: the question has no words of its own that match it.
    follow, reason = rewriter.is_follow_up("Why did the group refuse?", SOCHI)
    assert follow, reason
    # A question with rare indexed words of its own is a new topic ...
    assert not rewriter.is_follow_up("Who declared victory?", SOCHI)[0]
    # ... but common ones ("summit", in every passage) are not its own subject.
    assert rewriter.is_follow_up("Who hosted the summit?", SOCHI)[0]


def test_stats_many_unknown_words_are_another_subject() -> None:
    stats = Stats([SENTENCE, "Putin declared victory in Syria."])
    rewriter = QueryRewriter(stats)
    follow, reason = rewriter.is_follow_up("What is the boiling point of tungsten?", SOCHI)
    assert not follow and "index does not know" in reason
    rw = rewriter.rewrite("What is the boiling point of tungsten?", [SOCHI])
    assert not rw.rewritten and rw.query == rw.question
    # With a pronoun it still leans back, whatever its words.
    assert rewriter.is_follow_up("Did they announce sanctions against exporters?", SOCHI)[0]
    # Two unknown words are too few to tell ("Why did the group refuse?" leans back).
    assert rewriter.is_follow_up("Why did the group refuse?", SOCHI)[0]


def test_a_short_question_with_three_words_of_its_own_is_not_a_follow_up() -> None:
    # In a chat over the one-article index every word is in the cited title and none is
    # rare, so "short, nothing new" once took the reference question for a follow-up of the
    # envoy question and searched it with the envoy's words: the wrong sentence came back.
    envoy_sentence = "The UN Special Envoy for Syria, Staffan de Mistura, is at the meeting."
    stats = Stats(
        [
            SENTENCE,
            envoy_sentence,
            "Russia is hosting a Syria peace summit in Sochi as the opposition boycotts it.",
            "Putin declared victory in Syria.",
        ]
    )
    envoy = Exchange(
        "Who is the UN envoy for Syria?",
        "",
        "Staffan de Mistura",
        envoy_sentence,
        "Putin's Syria Peace Conference Boycotted by Assad Opponents",
    )
    rewriter = QueryRewriter(stats)
    follow, reason = rewriter.is_follow_up("Who boycotted the Sochi conference?", envoy)
    assert not follow, reason
    rw = rewriter.rewrite("Who boycotted the Sochi conference?", [envoy])
    assert not rw.rewritten and rw.query == rw.question
    # Fewer than three such words still lean back.
    assert rewriter.is_follow_up("Who hosted the summit?", envoy)[0]


def test_stats_rank_answer_names_rarest_first() -> None:
    passages = [SENTENCE] + [f"The Kremlin said something {i}." for i in range(20)]
    rw = QueryRewriter(Stats(passages), max_terms=20).rewrite("Why did they refuse?", [SOCHI])
    assert rw.rewritten
    assert rw.added.index("Geneva") < rw.added.index("Kremlin")


def test_words_keep_names_hyphens_and_years() -> None:
    assert words("U.S.-led talks in 2019, Nations-led?") == [
        "U.S.-led",
        "talks",
        "in",
        "2019",
        "Nations-led",
    ]


def test_stats_common_names_are_not_a_subject_of_their_own() -> None:
    passages = [f"The US economy grew in quarter {i}." for i in range(40)]
    passages += ["Foxconn builds electric pickups in Lordstown, Ohio.", SENTENCE]
    rewriter = QueryRewriter(Stats(passages))
    fox = Exchange(
        "What share of electric cars does Foxconn hope to build?",
        "",
        "5%",
        "Foxconn hopes to build 5% of the world's electric cars by 2025.",
        "Foxconn",
    )
    follow, reason = rewriter.is_follow_up("Where does it build electric pickups in the US?", fox)
    assert follow, reason  # "US" is everywhere; "pickups" alone is not a new subject
    assert not rewriter.is_follow_up("Why did Lordstown sell the Ohio plant?", SOCHI)[0]


def _response(question: str, answered: bool) -> Response:
    # The answer names the question it was read for, so a test sees which reading won.
    text = f"The West is also vowing to withhold aid ({question})."
    p = Passage(id="p", article_id="a", paragraph=0, start=0, end=len(text), text=text)
    hit = Hit(passage=p, score=1.0, rank=1, title="", date="", url="", source="")
    answer = Answer(text, text, 0.9, hit, Span(0, len(text)), Span(0, len(text)))
    return Response(question, answer if answered else None, [answer], [], [hit])


class _Ask:
    """Stands in for Answerer.ask: answers only the questions in ``answers``."""

    def __init__(self, *answers: str) -> None:
        self.answers = set(answers)
        self.calls: list[tuple[str, str | None]] = []

    def __call__(
        self, question: str, k: int = 5, filters: object = None, search_query: str | None = None
    ) -> Response:
        self.calls.append((question, search_query))
        return _response(question, question in self.answers)


def test_a_leaning_back_question_is_read_as_rewritten() -> None:
    # "Who boycotted it?" as typed names nothing to read for: the reader reads the rewrite
    # even when the question as typed would get an answer too.
    rw = QueryRewriter().rewrite("Why did they refuse?", [SOCHI])
    assert rw.rewritten and rw.leans_back
    ask = _Ask(rw.question, rw.query)
    resp = answer_rewritten(ask, rw)
    assert ask.calls == [(rw.query, None)]
    assert resp.answer is not None and f"({rw.query})" in resp.answer.text
    assert resp.question == "Why did they refuse?"


def test_an_elliptical_question_is_read_as_rewritten() -> None:
    rw = QueryRewriter().rewrite("And in 2019?", [SOCHI])
    assert rw.rewritten and rw.leans_back
    ask = _Ask(rw.question, rw.query)
    resp = answer_rewritten(ask, rw)
    assert resp.answer is not None and f"({rw.query})" in resp.answer.text


def test_a_leaning_back_question_whose_rewrite_gets_no_answer_is_read_as_typed() -> None:
    rw = QueryRewriter().rewrite("Why did they refuse?", [SOCHI])
    ask = _Ask(rw.question)  # only the question as typed gets an answer
    resp = answer_rewritten(ask, rw)
    # Still retrieved with the rewrite.
    assert ask.calls == [(rw.query, None), (rw.question, rw.query)]
    assert resp.answer is not None and f"({rw.question})" in resp.answer.text
    assert resp.question == "Why did they refuse?"


def test_a_leaning_back_question_without_any_answer_says_so() -> None:
    rw = QueryRewriter().rewrite("Why did they refuse?", [SOCHI])
    resp = answer_rewritten(_Ask(), rw)
    assert resp.answer is None and resp.question == "Why did they refuse?"


def test_a_new_topic_taken_for_a_follow_up_is_never_read_as_rewritten() -> None:
    filler = [f"Russia is hosting a Syria peace summit in Sochi, day {i}." for i in range(60)]
    rewriter = QueryRewriter(Stats([SENTENCE, *filler]))
    # Neither of its two words is in the index, so the rewriter takes it for a follow-up ...
    rw = rewriter.rewrite("Who invented penicillin?", [SOCHI])
    assert rw.rewritten and not rw.leans_back
    ask = _Ask(rw.query)
    resp = answer_rewritten(ask, rw)
    # ... but it is read as typed only: no answer, never the previous turn's.
    assert ask.calls == [(rw.question, rw.query)] and resp.answer is None


def test_questions_as_typed_are_not_leaning_back() -> None:
    rw = QueryRewriter().rewrite("Who won the 2022 World Cup final?", [SOCHI])
    assert not rw.rewritten and not rw.leans_back
    ask = _Ask(rw.question)
    answer_rewritten(ask, rw)
    assert ask.calls == [(rw.question, None)]
