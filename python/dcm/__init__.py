"""dcm — dynamic causal modelling for fMRI (SPM12 parity), from Python.

A thin layer over libdcm.so (the C library `make` builds), called through
ctypes: the numbers are the command's (`dcm estimate`, `dcm compare`, ...)
to the last bit. See MANUAL.md, chapter "Using dcm from Python".

    import dcm
    fit = dcm.estimate("attention_fwd.json")        # a spec file, or a dict
    fit.free_energy, fit.posterior_mean["A"]        # numbers and numpy arrays
    fit.save("fwd.json")                            # the command's result JSON
    dcm.compare([fit, dcm.load("bwd.json")])        # {"log_bf": [...], ...}

Errors raise exceptions that carry the library's message: ValueError
(dcm.InputError) for input errors, RuntimeError (dcm.NumericalError) for a
failed inversion, OSError (dcm.SystemError_) when a file cannot be written
or memory runs out. A fit releases the GIL: fits in threads run in
parallel. Ctrl-C stops a fit after its current iteration and raises
KeyboardInterrupt.
"""
import copy
import ctypes
import fnmatch
import json
import math
import os
import tempfile
import threading

import numpy as np

from . import _lib

__all__ = ["estimate", "load", "compare", "rfx", "reduce", "peb", "simulate", "Result",
           "Error", "InputError", "NumericalError", "SystemError_", "library_version",
           "library_path", "__version__"]


def library_version():
    """The version of the libdcm.so in use."""
    return _lib.dcm_version().decode()


#: the path of the libdcm.so in use (see dcm/_lib.py for how it is found)
library_path = _lib.path
__version__ = getattr(_lib._build, "VERSION", None) or library_version()


# ---------------------------------------------------------------- errors

class Error(Exception):
    """A failure reported by libdcm; .code is its DCM_ERR_* (the command's exit status)."""

    def __init__(self, message, code):
        super().__init__(message)
        self.code = code


class InputError(Error, ValueError):
    """Invalid or unreadable input (exit status 2 of the command)."""


class NumericalError(Error, RuntimeError):
    """The inversion failed numerically (exit status 3)."""


class SystemError_(Error, OSError):
    """Out of memory, or a file cannot be written (exit status 4)."""


def _raise(err, default="libdcm failed"):
    msg = err.msg.decode("utf-8", "replace") or default
    code = err.code
    if code == 3:
        raise NumericalError(msg, code)
    if code == 4:
        raise SystemError_(msg, code)
    raise InputError(msg, code)


def _check(rc, err):
    if rc != 0:
        if err.code == 0:
            err.code = rc
        _raise(err)


def _dp(a):
    return a.ctypes.data_as(ctypes.POINTER(ctypes.c_double))


def _f64(a):
    return np.ascontiguousarray(a, dtype=np.float64)


# ---------------------------------------------------------------- results

def _to_arrays(block):
    """A result JSON block as numpy arrays; B/D stay dicts keyed by name."""
    if isinstance(block, dict):
        return {k: _to_arrays(v) for k, v in block.items()}
    if block is None:
        return np.nan
    if isinstance(block, list):
        return np.array(block, dtype=float)
    return float(block)


