"""Settings: every NEWSQA_* variable validated in one way; the bf16 decision from CPU flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from qa import hardware, settings
from qa.errors import SettingError, UsageError
from qa.index.embed import embed_bf16
from qa.reader.model import reader_bf16

ZEN3 = "model name\t: AMD EPYC\nflags\t\t: fpu sse2 avx avx2 fma\n"
SKYLAKE_X = "model name\t: Xeon Gold 6148\nflags\t\t: avx2 avx512f avx512bw avx512vl\n"
SAPPHIRE = (
    "model name\t: Xeon Platinum 8480\nflags\t\t: avx2 avx512f avx512_bf16 amx_bf16 amx_tile\n"
)


def test_defaults_with_nothing_set() -> None:
    s = settings.load({"XDG_CACHE_HOME": "/x"})
    assert s.index_dir == Path("index") and s.model is None and s.faiss == "auto"
    assert (s.delta_min, s.delta_share) == (20_000, 0.1)
    assert (s.embed_dtype, s.reader_dtype, s.reader_backend) == ("auto", "auto", "auto")
    assert s.cache_dir == Path("/x/newsqa") and s.base_dir is None


def test_values_are_parsed() -> None:
    s = settings.load(
        {
            "NEWSQA_FAISS": " HNSW ",
            "NEWSQA_DELTA_MIN": "0",
            "NEWSQA_DELTA_SHARE": "10",
            "NEWSQA_READER_DTYPE": "fp32",
            "NEWSQA_CACHE_DIR": "/tmp/c",
            "NEWSQA_INDEX": "idx",
        }
    )
    assert (s.faiss, s.delta_min, s.delta_share) == ("hnsw", 0, 10.0)
    assert (s.reader_dtype, s.cache_dir, s.index_dir) == ("fp32", Path("/tmp/c"), Path("idx"))


@pytest.mark.parametrize(
    ("name", "value", "allowed"),
    [
        ("NEWSQA_FAISS", "rff", "auto, flat, ivf, hnsw"),
        ("NEWSQA_READER_DTYPE", "float32", "auto, bf16, fp32"),
        ("NEWSQA_EMBED_DTYPE", "half", "auto, bf16, fp32"),
        ("NEWSQA_READER_BACKEND", "tensorrt", "auto, torch, onnx"),
        ("NEWSQA_DELTA_MIN", "-1", "whole number >= 0"),
        ("NEWSQA_DELTA_MIN", "lots", "whole number >= 0"),
        ("NEWSQA_DELTA_SHARE", "nan", "number >= 0"),
        ("NEWSQA_MODEL", "  ", "empty"),
    ],
)
def test_a_bad_value_names_the_variable_and_what_it_allows(
    name: str, value: str, allowed: str
) -> None:
    with pytest.raises(SettingError) as err:
        settings.load({name: value})
    message = str(err.value)
    assert name in message and allowed in message and "\n" not in message
    assert isinstance(err.value, UsageError)  # exit code 2 in the CLI


def test_the_retired_fp32_switch_says_what_replaced_it() -> None:
    with pytest.raises(SettingError, match="NEWSQA_EMBED_DTYPE=fp32"):
        settings.load({"NEWSQA_FP32": "1"})


def test_every_setting_is_a_field_and_in_the_table() -> None:
    fields = set(settings.Settings.__dataclass_fields__)
    table = settings.settings_table()
    for s in settings.SETTINGS:
        assert s.attr in fields
        assert f"`{s.env}`" in table


@pytest.mark.parametrize(
    ("cpuinfo", "bf16", "name"),
    [
        (ZEN3, False, "AMD EPYC"),
        (SKYLAKE_X, False, "Xeon Gold 6148"),
        (SAPPHIRE, True, "Xeon Platinum 8480"),
    ],
)
def test_bf16_is_decided_from_the_flags(cpuinfo: str, bf16: bool, name: str) -> None:
    model, flags = hardware.cpu_flags(cpuinfo)
    hw = hardware.Hardware(model=model, flags=flags, cores=2)
    # An AVX-512 CPU without avx512_bf16 is not a bf16 CPU (torch calls it "AVX512").
    assert hw.bf16 is bf16
    assert model == name and "avx2" in flags


def _fake_cpu(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, cpuinfo: str) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text(cpuinfo)
    monkeypatch.setattr(hardware, "CPUINFO", info)
    hardware.probe.cache_clear()
    hardware.bf16_supported.cache_clear()


@pytest.fixture()
def fresh_probe() -> object:
    yield None
    hardware.probe.cache_clear()
    hardware.bf16_supported.cache_clear()


def test_embedder_and_reader_share_one_decision_on_avx512_without_bf16(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fresh_probe: object
) -> None:
    _fake_cpu(monkeypatch, tmp_path, SKYLAKE_X)
    monkeypatch.delenv("NEWSQA_READER_DTYPE", raising=False)
    monkeypatch.delenv("NEWSQA_EMBED_DTYPE", raising=False)
    assert hardware.bf16_supported() is False
    assert reader_bf16() is False and embed_bf16() is False


def test_a_bf16_cpu_runs_both_in_bf16_unless_fp32_is_asked(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fresh_probe: object
) -> None:
    _fake_cpu(monkeypatch, tmp_path, SAPPHIRE)
    assert hardware.probe().bf16
    # torch's own check still runs (on a CPU without bf16 torch emulates it, and passes).
    assert hardware.bf16_supported() is True
    assert reader_bf16("auto") is True and embed_bf16("auto") is True
    assert reader_bf16("fp32") is False and embed_bf16("fp32") is False
    assert reader_bf16("bf16") is True and embed_bf16("bf16") is True
