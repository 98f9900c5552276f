"""device: the one place a device is chosen; mixed-precision choices."""

import pytest
import torch

from course_lib import device


def test_default_device_is_the_best_available(monkeypatch):
    monkeypatch.delenv("COURSE_DEVICE", raising=False)
    expected = "cuda" if torch.cuda.is_available() else ("mps" if device._mps_available() else "cpu")
    assert device.get_device().type == expected


def test_environment_overrides_the_choice(monkeypatch):
    monkeypatch.setenv("COURSE_DEVICE", "cpu")
    assert device.get_device() == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
def test_asking_for_a_missing_gpu_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("COURSE_DEVICE", "cuda")
    with pytest.raises(RuntimeError, match="no CUDA GPU"):
        device.get_device()


def test_unknown_device_is_rejected():
    with pytest.raises((ValueError, RuntimeError)):
        device.get_device("tpu")


def test_cpu_uses_no_autocast():
    cpu = torch.device("cpu")
    assert device.amp_dtype(cpu) is None
    assert not device.needs_grad_scaler(cpu)
    with device.autocast(cpu):
        y = torch.ones(2, 2) @ torch.ones(2, 2)
    assert y.dtype == torch.float32


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_autocast_uses_a_half_precision_dtype():
    dtype = device.amp_dtype("cuda")
    assert dtype in {torch.bfloat16, torch.float16}
    with device.autocast("cuda"):
        y = torch.ones(4, 4, device="cuda") @ torch.ones(4, 4, device="cuda")
    assert y.dtype == dtype


def test_to_device_moves_nested_batches():
    from collections import namedtuple

    Pair = namedtuple("Pair", "x y")
    batch = {"a": torch.zeros(2), "b": [torch.ones(1), 3], "c": Pair(torch.zeros(1), "label")}
    moved = device.to_device(batch, "cpu")
    assert moved["a"].device.type == "cpu" and moved["b"][1] == 3
    assert isinstance(moved["c"], Pair) and moved["c"].y == "label"


def test_describe_names_the_device():
    assert device.describe("cpu").startswith("cpu (")
