#!/usr/bin/env python3
"""Regions from a NIfTI image with nibabel, then a DCM fitted with dcm (MANUAL 18.4).

    nifti_fit.py BOLD.nii.gz ATLAS.nii.gz EVENTS.tsv OUT_DIR
    nifti_fit.py --demo OUT_DIR      # makes a small synthetic study first

BOLD is a 4-D image (x, y, z, scans); ATLAS a 3-D label image on the same
grid (1 = V1, 2 = V5, 3 = SPC here); EVENTS a BIDS events.tsv. Each region's
series is the mean over its voxels (SPM takes the first eigenvariate; any
extraction works: the package takes whatever array you give it). The two
hypotheses of the attention study are fitted and compared; the fits are
saved as result JSON files the command reads (`dcm review`, `dcm report`).
"""
import json
import os
import sys

import nibabel as nib
import numpy as np

import dcm

REGIONS = {1: "V1", 2: "V5", 3: "SPC"}
TR = 3.22


def extract(bold_path, atlas_path, labels):
    """(scans, regions) array: the mean series of each label's voxels."""
    bold = nib.load(bold_path)
    atlas = nib.load(atlas_path)
    if atlas.shape != bold.shape[:3] or not np.allclose(atlas.affine, bold.affine, atol=1e-3):
        raise ValueError("%s is not on the grid of %s: resample it first (e.g. nilearn's "
                         "resample_to_img, or `dcm extract`, which does it itself)"
                         % (atlas_path, bold_path))
    data = np.asarray(bold.dataobj, dtype=float)          # x, y, z, scans
    lab = np.asarray(atlas.dataobj).astype(int)
    series = []
    for label in labels:
        voxels = data[lab == label]                        # (voxels, scans)
        if voxels.size == 0:
            raise ValueError("%s has no voxel labelled %d" % (atlas_path, label))
        series.append(voxels.mean(axis=0))
    return np.column_stack(series)


def fit_models(Y, events, out_dir):
    base = {"TR": TR, "TE": 0.04, "regions": list(REGIONS.values()),
            "inputs": ["Photic", "Motion", "Attention"],
            "timeseries": Y, "events": os.path.abspath(events),
            "a": ["V1 -> V5", "V5 -> V1", "V5 -> SPC", "SPC -> V5"],
            "c": {"Photic": ["V1"]}}
    fits = {}
    for name, target in (("fwd", "V1 -> V5"), ("bwd", "SPC -> V5")):
        spec = dict(base, b={"Motion": ["V1 -> V5"], "Attention": [target]})
        fits[name] = dcm.estimate(spec, name=name)
        fits[name].save(os.path.join(out_dir, name + ".json"))
    c = dcm.compare([fits["fwd"], fits["bwd"]])
    print("F fwd %.2f, bwd %.2f; log Bayes factor fwd - bwd %.2f"
          % (fits["fwd"].free_energy, fits["bwd"].free_energy, c["log_bf"][0] - c["log_bf"][1]))
    print("fwd A (row = target, column = source, Hz):")
    print(np.array2string(fits["fwd"].posterior_mean["A"], precision=3, suppress_small=True))
    return fits, c


def make_demo(out_dir):
    """A synthetic study: 3 regions of 27 voxels in an 8 x 8 x 6 grid, their
    series simulated from the bundled attention design (fwd, truth.json)."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    design = os.path.join(root, "datasets", "attention_design")
    with open(os.path.join(design, "truth.json")) as f:
        truth = json.load(f)
    y = dcm.simulate(os.path.join(design, "fwd.json"), params=truth)   # (360, 3), no noise
    rng = np.random.default_rng(1)
    shape = (8, 8, 6)
    atlas = np.zeros(shape, dtype=np.int16)
    atlas[1:4, 1:4, 1:4] = 1
    atlas[4:7, 1:4, 1:4] = 2
    atlas[2:5, 4:7, 2:5] = 3
    bold = 100.0 + rng.normal(0.0, 1.0, shape + (y.shape[0],))
    for label, col in ((1, 0), (2, 1), (3, 2)):
        bold[atlas == label] += y[:, col]                 # each voxel: signal + noise (SNR ~2)
    affine = np.diag([3.0, 3.0, 3.0, 1.0])
    nib.save(nib.Nifti1Image(bold.astype(np.float32), affine), os.path.join(out_dir, "bold.nii.gz"))
    nib.save(nib.Nifti1Image(atlas, affine), os.path.join(out_dir, "atlas.nii.gz"))
    return (os.path.join(out_dir, "bold.nii.gz"), os.path.join(out_dir, "atlas.nii.gz"),
            os.path.join(design, "events.tsv"))


def main(argv):
    if len(argv) == 3 and argv[1] == "--demo":
        out_dir = argv[2]
        os.makedirs(out_dir, exist_ok=True)
        bold, atlas, events = make_demo(out_dir)
    elif len(argv) == 5:
        bold, atlas, events, out_dir = argv[1:]
        os.makedirs(out_dir, exist_ok=True)
    else:
        sys.exit(__doc__)
    Y = extract(bold, atlas, sorted(REGIONS))
    fit_models(Y, events, out_dir)


if __name__ == "__main__":
    main(sys.argv)
