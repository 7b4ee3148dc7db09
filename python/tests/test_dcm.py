"""The dcm Python package against the command: same numbers, real errors."""
import csv
import json
import os
import re
import signal
import subprocess
import sys
import threading

import numpy as np
import pytest

import dcm
from conftest import ROOT, run_cli


def read_tsv(path):
    with open(path) as f:
        header = f.readline().rstrip("\n").split("\t")
    return header, np.loadtxt(path, skiprows=1, delimiter="\t", ndmin=2)


def timeseries_array(path, regions):
    header, data = read_tsv(path)
    return data[:, [header.index(r) for r in regions]]


def events_list(path):
    with open(path) as f:
        return list(csv.DictReader(f, delimiter="\t"))


def test_version_is_the_library_s():
    assert re.fullmatch(r"\d+\.\d+\.\d+", dcm.__version__)
    assert dcm.__version__ == dcm.library_version()
    with open(os.path.join(ROOT, "dcm", "dcm_api.h")) as f:
        assert '"%s"' % dcm.__version__ in f.read()


# ------------------------------------------------ SPM's attention data (../shared)

def test_attention_fwd_path_and_bwd_dict_match_the_cli(attention, dcm_bin, tmp_path):
    run_cli(dcm_bin, "estimate", "-q", attention["fwd"], "-o", tmp_path / "cli_fwd.json")
    run_cli(dcm_bin, "estimate", "-q", attention["bwd"], "-o", tmp_path / "cli_bwd.json")
    cli_fwd, cli_bwd = dcm.load(tmp_path / "cli_fwd.json"), dcm.load(tmp_path / "cli_bwd.json")

    fwd = dcm.estimate(str(attention["fwd"]))
    assert abs(fwd.free_energy - cli_fwd.free_energy) <= 1e-9
    assert abs(fwd.free_energy - (-3236.1305)) < 1e-3   # SPM12's F (MANUAL 6.2)
    A = fwd.posterior_mean["A"]
    assert isinstance(A, np.ndarray) and A.shape == (3, 3)
    assert np.array_equal(A, cli_fwd.posterior_mean["A"])
    assert fwd.iterations == cli_fwd.iterations and fwd.converged
    assert set(fwd.posterior_mean["B"]) == {"Photic", "Motion", "Attention"}

    # bwd as a dict: the time series as a (scans, regions) numpy array,
    # confounds as an array and events as a list of dicts
    spec = json.loads(attention["bwd"].read_text())
    data = attention["data"]
    spec["timeseries"] = timeseries_array(os.path.join(data, "timeseries.tsv"), spec["regions"])
    spec["confounds"] = np.loadtxt(os.path.join(data, "confounds.tsv"), ndmin=2)
    spec["events"] = events_list(os.path.join(data, "events.tsv"))
    assert spec["timeseries"].shape == (360, 3)
    bwd = dcm.estimate(spec)
    assert abs(bwd.free_energy - cli_bwd.free_energy) <= 1e-9
    assert np.array_equal(bwd.posterior_mean["A"], cli_bwd.posterior_mean["A"])
    assert np.array_equal(bwd.posterior_sd["B"]["Attention"], cli_bwd.posterior_sd["B"]["Attention"])

    c = dcm.compare([fwd, bwd])
    assert abs((c["log_bf"][0] - c["log_bf"][1]) - 24.71) < 0.005
    assert c["log_bf"][0] == 0.0 and c["posterior"][0] > 0.999999
    # the command prints the same comparison
    out = run_cli(dcm_bin, "compare", tmp_path / "cli_fwd.json", tmp_path / "cli_bwd.json").stdout
    assert "%.4f" % (c["log_bf"][0] - c["log_bf"][1]) in out

    # save writes the result JSON: the command reads it back
    fwd.save(tmp_path / "py_fwd.json")
    again = dcm.load(tmp_path / "py_fwd.json")
    assert again.free_energy == fwd.free_energy
    doc = json.loads((tmp_path / "py_fwd.json").read_text())
    assert doc["vector"]["posterior_mean"] == json.loads((tmp_path / "cli_fwd.json").read_text())["vector"]["posterior_mean"]
    out = run_cli(dcm_bin, "compare", tmp_path / "py_fwd.json", tmp_path / "cli_bwd.json").stdout
    assert "24.7107" in out


# ------------------------------------------------ the bundled design (no ../shared)

