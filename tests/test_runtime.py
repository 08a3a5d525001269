"""Tests for seqtag.runtime: device choice, seeding, CPU threads, the machine record."""

import random

import numpy as np
import pytest
import torch

from seqtag.runtime import cpu_name, cpu_threads, machine, resolve_device, seed_everything


def test_auto_picks_cuda_only_when_available():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device("AUTO").type == expected


def test_explicit_cpu_and_device_objects_pass_through():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_gpu_is_a_clear_error():
    with pytest.raises(RuntimeError, match="no CUDA device"):
        resolve_device("cuda")


def test_unknown_device_names_the_choices():
    with pytest.raises(ValueError, match="'auto', 'cpu' or 'cuda"):
        resolve_device("tpu-please")
    with pytest.raises(TypeError, match="device must be a str or torch.device, got int"):
        resolve_device(3)  # type: ignore[arg-type]


def test_seed_everything_repeats_all_generators():
    def draw():
        return random.random(), float(np.random.rand()), torch.rand(3).tolist()

    seed_everything(7)
    first = draw()
    seed_everything(7)
    assert draw() == first
    seed_everything(8)
    assert draw() != first


@pytest.mark.parametrize("bad", [-1, 1.5, True, "0"])
def test_seed_must_be_a_non_negative_int(bad):
    with pytest.raises(ValueError, match="non-negative int"):
        seed_everything(bad)


def test_cpu_threads_sets_and_restores_even_on_error():
    start = torch.get_num_threads()
    other = 2 if start != 2 else 1
    with cpu_threads(other):
        assert torch.get_num_threads() == other
    assert torch.get_num_threads() == start
    with pytest.raises(KeyError, match="boom"), cpu_threads(other):
        raise KeyError("boom")
    assert torch.get_num_threads() == start
    with cpu_threads(None):  # leaves the setting alone
        assert torch.get_num_threads() == start


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_cpu_threads_rejects_bad_counts(bad):
    with pytest.raises(ValueError, match="int >= 1 or None"), cpu_threads(bad):
        pass


def test_machine_record_describes_this_machine():
    import json
    import os

    info = machine("cpu")
    json.dumps(info)  # JSON-able
    assert info["cpu"] == cpu_name() and info["cpu"]
    assert info["cpu_count"] == os.cpu_count()
    assert info["torch"] == torch.__version__
    assert info["torch_threads"] == torch.get_num_threads()
    assert info["device"] == "cpu" and info["gpu"] is None
    assert info["date"].endswith("UTC")
    if hasattr(os, "getloadavg"):
        assert len(info["load_average"]) == 3


def test_cpu_name_reads_proc_cpuinfo(monkeypatch, tmp_path):
    import builtins

    fake = tmp_path / "cpuinfo"
    fake.write_text("processor\t: 0\nmodel name\t: Example CPU 9000 @ 1.00GHz\n")
    real_open = builtins.open
    monkeypatch.setattr(builtins, "open", lambda p, *a, **k: real_open(fake if p == "/proc/cpuinfo" else p, *a, **k))
    assert cpu_name() == "Example CPU 9000 @ 1.00GHz"
    # x86 family and model tell two chips sold under one brand apart (only the first CPU's block is read)
    fake.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 26\nmodel\t\t: 2\n"
                    "model name\t: AMD EPYC\n\nprocessor\t: 1\ncpu family\t: 25\nmodel\t\t: 1\n")
    assert cpu_name() == "AMD EPYC (family 26, model 2)"