class Result:
    """One fit: the result JSON of `dcm estimate`, with numpy views of it.

    free_energy, iterations, converged, warnings; posterior_mean,
    posterior_sd, posterior_probability, prior_mean, prior_var (dicts of
    arrays by block, "B" and "D" nested by input / region name, as in the
    result JSON: A[target, source]); parameter_names, Ep, Cp, pE, pV (SPM's
    flat order). to_dict() gives the whole document, save(path) writes it.
    """

    def __init__(self, text, source=None, names=None):
        self._text = text if text.endswith("\n") else text + "\n"
        self._doc = json.loads(text)
        if not isinstance(self._doc, dict) or "free_energy" not in self._doc:
            raise InputError("%s: not a dcm result (no \"free_energy\")" % (source or "result"), 2)
        d = self._doc
        self.source = source
        self.free_energy = float(d["free_energy"])
        self.iterations = int(d.get("iterations", -1) if d.get("iterations") is not None else -1)
        self.converged = bool(d.get("converged", False))
        self.warnings = list(d.get("warnings") or [])
        self.regions = list(d.get("regions") or [])
        self.inputs = list(d.get("inputs") or [])
        for key in ("posterior_mean", "posterior_sd", "posterior_probability", "prior_mean",
                    "prior_var"):
            setattr(self, key, _to_arrays(d[key]) if key in d else {})
        vec = d.get("vector") or {}
        self.parameter_names = list(names) if names is not None else None
        self.Ep = np.array(vec.get("posterior_mean") or [], dtype=float)
        self.pE = np.array(vec.get("prior_mean") or [], dtype=float)
        self.pV = np.array(vec.get("prior_var") or [], dtype=float)
        if vec.get("posterior_cov") is not None:
            self.Cp = np.array(vec["posterior_cov"], dtype=float).reshape(len(self.Ep), len(self.Ep))
        elif vec.get("posterior_var") is not None:   # regression DCM: only the variances
            self.Cp = np.diag(np.array(vec["posterior_var"], dtype=float))
        else:
            self.Cp = None

    @property
    def stopped(self):
        """True when the fit was stopped (Ctrl-C or a progress callback) before it converged."""
        return any("stopped by the caller" in w for w in self.warnings)

    def to_dict(self):
        """The result JSON as Python objects (a copy)."""
        return copy.deepcopy(self._doc)

    def to_json(self):
        """The result JSON text, as `dcm estimate -o` writes it."""
        return self._text

    def save(self, path):
        """Write the result JSON to path atomically (replaced whole or left as it was)."""
        path = os.fspath(path)
        folder = os.path.dirname(os.path.abspath(path))
        fd, tmp = tempfile.mkstemp(prefix=".dcm-", suffix=".tmp", dir=folder)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(self._text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise

    def __repr__(self):
        return "<dcm.Result F=%.4f, %d parameters, %d iterations%s>" % (
            self.free_energy, len(self.Ep), self.iterations,
            ", converged" if self.converged else "")


def load(path):
    """A result JSON file (written by `dcm estimate`, Result.save or SPM's reference files)."""
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8-sig") as f:
            text = f.read()
    except FileNotFoundError as e:
        raise InputError("%s: no such file" % path, 2) from e
    except IsADirectoryError as e:
        raise InputError("%s: is a directory, not a result file" % path, 2) from e
    try:
        r = Result(text, source=path)
    except json.JSONDecodeError as e:
        raise InputError("%s:%d:%d: invalid JSON: %s" % (path, e.lineno, e.colno, e.msg), 2) from e
    names = ctypes.c_void_p()
    count = ctypes.c_int()
    err = _lib.Error()
    _check(_lib.dcm_result_file_parameter_names(path.encode(), ctypes.byref(names),
                                                ctypes.byref(count), ctypes.byref(err)), err)
    try:
        r.parameter_names = ctypes.string_at(names).decode("utf-8").splitlines()
    finally:
        _lib.dcm_free(names)
    return r


def _as_result(r):
    return r if isinstance(r, Result) else load(r)


# ---------------------------------------------------------------- specs

def _region_names(spec):
    regions = spec.get("regions")
    if not isinstance(regions, list):
        raise InputError("spec: \"regions\" must be a list of names to go with a timeseries array", 2)
    names = []
    for r in regions:
        if isinstance(r, dict):
            if "voi" not in r:
                names.append(r.get("name"))
        else:
            names.append(r)
    return names


def _finite_rows(a, what):
    a = np.asarray(a, dtype=float)
    if not np.all(np.isfinite(a)):
        bad = np.argwhere(~np.isfinite(a))[0]
        raise InputError("spec: %s has a value that is NaN or infinite at %s" %
                         (what, tuple(int(i) for i in bad)), 2)
    return a


def _spec_json(spec):
    """A spec dict as the JSON text the library reads: arrays become the
    spec's inline forms (timeseries {region: values}, confounds rows,
    events a list of objects)."""
    if not isinstance(spec, dict):
        raise TypeError("spec must be a path or a dict, not %s" % type(spec).__name__)
    out = {}
    for key, val in spec.items():
        if isinstance(val, os.PathLike):
            val = os.fspath(val)
        if key == "timeseries" and not isinstance(val, (str, dict)):
            ts = _finite_rows(val, "\"timeseries\"")
            if ts.ndim == 1:
                ts = ts[:, None]
            names = _region_names(spec)
            if ts.ndim != 2 or ts.shape[1] != len(names):
                raise InputError("spec: \"timeseries\" is an array of shape %s; it needs (scans, "
                                 "regions) = (scans, %d), one column per region in the order of "
                                 "\"regions\" (%s)" % (ts.shape, len(names), ", ".join(map(str, names))), 2)
            val = {str(n): ts[:, i].tolist() for i, n in enumerate(names)}
        elif key == "timeseries" and isinstance(val, dict):
            val = {k: _finite_rows(v, "\"timeseries\"[%r]" % k).ravel().tolist() for k, v in val.items()}
        elif key == "confounds" and not isinstance(val, str):
            c = _finite_rows(val, "\"confounds\"")
            if c.ndim == 1:
                c = c[:, None]
            val = c.tolist()
        elif key == "events" and not isinstance(val, str):
            if hasattr(val, "to_dict"):           # a pandas DataFrame
                val = val.to_dict("records")
            events = []
            for k, ev in enumerate(val):
                try:
                    events.append({"onset": float(ev["onset"]), "duration": float(ev["duration"]),
                                   "trial_type": str(ev["trial_type"])})
                except (KeyError, TypeError, ValueError) as e:
                    raise InputError("spec: \"events\"[%d] needs \"onset\" and \"duration\" (seconds) "
                                     "and \"trial_type\" (%s)" % (k, e), 2) from None
            val = events
        elif isinstance(val, np.ndarray):
            val = val.tolist()
        out[key] = val
    try:
        return json.dumps(out, allow_nan=False, default=_json_default)
    except ValueError as e:
        raise InputError("spec: %s" % e, 2) from None


def _json_default(x):
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    raise TypeError("spec: %s is not JSON" % type(x).__name__)


class _Problem:
    """A loaded, checked dcm_problem (freed with the object)."""

    def __init__(self, spec, base_dir=None, name=None):
        self.ptr = ctypes.c_void_p()
        err = _lib.Error()
        if isinstance(spec, (str, os.PathLike)):
            path = os.fspath(spec)
            rc = _lib.dcm_problem_load(path.encode(), ctypes.byref(self.ptr), ctypes.byref(err))
        else:
            text = _spec_json(spec)
            base = os.fspath(base_dir) if base_dir is not None else os.getcwd()
            rc = _lib.dcm_problem_load_json(text.encode(), base.encode(),
                                            (name or "spec (dict)").encode(),
                                            ctypes.byref(self.ptr), ctypes.byref(err))
        _check(rc, err)

    def __del__(self):
        if getattr(self, "ptr", None):
            _lib.dcm_problem_free(self.ptr)
            self.ptr = None

    def parameter_names(self):
        k = _lib.dcm_problem_parameters(self.ptr)
        buf = ctypes.create_string_buffer(512)
        names = []
        for i in range(k):
            _lib.dcm_problem_parameter_name(self.ptr, i, buf, len(buf))
            names.append(buf.value.decode())
        return names


# ---------------------------------------------------------------- estimate

def estimate(spec, progress=None, base_dir=None, name=None):
    """Fit a DCM; returns a Result.

    spec: the path of a spec file (JSON, MANUAL chapter 2) or an SPM DCM
    .mat, or a dict of the same keys, in which "timeseries" may be a
    (scans, regions) array (columns in the order of "regions"), "confounds"
    a (scans, k) array and "events" a list of {"onset", "duration",
    "trial_type"} dicts (or a pandas DataFrame); file names in a dict
    resolve against base_dir (default: the working directory), and name is
    what messages and the result's "spec" call it.

    progress(iteration, F, dF_predicted, accepted) is called after every
    iteration; returning True stops the fit (the result is then marked
    stopped). Ctrl-C stops the fit and raises KeyboardInterrupt.
    """
    problem = _Problem(spec, base_dir, name)
    state = {"exc": None}
    main = threading.current_thread() is threading.main_thread()

    def on_iteration(ctx, iteration, F, dF, accepted):
        try:
            if main:
                _check_signals()  # raises KeyboardInterrupt when Ctrl-C is pending
            if progress is not None and progress(iteration, F, dF, bool(accepted)):
                return 1
            return 0
        except BaseException as e:  # noqa: B902 - Ctrl-C or the callback's error stops the fit
            state["exc"] = e
            return 1

    callback = _lib.PROGRESS(on_iteration)
    result = ctypes.c_void_p()
    err = _lib.Error()
    rc = _lib.dcm_estimate(problem.ptr, callback, None, ctypes.byref(result), ctypes.byref(err))
    try:
        if state["exc"] is not None:
            raise state["exc"]
        _check(rc, err)
        text = ctypes.c_void_p()
        _check(_lib.dcm_result_json(result, problem.ptr, ctypes.byref(text), ctypes.byref(err)), err)
        try:
            body = ctypes.string_at(text).decode("utf-8")
        finally:
            _lib.dcm_free(text)
        return Result(body, source=os.fspath(spec) if isinstance(spec, (str, os.PathLike)) else None,
                      names=problem.parameter_names())
    finally:
        _lib.dcm_result_free(result)


_PyErr_CheckSignals = ctypes.pythonapi.PyErr_CheckSignals
_PyErr_CheckSignals.restype = ctypes.c_int
_PyErr_CheckSignals.argtypes = []


def _check_signals():
    # ctypes.pythonapi raises the pending exception (KeyboardInterrupt) itself
    _PyErr_CheckSignals()


# ---------------------------------------------------------------- simulate

def simulate(spec, params=None, snr=None, seed=1, base_dir=None):
    """Simulated BOLD of a spec's design: a (scans, regions) array.

    params: {parameter name: value} (e.g. {"A:V1->V5": 0.45, "C:Photic->V1":
    0.6}, names as Result.parameter_names), a Result (its posterior mean) or
    None; parameters not named keep their prior mean. snr > 0 adds Gaussian
    noise of SD sd(region)/snr seeded by seed, as `dcm simulate --snr --seed`.
    A dict spec without a time series needs "scans" (its data are not used).
    """
    name = None
    if isinstance(spec, (str, os.PathLike)) and os.fspath(spec).endswith(".json"):
        # the design of a spec file: its data files need not exist when it has "scans"
        name = os.fspath(spec)
        with open(name, encoding="utf-8-sig") as f:
            try:
                spec = json.load(f)
            except json.JSONDecodeError as e:
                raise InputError("%s:%d:%d: invalid JSON: %s" % (name, e.lineno, e.colno, e.msg), 2) from None
        if base_dir is None:
            base_dir = os.path.dirname(os.path.abspath(name))
    if isinstance(spec, dict) and "scans" in spec:
        spec = {k: v for k, v in spec.items() if k not in ("timeseries", "confounds")}
        try:
            scans = int(spec["scans"])
        except (TypeError, ValueError):
            raise InputError("simulate: \"scans\" must be a whole number, not %r" % (spec["scans"],), 2) from None
        spec["timeseries"] = np.zeros((scans, len(_region_names(spec))))
    problem = _Problem(spec, base_dir, name)
    names = problem.parameter_names()
    theta = np.empty(len(names))
    err = _lib.Error()
    _check(_lib.dcm_problem_prior(problem.ptr, _dp(theta), None, ctypes.byref(err)), err)
    if isinstance(params, Result):
        params = dict(zip(params.parameter_names, params.Ep))
    for key, value in (params or {}).items():
        if key not in names:
            near = [n for n in names if n.lower().startswith(key.split(":")[0].lower())][:8]
            raise InputError("simulate: no parameter %r in this model%s" %
                             (key, "; e.g. " + ", ".join(near) if near else ""), 2)
        theta[names.index(key)] = float(value)
    v, n = _lib.dcm_problem_scans(problem.ptr), _lib.dcm_problem_regions(problem.ptr)
    y = np.zeros(v * n)
    snr_c = float(snr) if snr is not None else 0.0
    _check(_lib.dcm_simulate(problem.ptr, _dp(theta), snr_c, int(seed), _dp(y), ctypes.byref(err)), err)
    return y.reshape(n, v).T.copy()


# ---------------------------------------------------------------- groups

def compare(results):
    """Compare models fitted to the same data by their free energies.

    results: Results or result file paths. Returns {"free_energy": [...],
    "log_bf": [...] (each against the best model, <= 0), "posterior":
    [...] (posterior model probabilities, uniform prior)}, as `dcm compare`.
    """
    rs = [_as_result(r) for r in results]
    if len(rs) < 2:
        raise InputError("compare: give at least two results", 2)
    for r in rs[1:]:
        if r.regions and rs[0].regions and r.regions != rs[0].regions:
            raise InputError("compare: the results have different regions (%s vs %s); models are "
                             "compared on the same data" % (rs[0].regions, r.regions), 2)
    F = _f64([r.free_energy for r in rs])
    k = len(rs)
    post, logbf = np.zeros(k), np.zeros(k)
    err = _lib.Error()
    _check(_lib.dcm_bms_ffx(_dp(F), 1, k, None, None, _dp(post), _dp(logbf), ctypes.byref(err)), err)
    return {"free_energy": F.tolist(), "log_bf": logbf.tolist(), "posterior": post.tolist()}


def _ptr_array(p, n):
    return np.ctypeslib.as_array(p, shape=(n,)).copy() if n > 0 and p else np.zeros(0)


def rfx(lme):
    """Random-effects Bayesian model selection (spm_BMS) of a (subjects, models)
    array of log-evidences: {"alpha", "exp_r", "xp", "pxp", "bor", "g",
    "F0", "F1", "iterations", "converged"}."""
    lme = _f64(lme)
    if lme.ndim != 2:
        raise InputError("rfx: lme must be a (subjects, models) array, not shape %s" % (lme.shape,), 2)
    nsub, nmod = lme.shape
    out = _lib.BmsRfx()
    err = _lib.Error()
    rc = _lib.dcm_bms_rfx(_dp(lme), nsub, nmod, ctypes.byref(out), ctypes.byref(err))
    try:
        _check(rc, err)
        return {"alpha": _ptr_array(out.alpha, nmod), "exp_r": _ptr_array(out.exp_r, nmod),
                "xp": _ptr_array(out.xp, nmod), "pxp": _ptr_array(out.pxp, nmod),
                "bor": out.bor, "g": _ptr_array(out.g, nsub * nmod).reshape(nsub, nmod),
                "F0": out.F0, "F1": out.F1, "iterations": out.iterations,
                "converged": bool(out.converged)}
    finally:
        _lib.dcm_bms_rfx_result_free(ctypes.byref(out))


def _select(result, patterns, what):
    """Mask of the free parameters that patterns name: exact names, globs
    ('B:*', 'A:*->V5') or a bare block ('B' = 'B:*')."""
    if isinstance(patterns, str):
        patterns = [patterns]
    names = result.parameter_names
    if names is None or len(names) != len(result.pV):
        raise InputError("%s: the result's parameter names are unknown (load it with dcm.load)" % what, 2)
    mask = np.zeros(len(names), dtype=bool)
    for pat in patterns:
        pats = [pat] if (":" in pat or "*" in pat or pat in names) else [pat, pat + ":*"]
        hit = np.array([any(fnmatch.fnmatchcase(n, p) for p in pats) for n in names], dtype=bool)
        hit &= result.pV > 0
        if not hit.any():
            raise InputError("%s: '%s' selects no free parameter of the model (names look like %s)"
                             % (what, pat, ", ".join(n for n, v in zip(names, result.pV) if v > 0)[:300]), 2)
        mask |= hit
    return mask


def reduce(result, off):
    """Bayesian model reduction: the fit with the parameters `off` switched
    off (prior variance 0), without refitting (`dcm reduce --off`).

    off: names or globs ('B:Attention:*'). Returns the dict `dcm reduce
    --json` writes: "switched_off", "dF" (F(reduced) - F(full)),
    "free_energy_reduced", "parameters" [{name, full_mean, full_sd,
    reduced_mean, reduced_sd, switched_off}], "vector" {posterior_mean,
    posterior_var} in SPM's flat order.
    """
    r = _as_result(result)
    if r.Cp is None:
        raise InputError("reduce: the result has no posterior covariance", 2)
    mask = _select(r, off, "reduce")
    n = len(r.Ep)
    Ep, Cp, pE, pV = _f64(r.Ep), _f64(r.Cp), _f64(r.pE), _f64(r.pV)
    offb = np.ascontiguousarray(mask, dtype=np.uint8)
    dF = ctypes.c_double()
    sE, sC = np.zeros(n), np.zeros(n * n)
    err = _lib.Error()
    _check(_lib.dcm_bmr_switch_off(n, _dp(Ep), _dp(Cp), _dp(pE), _dp(pV),
                                   offb.ctypes.data_as(ctypes.POINTER(ctypes.c_ubyte)),
                                   ctypes.byref(dF), _dp(sE), _dp(sC), ctypes.byref(err)), err)
    var = np.diag(sC.reshape(n, n)).copy()
    params = []
    for i, name in enumerate(r.parameter_names):
        params.append({"name": name, "full_mean": float(Ep[i]),
                       "full_sd": math.sqrt(max(Cp[i, i], 0.0)),
                       "reduced_mean": float(sE[i]), "reduced_sd": math.sqrt(max(var[i], 0.0)),
                       "switched_off": bool(mask[i])})
    return {"switched_off": [n_ for n_, m in zip(r.parameter_names, mask) if m],
            "dF": dF.value, "free_energy_reduced": r.free_energy + dF.value,
            "parameters": params,
            "vector": {"posterior_mean": sE.tolist(), "posterior_var": var.tolist()}}


def peb(results, design=None, params="B", q="single", maxit=None):
    """Parametric Empirical Bayes (spm_dcm_peb) over subjects' fits of one model.

    results: Results or result paths (one per subject, same model); design:
    a (subjects, covariates) array (None: a constant), first column usually
    the group mean; params: names or globs of the parameters treated as
    random effects ('B', 'A:*->V5', ...). q: "single" | "all" (SPM's M.Q).
    Returns {"parameters": [names], "Ep": (parameters, covariates), "Cp",
    "Ce", "free_energy", "iterations", "converged", "effects": {"mean",
    "sd", "probability"} (parameters, covariates) — the probability that each
    group effect is present, by Savage-Dickey reduction}.
    """
    rs = [_as_result(r) for r in results]
    if len(rs) < 2:
        raise InputError("peb: give at least two subjects' results", 2)
    names = rs[0].parameter_names
    for k, r in enumerate(rs[1:], 1):
        if r.parameter_names != names:
            raise InputError("peb: result %d (%s) has other parameters than result 0 (%s): PEB "
                             "needs every subject's fit of the same model"
                             % (k, r.source or "in memory", rs[0].source or "in memory"), 2)
        if r.Cp is None:
            raise InputError("peb: result %d has no posterior covariance" % k, 2)
    nsub, np_ = len(rs), len(names)
    mask = _select(rs[0], params, "peb")
    sel = np.ascontiguousarray(np.flatnonzero(mask), dtype=np.int32)
    Ep = _f64(np.stack([r.Ep for r in rs]))
    Cp = _f64(np.stack([r.Cp for r in rs]))
    pE = _f64(np.stack([r.pE for r in rs]))
    pV = _f64(np.stack([r.pV for r in rs]))
    F = _f64([r.free_energy for r in rs])
    if design is None:
        X = np.ones((nsub, 1))
    else:
        X = _f64(design)
        if X.ndim == 1:
            X = X[:, None]
        if X.shape[0] != nsub:
            raise InputError("peb: the design has %d rows but there are %d subjects" % (X.shape[0], nsub), 2)
        X = _f64(X)
    qmap = {"single": 1, "fields": 2, "all": 3}
    if q not in qmap or q == "fields":
        raise InputError("peb: q must be \"single\" or \"all\", not %r" % (q,), 2)
    inp = _lib.PebInput()
    inp.nsub, inp.np = nsub, np_
    inp.Ep, inp.Cp, inp.pE, inp.pV, inp.F = _dp(Ep), _dp(Cp), _dp(pE), _dp(pV), _dp(F)
    inp.sel = sel.ctypes.data_as(ctypes.POINTER(ctypes.c_int))
    inp.nsel = len(sel)
    inp.X = _dp(X)
    inp.nx = X.shape[1]
    inp.single = 1
    inp.q = qmap[q]
    inp.maxit = int(maxit) if maxit else 0
    out = _lib.PebResult()
    err = _lib.Error()
    rc = _lib.dcm_peb(ctypes.byref(inp), ctypes.byref(out), ctypes.byref(err))
    try:
        _check(rc, err)
        p, nx = out.np, out.nx
        pV0 = _f64(pV[0])   # indexed by the selected parameters' indices
        mean, var, dF, prob = (np.zeros(p * nx) for _ in range(4))
        _lib.dcm_peb_effects(ctypes.byref(out), _dp(X), nsub, _dp(pV0), _dp(mean), _dp(var),
                             _dp(dF), _dp(prob))
        shape = (nx, p)   # effect k = q + j * np: parameters fastest
        return {"parameters": [names[i] for i in sel],
                "Ep": _ptr_array(out.Ep, p * nx).reshape(p, nx),
                "Cp": _ptr_array(out.Cp, (p * nx) ** 2).reshape(p * nx, p * nx),
                "Ce": _ptr_array(out.Ce, p * p).reshape(p, p),
                "free_energy": out.F, "iterations": out.iterations,
                "converged": bool(out.converged),
                "effects": {"mean": mean.reshape(shape).T, "sd": np.sqrt(np.maximum(var, 0)).reshape(shape).T,
                            "probability": prob.reshape(shape).T}}
    finally:
        _lib.dcm_peb_result_free(ctypes.byref(out))