def test_dict_with_arrays_matches_the_cli_on_the_bundled_design(design, dcm_bin):
    run_cli(dcm_bin, "estimate", "-q", design / "fwd.json", "-o", design / "cli_fwd.json")
    cli = dcm.load(design / "cli_fwd.json")
    spec = json.loads((design / "fwd.json").read_text())
    spec["timeseries"] = timeseries_array(design / "timeseries.tsv", spec["regions"])
    spec["events"] = events_list(design / "events.tsv")
    fit = dcm.estimate(spec)
    assert abs(fit.free_energy - cli.free_energy) <= 1e-9
    assert np.array_equal(fit.posterior_mean["C"], cli.posterior_mean["C"])
    assert fit.parameter_names == cli.parameter_names
    assert fit.parameter_names[1] == "A:V1->V5"
    # a relative events path in a dict resolves against base_dir
    spec["events"] = "events.tsv"
    again = dcm.estimate(spec, base_dir=design)
    assert again.free_energy == fit.free_energy


def test_simulate_gives_the_cli_s_series(design):
    truth = json.loads((design / "truth.json").read_text())
    y = dcm.simulate(design / "fwd.json", params=truth, snr=2, seed=1)
    _, cli = read_tsv(design / "timeseries.tsv")
    assert y.shape == (360, 3)
    assert np.array_equal(y, cli)
    clean = dcm.simulate(design / "fwd.json", params=truth)
    assert np.abs(clean - y).max() > 0.1          # noise was added above, not here
    with pytest.raises(ValueError, match="no parameter 'A:V1->XX'"):
        dcm.simulate(design / "fwd.json", params={"A:V1->XX": 1.0})


def test_reduce_matches_the_cli(design, dcm_bin):
    run_cli(dcm_bin, "estimate", "-q", design / "fwd.json", "-o", design / "fit.json")
    out = run_cli(dcm_bin, "reduce", design / "fit.json", "--off", "B:Attention:*", "--json").stdout
    cli = json.loads(out)
    red = dcm.reduce(dcm.load(design / "fit.json"), off=["B:Attention:*"])
    assert red["switched_off"] == ["B:Attention:V1->V5"]
    assert abs(red["dF"] - cli["dF"]) <= 1e-9
    assert np.allclose(red["vector"]["posterior_mean"], cli["vector"]["posterior_mean"], rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="selects no free parameter"):
        dcm.reduce(dcm.load(design / "fit.json"), off=["B:Nothing:*"])


def test_compare_rfx_and_peb(design):
    fits = [dcm.estimate(str(design / "fwd.json")), dcm.estimate(str(design / "bwd.json"))]
    c = dcm.compare(fits)
    assert c["log_bf"][0] == 0.0 and c["log_bf"][1] < -3   # the generating model wins (MANUAL 6.1)
    assert abs(sum(c["posterior"]) - 1) < 1e-12
    r = dcm.rfx([[0.0, -3.0], [0.0, -5.0], [0.0, -4.0], [-1.0, 0.0]])
    assert r["xp"][0] > 0.8 and abs(r["exp_r"].sum() - 1) < 1e-12 and r["g"].shape == (4, 2)
    with pytest.raises(RuntimeError):
        dcm.rfx([[np.nan, 0.0], [0.0, 0.0]])
    # PEB over four "subjects": the simulated series with other noise
    truth = json.loads((design / "truth.json").read_text())
    spec = json.loads((design / "fwd.json").read_text())
    spec["events"] = str(design / "events.tsv")
    subjects = []
    for seed in (1, 2, 3, 4):
        spec["timeseries"] = dcm.simulate(design / "fwd.json", params=truth, snr=2, seed=seed)
        subjects.append(dcm.estimate(spec))
    g = dcm.peb(subjects, design=np.ones((4, 1)), params="B")
    assert g["parameters"] == ["B:Motion:V1->V5", "B:Attention:V1->V5"]
    assert g["Ep"].shape == (2, 1)
    mean_b = np.mean([s.Ep[[s.parameter_names.index(p) for p in g["parameters"]]] for s in subjects], axis=0)
    assert np.allclose(g["Ep"][:, 0], mean_b, atol=0.1)
    # the group means are near the generating values (0.30, 0.40; shrunk as in MANUAL 6.1)
    assert np.allclose(g["Ep"][:, 0], [truth["B:Motion:V1->V5"], truth["B:Attention:V1->V5"]], atol=0.1)
    assert g["effects"]["probability"][1, 0] > 0.9   # Attention (Motion: 0.59 with 4 subjects)


# ------------------------------------------------ errors, threads, stopping

