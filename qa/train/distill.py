"""Knowledge distillation of a bigger QA reader (the teacher) into the shipped small one.

The teacher is a reader fine-tuned on another base with ``python -m qa.train --base``
(e.g. all-mpnet-base-v2 from its pip parts). During student training it reads the very same
windows as the student: the student's word pieces are mapped to the teacher's ids by their
strings (all-mpnet-base-v2 and all-MiniLM-L6-v2 share BERT's uncased WordPiece vocabulary,
so the tokenisation, and hence every position, is the same), and the teacher's pair template
(MPNet puts two separators between question and context) is rebuilt around them. The
student then learns from the teacher's start/end distributions as well as from the gold
span (Hinton et al. 2015; as in DistilBERT's SQuAD recipe):

    loss = (1 - alpha) * CE(gold) + alpha * T^2 * KL(teacher_T || student_T)

over the window's real tokens, where ``_T`` is the softmax at temperature ``T``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from qa.errors import TeacherMismatch
from qa.reader.model import autocast, load_qa_model, model_device, model_inputs

# Share of the student's vocabulary the teacher must know by string for a faithful mapping.
_MIN_SHARED_VOCAB = 0.99


@dataclass
class TokenMap:
    """Student word-piece ids -> teacher ids, and the teacher's pair template.

    Attributes:
        ids: ``ids[student_id]`` is the teacher id of the same string (teacher UNK if none).
        cls: Teacher id opening a sequence.
        sep: Teacher separator id.
        pad: Teacher padding id.
        mid_seps: Separators the teacher puts between the two segments (BERT 1, MPNet 2).
    """

    ids: torch.Tensor
    cls: int
    sep: int
    pad: int
    mid_seps: int


def token_map(student_tok: Any, teacher_tok: Any) -> TokenMap:
    """Map the student's vocabulary onto the teacher's by token string.

    Raises:
        TeacherMismatch: when the vocabularies differ too much (another tokeniser family).
    """
    s_vocab = student_tok.get_vocab()
    t_vocab = teacher_tok.get_vocab()
    unk = teacher_tok.unk_token_id
    ids = torch.full((max(s_vocab.values()) + 1,), int(unk), dtype=torch.long)
    shared = 0
    for token, sid in s_vocab.items():
        if token in t_vocab:
            ids[sid] = t_vocab[token]
            shared += 1
    if shared < _MIN_SHARED_VOCAB * len(s_vocab):
        raise TeacherMismatch(
            f"the teacher's vocabulary shares only {shared}/{len(s_vocab)} word pieces with "
            "the student's; distillation needs the same word-piece vocabulary"
        )
    seq = teacher_tok("a", "b").sequence_ids()  # the pair template, e.g. <s> a </s></s> b </s>
    mid = seq.index(1) - seq.index(0) - 1
    ids[student_tok.cls_token_id] = teacher_tok.cls_token_id
    ids[student_tok.sep_token_id] = teacher_tok.sep_token_id
    ids[student_tok.pad_token_id] = teacher_tok.pad_token_id
    return TokenMap(
        ids, teacher_tok.cls_token_id, teacher_tok.sep_token_id, teacher_tok.pad_token_id, mid
    )


class Teacher:
    """A bigger reader that scores the student's windows.

    Args:
        folder: The teacher's exported folder (a plain Hugging Face QA model folder).
        student_tokenizer: The student's tokenizer (whose windows the teacher reads).
    """

    def __init__(self, folder: Path, student_tokenizer: Any, device: str = "cpu") -> None:
        model, tokenizer = load_qa_model(folder, backend="torch")
        self.model = model.to(device)
        self.map = token_map(student_tokenizer, tokenizer)
        self.map.ids = self.map.ids.to(device)  # translate() runs where the batches are
        self.student_sep = int(student_tokenizer.sep_token_id)

    def logits(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, use_bf16: bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Teacher start/end logits at the student's positions (float32, same shape).

        The logits are on the teacher's device (moved there with ``to``).
        """
        device = model_device(self.model)
        ids, mask, keep = translate(
            self.map, self.student_sep, input_ids.to(device), attention_mask.to(device)
        )
        with torch.inference_mode(), autocast(use_bf16, device.type):
            out = self.model(**model_inputs(self.model, {"input_ids": ids, "attention_mask": mask}))
        rows = torch.arange(len(ids), device=device).unsqueeze(1)
        start = out.start_logits.float()[rows, keep]
        end = out.end_logits.float()[rows, keep]
        return start.clone(), end.clone()  # plain tensors, usable outside inference mode


def translate(
    tmap: TokenMap, student_sep: int, input_ids: torch.Tensor, attention_mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The teacher's ids and mask for a padded student batch, and the position map.

    Returns:
        ``(ids, mask, keep)`` where ``keep[row, p]`` is the teacher position of student
        position ``p``: the same up to the question's separator, then shifted right by the
        teacher's extra separators.
    """
    extra = tmap.mid_seps - 1
    n, width = input_ids.shape
    dev = input_ids.device  # tensors made here live with the batch (CPU or GPU)
    first_sep = (input_ids == student_sep).int().argmax(dim=1, keepdim=True)
    pos = torch.arange(width, device=dev).unsqueeze(0).expand(n, width)
    keep = pos + extra * (pos > first_sep).long()
    ids = torch.full((n, width + extra), tmap.pad, dtype=torch.long, device=dev)
    mask = torch.zeros((n, width + extra), dtype=torch.long, device=dev)
    rows = torch.arange(n, device=dev).unsqueeze(1)
    ids[rows, keep] = tmap.ids[input_ids]
    mask[rows, keep] = attention_mask
    for k in range(extra):
        ids[rows[:, 0], first_sep[:, 0] + 1 + k] = tmap.sep
        mask[rows[:, 0], first_sep[:, 0] + 1 + k] = 1
    return ids, mask, keep


def distill_loss(
    student: tuple[torch.Tensor, torch.Tensor],
    teacher: tuple[torch.Tensor, torch.Tensor],
    attention_mask: torch.Tensor,
    temperature: float,
) -> torch.Tensor:
    """T^2-scaled KL(teacher || student) of the start and end distributions, batch mean.

    Padding positions are left out of both softmaxes.
    """
    pad = attention_mask == 0
    total = torch.zeros((), dtype=torch.float32, device=attention_mask.device)
    for s_logits, t_logits in zip(student, teacher, strict=True):
        s = s_logits.float().masked_fill(pad, -1e4) / temperature
        t = t_logits.float().masked_fill(pad, -1e4) / temperature
        kl = torch.nn.functional.kl_div(
            torch.log_softmax(s, dim=-1),
            torch.log_softmax(t, dim=-1),
            log_target=True,
            reduction="batchmean",
        )
        total = total + kl
    return total * temperature**2 / 2
