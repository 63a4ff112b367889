"""Training checkpoints load tensors and plain values only: a crafted file cannot run code.

The model is a tiny BERT built from its config (no files needed), trained for one step with
the trainer's own optimiser and schedule, and saved with the trainer's own save function.
"""

from __future__ import annotations

import builtins
import pickle
import random
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import AutoModelForQuestionAnswering, BertConfig

from qa.errors import TrainingError
from qa.train.__main__ import main
from qa.train.config import CHECKPOINT_FILE, TrainConfig
from qa.train.export import load_checkpoint, save_checkpoint
from qa.train.loop import make_optimizer, restore


def _tiny_model() -> Any:
    config = BertConfig(
        vocab_size=64,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=32,
    )
    model = AutoModelForQuestionAnswering.from_config(config)
    model.get_input_embeddings().weight.requires_grad_(False)  # frozen, as in training
    return model


def _trained(config: TrainConfig) -> tuple[Any, Any, Any]:
    torch.manual_seed(0)
    model = _tiny_model()
    optim, sched = make_optimizer(model, config, total_steps=10)
    out = model(
        input_ids=torch.tensor([[1, 5, 9, 2]]),
        start_positions=torch.tensor([1]),
        end_positions=torch.tensor([2]),
    )
    out.loss.backward()
    optim.step()
    sched.step()
    return model, optim, sched


class _CreatesAFile:
    """Unpickling this calls ``open(target, "w")``: the file appears if code ran."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        return (builtins.open, (str(self.target), "w"))


def test_a_checkpoint_of_the_trainer_loads_back_and_resumes(tmp_path: Path) -> None:
    config = TrainConfig(out=str(tmp_path), train_note={"train_questions": 9})
    model, optim, sched = _trained(config)
    path = tmp_path / CHECKPOINT_FILE
    random.seed(7)
    python_rng = random.getstate()
    save_checkpoint(path, model, optim, sched, 1, config)

    ckpt = load_checkpoint(path)
    assert TrainConfig.from_dict(ckpt["args"]) == config
    assert ckpt["step"] == 1 and ckpt["config"]["hidden_size"] == 16

    # Resume into a fresh model, optimiser and schedule, as `--resume` does.
    fresh = _tiny_model()
    fresh_optim, fresh_sched = make_optimizer(fresh, config, total_steps=10)
    random.seed(99)
    assert restore(path, fresh, fresh_optim, fresh_sched) == 1
    embeddings = "bert.embeddings.word_embeddings.weight"  # not stored: it comes from the base
    for name, value in model.state_dict().items():
        if name != embeddings:
            assert torch.equal(fresh.state_dict()[name], value), name
    assert fresh_sched.state_dict()["last_epoch"] == sched.state_dict()["last_epoch"] == 1
    assert fresh_optim.state_dict()["state"].keys() == optim.state_dict()["state"].keys()
    assert random.getstate() == python_rng


REFUSED = (
    "refused: it holds objects other than tensors and plain values "
    "(Unsupported global: GLOBAL io.open); load only checkpoints that `python -m qa.train` wrote"
)


@pytest.mark.parametrize(
    ("form", "reason"),
    [
        ("torch.save", REFUSED),
        ("pickle protocol 2", REFUSED),
        # The restricted unpickler stops at protocol 5's first opcode, before any object.
        ("pickle protocol 5", "is not a training checkpoint (not a torch file)"),
    ],
)
def test_a_crafted_checkpoint_is_refused_and_runs_nothing(
    tmp_path: Path, form: str, reason: str
) -> None:
    target = tmp_path / "created-by-the-checkpoint"
    path = tmp_path / CHECKPOINT_FILE
    payload = {"args": {}, "model": {}, "step": _CreatesAFile(target)}
    if form == "torch.save":
        torch.save(payload, path)
    else:
        path.write_bytes(pickle.dumps(payload, protocol=int(form[-1])))
    with pytest.raises(TrainingError) as caught:
        load_checkpoint(path)
    assert str(caught.value) == f"{path} {reason}"
    assert not target.exists()


def test_the_training_command_refuses_a_crafted_checkpoint_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "created-by-the-checkpoint"
    path = tmp_path / CHECKPOINT_FILE
    torch.save({"args": {}, "model": _CreatesAFile(target)}, path)
    dest = tmp_path / "reader"
    assert main(["export", "--ckpt", str(path), "--dest", str(dest)]) == 1
    assert main(["--out", str(tmp_path), "--resume", "--device", "cpu"]) == 1
    err = capsys.readouterr().err
    line = f"error: {path} refused: it holds objects other than tensors and plain values"
    assert err.splitlines() == [err.splitlines()[0]] * 2
    assert err.startswith(line)
    assert not target.exists() and not dest.exists()


def test_damaged_and_foreign_files_are_one_line_errors(tmp_path: Path) -> None:
    config = TrainConfig(out=str(tmp_path))
    model, optim, sched = _trained(config)
    good = tmp_path / "good.pt"
    save_checkpoint(good, model, optim, sched, 1, config)
    cases = {
        "truncated.pt": good.read_bytes()[: good.stat().st_size // 2],
        "text.pt": b"not a checkpoint at all\n",
        "empty.pt": b"",
    }
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
    torch.save([1, 2, 3], tmp_path / "list.pt")
    for name in [*cases, "list.pt"]:
        with pytest.raises(TrainingError) as caught:
            load_checkpoint(tmp_path / name)
        message = str(caught.value)
        assert message.startswith(f"{tmp_path / name} "), message
        assert "not a training checkpoint" in message and "\n" not in message, message
