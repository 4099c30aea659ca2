import pytest

from keras_mapping.training.precision import cpu_flags, resolve_precision


def cpuinfo(tmp_path, flags):
    path = tmp_path / "cpuinfo"
    path.write_text(f"processor\t: 0\nmodel name\t: Test CPU\nflags\t\t: {flags}\n\n")
    return path


def test_auto_picks_bf16_only_where_the_cpu_computes_it(tmp_path):
    native = cpuinfo(tmp_path, "fpu sse avx2 avx512f avx512_bf16")
    assert "avx512_bf16" in cpu_flags(native)
    assert resolve_precision("auto", cpuinfo=native, gpu_capabilities=[]) == "bf16"
    emulated = cpuinfo(tmp_path, "fpu sse avx2 fma")
    assert resolve_precision("auto", cpuinfo=emulated, gpu_capabilities=[]) == "fp32"
    assert resolve_precision("auto", cpuinfo=tmp_path / "missing",
                             gpu_capabilities=[]) == "fp32"


def test_auto_follows_the_gpus(tmp_path):
    emulated = cpuinfo(tmp_path, "fpu avx2")
    assert resolve_precision("auto", cpuinfo=emulated, gpu_capabilities=[(9, 0)]) == "bf16"
    assert resolve_precision("auto", cpuinfo=emulated,
                             gpu_capabilities=[(9, 0), (7, 5)]) == "fp32"


def test_explicit_precision_is_kept_and_unknown_is_refused():
    assert resolve_precision("fp16") == "fp16"
    with pytest.raises(ValueError, match="precision"):
        resolve_precision("fp8")