def test_errors_carry_the_library_s_message(design, tmp_path):
    spec = json.loads((design / "fwd.json").read_text())
    spec["timeseries"] = np.zeros((360, 2))
    with pytest.raises(ValueError, match=r"shape \(360, 2\).*\(scans, 3\)"):
        dcm.estimate(spec)
    del spec["timeseries"]
    spec.pop("TR")
    spec["timeseries"] = timeseries_array(design / "timeseries.tsv", spec["regions"])
    spec["events"] = str(design / "events.tsv")
    with pytest.raises(ValueError, match=r'spec \(dict\): missing "TR"') as e:
        dcm.estimate(spec)
    assert e.value.code == 2
    spec["TR"] = 3.22
    spec["events"] = [{"onset": 0, "duration": 10, "trial_type": "Photic"}]
    with pytest.raises(ValueError, match='input "Motion" has no events'):
        dcm.estimate(spec)
    spec["events"] = [{"onset": -1, "duration": 10, "trial_type": "Photic"}]
    with pytest.raises(ValueError, match="negative"):
        dcm.estimate(spec)
    ts = spec["timeseries"].copy()
    ts[5, 1] = np.nan
    spec["timeseries"] = ts
    with pytest.raises(ValueError, match="NaN or infinite at \\(5, 1\\)"):
        dcm.estimate(spec)
    with pytest.raises(ValueError, match="no such file"):
        dcm.load(tmp_path / "absent.json")
    with pytest.raises(ValueError, match="cannot open|No such file|not found|no such"):
        dcm.estimate(str(tmp_path / "absent_spec.json"))
    fit = dcm.estimate(str(design / "fwd.json"))
    with pytest.raises(OSError):
        fit.save(tmp_path / "no" / "such" / "dir" / "fit.json")
    assert not (tmp_path / "no").exists()


def test_threads_give_the_serial_results(design):
    serial = [dcm.estimate(str(design / m)).free_energy for m in ("fwd.json", "bwd.json")]
    out = {}

    def fit(m):
        out[m] = dcm.estimate(str(design / m)).free_energy

    threads = [threading.Thread(target=fit, args=(m,)) for m in ("fwd.json", "bwd.json")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [out["fwd.json"], out["bwd.json"]] == serial


def test_a_progress_callback_stops_the_fit(design):
    seen = []

    def progress(iteration, F, dF, accepted):
        seen.append(iteration)
        return iteration >= 3

    fit = dcm.estimate(str(design / "fwd.json"), progress=progress)
    assert seen == [1, 2, 3]
    assert fit.iterations == 3 and not fit.converged and fit.stopped
    assert any("stopped by the caller" in w for w in fit.warnings)

    def broken(iteration, F, dF, accepted):
        raise ZeroDivisionError("from the callback")

    with pytest.raises(ZeroDivisionError, match="from the callback"):
        dcm.estimate(str(design / "fwd.json"), progress=broken)


def test_ctrl_c_stops_a_fit(design):
    """A real SIGINT, sent once the fit has started, stops it at the next
    iteration and raises KeyboardInterrupt."""
    script = (
        "import sys, dcm\n"
        "def progress(i, F, dF, a):\n"
        "    print('iteration', i, flush=True)\n"
        "    if i == 1:\n"
        "        sys.stdin.readline()   # wait until the parent has sent SIGINT\n"
        "try:\n"
        "    dcm.estimate(sys.argv[1], progress=progress)\n"
        "    print('finished', flush=True)\n"
        "except KeyboardInterrupt:\n"
        "    print('interrupted', flush=True)\n"
        "    sys.exit(130)\n")
    p = subprocess.Popen([sys.executable, "-c", script, str(design / "fwd.json")],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "iteration 1"
    p.send_signal(signal.SIGINT)
    p.stdin.write("go\n")
    p.stdin.flush()
    rest = p.stdout.read()
    assert p.wait(timeout=60) == 130
    assert rest.strip().splitlines()[-1] == "interrupted"
    assert "iteration 3" not in rest


def test_the_manual_s_nibabel_example(tmp_path):
    """MANUAL 18.4: regions from a NIfTI with nibabel (a synthetic study whose
    voxels carry the bundled design's simulated series), both models fitted."""
    pytest.importorskip("nibabel", reason="SKIP: no nibabel (apt-get install python3-nibabel)")
    script = os.path.join(ROOT, "python", "examples", "nifti_fit.py")
    p = subprocess.run([sys.executable, script, "--demo", str(tmp_path)], capture_output=True,
                       text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    m = re.search(r"log Bayes factor fwd - bwd (-?[0-9.]+)", p.stdout)
    assert m and float(m.group(1)) > 3, p.stdout        # the generating model wins
    fwd = dcm.load(tmp_path / "fwd.json")
    A = fwd.posterior_mean["A"]
    assert abs(A[1, 0] - 0.45) < 0.1 and abs(A[2, 1] - 0.35) < 0.1   # V1->V5, V5->SPC
    assert (tmp_path / "bold.nii.gz").stat().st_size > 1000
    # a label the atlas lacks is an error naming the file
    sys.path.insert(0, os.path.dirname(script))
    try:
        import nifti_fit
        with pytest.raises(ValueError, match="has no voxel labelled 9"):
            nifti_fit.extract(str(tmp_path / "bold.nii.gz"), str(tmp_path / "atlas.nii.gz"), [1, 9])
    finally:
        sys.path.remove(os.path.dirname(script))
