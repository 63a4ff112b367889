"""Distillation plumbing: the teacher reads the student's windows token for token."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoTokenizer, MPNetTokenizerFast

from qa.reader.spans import pad_batch
from qa.reader.weights import base_model_path
from qa.train.distill import TeacherMismatch, distill_loss, token_map, translate

QUESTION = "Who boycotted the Sochi conference?"
CONTEXTS = [
    "The Kremlin invited 1,600 Syrians to Sochi but the main opposition faction said no.",
    "Russia is hosting a Syria peace summit.",
]


@pytest.fixture(scope="module")
def student() -> object:
    return AutoTokenizer.from_pretrained(str(base_model_path()))


@pytest.fixture(scope="module")
def mpnet_style(student: object) -> object:
    """An MPNet tokenizer (<s> q </s></s> c </s>) over the same word pieces, ids shifted."""
    words = [w for w, _ in sorted(student.get_vocab().items(), key=lambda kv: kv[1])]  # type: ignore[attr-defined]
    tokens = ["<s>", "<pad>", "</s>", "<unk>", *words, "<mask>"]
    return MPNetTokenizerFast(vocab={t: i for i, t in enumerate(tokens)}, unk_token="<unk>")


def test_translated_windows_equal_the_teachers_own_encoding(
    student: object, mpnet_style: object
) -> None:
    tmap = token_map(student, mpnet_style)
    assert tmap.mid_seps == 2
    s_enc = student([QUESTION] * 2, CONTEXTS)  # type: ignore[operator]
    batch = pad_batch(s_enc["input_ids"], s_enc["token_type_ids"], student.pad_token_id)  # type: ignore[attr-defined]
    ids, mask, keep = translate(
        tmap,
        student.sep_token_id,
        batch["input_ids"],
        batch["attention_mask"],  # type: ignore[attr-defined]
    )
    t_enc = mpnet_style([QUESTION] * 2, CONTEXTS)  # type: ignore[operator]
    for row, expected in enumerate(t_enc["input_ids"]):
        n = len(expected)
        assert ids[row, :n].tolist() == expected
        assert mask[row].sum() == n and mask[row, :n].all()
        # Every real student position lands on the teacher token of the same string.
        real = batch["attention_mask"][row].bool()
        s_tokens = student.convert_ids_to_tokens(batch["input_ids"][row][real])  # type: ignore[attr-defined]
        t_tokens = mpnet_style.convert_ids_to_tokens(ids[row, keep[row][real]])  # type: ignore[attr-defined]
        words = [(a, b) for a, b in zip(s_tokens, t_tokens, strict=True) if not a.startswith("[")]
        assert words and all(a == b for a, b in words)


def test_a_foreign_vocabulary_is_refused(student: object) -> None:
    tokens = ["<s>", "<pad>", "</s>", "<unk>", "zzz", "<mask>"]
    foreign = MPNetTokenizerFast(vocab={t: i for i, t in enumerate(tokens)}, unk_token="<unk>")
    with pytest.raises(TeacherMismatch, match="vocabulary"):
        token_map(student, foreign)


def test_distill_loss_is_zero_for_the_teachers_own_logits_and_ignores_padding() -> None:
    torch.manual_seed(0)
    mask = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]])
    teacher = (torch.randn(2, 6), torch.randn(2, 6))
    assert float(distill_loss(teacher, teacher, mask, 2.0)) == pytest.approx(0.0, abs=1e-6)
    student = (torch.randn(2, 6), torch.randn(2, 6))
    loss = float(distill_loss(student, teacher, mask, 2.0))
    assert loss > 0.0
    noisy = tuple(t.clone() for t in student)
    for t in noisy:
        t[0, 4:] = 50.0  # padding of row 0: must not count
    assert float(distill_loss(noisy, teacher, mask, 2.0)) == pytest.approx(loss, rel=1e-5)
