#!/usr/bin/env python3
"""make bench: do two fits in two Python threads run in parallel?

dcm.estimate releases the GIL while the library fits (ctypes), so two fits in
two threads should take about one fit's wall time on two free cores (the
issue asks for < 1.6x). Measured pair by pair, interleaved (one fit alone,
then two in two threads, then two in two processes as the control: the
threads can do no better than processes on the cores the machine gives), so load from other programs hits both alike;
prints the medians and the median of the per-pair ratios, and how many
cores the process kept busy while the two ran (CPU seconds / wall seconds:
above 1 only when both fits computed at once).

The model: SPM's attention fwd model when ../shared (or DCM_SHARED) has its
data, else the bundled attention design with data simulated by dcm.simulate.
Usage: bench_threads.py [REPEATS]   (default 7)
"""
import json
import multiprocessing
import os
import statistics
import sys
import threading
import time

import dcm

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def model():
    data = os.path.join(os.environ.get("DCM_SHARED") or os.path.join(ROOT, "..", "shared"),
                        "datasets", "attention")
    if os.path.isfile(os.path.join(data, "timeseries.tsv")):
        return "SPM's attention data, fwd model", {
            "TR": 3.22, "TE": 0.04, "regions": ["V1", "V5", "SPC"],
            "inputs": ["Photic", "Motion", "Attention"],
            "timeseries": os.path.join(data, "timeseries.tsv"),
            "confounds": os.path.join(data, "confounds.tsv"),
            "events": os.path.join(data, "events.tsv"),
            "a": ["V1 -> V5", "V5 -> V1", "V5 -> SPC", "SPC -> V5"],
            "b": {"Motion": ["V1 -> V5"], "Attention": ["V1 -> V5"]}, "c": {"Photic": ["V1"]}}
    design = os.path.join(ROOT, "datasets", "attention_design")
    with open(os.path.join(design, "fwd.json")) as f:
        spec = json.load(f)
    with open(os.path.join(design, "truth.json")) as f:
        truth = json.load(f)
    spec["events"] = os.path.join(design, "events.tsv")
    spec["timeseries"] = dcm.simulate(os.path.join(design, "fwd.json"), params=truth, snr=2, seed=1)
    return "the bundled attention design (simulated, SNR 2)", spec


def one(spec):
    t, c = time.perf_counter(), time.process_time()
    dcm.estimate(spec)
    return time.perf_counter() - t, time.process_time() - c


def two_threads(spec):
    threads = [threading.Thread(target=dcm.estimate, args=(spec,)) for _ in range(2)]
    t, c = time.perf_counter(), time.process_time()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return time.perf_counter() - t, time.process_time() - c


def two_processes(spec):
    """The control: two fits in two forked processes (no GIL to share), so
    the ratio says how many cores the machine gave at the time."""
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=dcm.estimate, args=(spec,)) for _ in range(2)]
    t = time.perf_counter()
    for pr in procs:
        pr.start()
    for pr in procs:
        pr.join()
    return time.perf_counter() - t


def main():
    reps = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    name, spec = model()
    dcm.estimate(spec)   # warm-up (library set-up, page cache)
    singles, pairs, ratios, busy, control = [], [], [], [], []
    for _ in range(reps):
        s, _cpu = one(spec)
        p, cpu = two_threads(spec)
        q = two_processes(spec)
        singles.append(s)
        pairs.append(p)
        ratios.append(p / s)
        busy.append(cpu / p)
        control.append(q / s)
    print("python threads (%s), %d interleaved pairs, %d cores:" % (name, reps, os.cpu_count()))
    print("  one fit                 median %.3f s  (min %.3f)" % (statistics.median(singles), min(singles)))
    print("  two fits in two threads median %.3f s  (min %.3f)" % (statistics.median(pairs), min(pairs)))
    print("  ratio two/one           median %.2f   (issue 15 asks < 1.6; 2.0 = no parallelism)"
          % statistics.median(ratios))
    print("  control: two fits in two processes / one fit, median %.2f (what the machine allowed)"
          % statistics.median(control))
    print("  cores busy during the two (process CPU s / wall s) median %.2f (1.0 = one at a time)"
          % statistics.median(busy))
    print("  load average %.1f on %d cores: the figures need free cores to mean anything"
          % (os.getloadavg()[0], os.cpu_count()))


if __name__ == "__main__":
    main()
