"""Fixtures of the Python package's tests: the repository, the command
(`bin/dcm`, whose results the package must reproduce), ../shared (tests that
need SPM's attention data skip with a message when it is absent)."""
import json
import os
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def shared_dir():
    d = os.environ.get("DCM_SHARED") or os.path.join(ROOT, "..", "shared")
    return os.path.abspath(d)


@pytest.fixture
def dcm_bin():
    b = os.environ.get("DCM_RELEASE_BIN") or os.path.join(ROOT, "bin", "dcm")
    if not os.access(b, os.X_OK):
        pytest.fail("no %s: run `make` first" % b)
    return b


def run_cli(dcm_bin, *args):
    p = subprocess.run([dcm_bin] + [str(a) for a in args], capture_output=True, text=True)
    assert p.returncode == 0, "dcm %s failed (%d): %s" % (" ".join(map(str, args)), p.returncode, p.stderr)
    return p


@pytest.fixture
def attention(tmp_path):
    """SPM's attention-to-motion data from ../shared: the fwd and bwd specs
    (MANUAL 6.2) written into tmp_path, and the data folder."""
    data = os.path.join(shared_dir(), "datasets", "attention")
    if not os.path.isfile(os.path.join(data, "timeseries.tsv")):
        pytest.skip("SKIP: %s not found: the attention tests need ../shared (or DCM_SHARED)" % data)
    specs = {}
    for model, att in (("fwd", "V1 -> V5"), ("bwd", "SPC -> V5")):
        spec = {"TR": 3.22, "TE": 0.04,
                "timeseries": os.path.join(data, "timeseries.tsv"),
                "confounds": os.path.join(data, "confounds.tsv"),
                "events": os.path.join(data, "events.tsv"),
                "regions": ["V1", "V5", "SPC"], "inputs": ["Photic", "Motion", "Attention"],
                "a": ["V1 -> V5", "V5 -> V1", "V5 -> SPC", "SPC -> V5"],
                "b": {"Motion": ["V1 -> V5"], "Attention": [att]},
                "c": {"Photic": ["V1"]}}
        path = tmp_path / ("attention_%s.json" % model)
        path.write_text(json.dumps(spec))
        specs[model] = path
    return {"data": data, "fwd": specs["fwd"], "bwd": specs["bwd"]}


@pytest.fixture
def design(tmp_path, dcm_bin):
    """The bundled attention design (datasets/attention_design, no ../shared):
    copied into tmp_path with its time series simulated by the command from
    truth.json at SNR 2, seed 1 (what `make demo` does)."""
    src = os.path.join(ROOT, "datasets", "attention_design")
    for f in ("fwd.json", "bwd.json", "events.tsv", "truth.json"):
        (tmp_path / f).write_bytes(open(os.path.join(src, f), "rb").read())
    run_cli(dcm_bin, "simulate", tmp_path / "fwd.json", "--params", tmp_path / "truth.json",
            "--snr", "2", "--seed", "1", "-o", tmp_path / "timeseries.tsv")
    return tmp_path
