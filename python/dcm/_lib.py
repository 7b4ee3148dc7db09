"""Finding libdcm.so and declaring the C functions the package calls.

The library is looked for in this order (the first that loads wins):
  1. the file named by the environment variable DCM_LIBRARY;
  2. the build tree the package was installed from (recorded by setup.py in
     dcm/_build.py: ROOT/lib/libdcm.so, as `make` leaves it); imported from
     the source folder python/ itself, that tree's lib/libdcm.so;
  3. the system loader: libdcm.so.0 (after `make install` into a directory
     ldconfig knows, or with LD_LIBRARY_PATH), then the libdir that
     `pkg-config --variable=libdir dcm` names (`make install PREFIX=...`).
Nothing is compiled: ctypes calls the library's public C API
(include/dcm/dcm.h), and releases the GIL during every call.
"""
import ctypes
import os
import subprocess

try:
    from . import _build
except ImportError:  # running from the source tree, not installed
    _build = None


class Error(ctypes.Structure):
    _fields_ = [("code", ctypes.c_int), ("msg", ctypes.c_char * 1024)]


PROGRESS = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_double,
                            ctypes.c_double, ctypes.c_int)

_dbl_p = ctypes.POINTER(ctypes.c_double)
_int_p = ctypes.POINTER(ctypes.c_int)


class BmsRfx(ctypes.Structure):
    _fields_ = [("nsub", ctypes.c_int), ("nmod", ctypes.c_int), ("alpha", _dbl_p),
                ("exp_r", _dbl_p), ("xp", _dbl_p), ("pxp", _dbl_p), ("g", _dbl_p),
                ("bor", ctypes.c_double), ("F0", ctypes.c_double), ("F1", ctypes.c_double),
                ("iterations", ctypes.c_int), ("converged", ctypes.c_int)]


class PebInput(ctypes.Structure):
    _fields_ = [("nsub", ctypes.c_int), ("np", ctypes.c_int), ("Ep", _dbl_p), ("Cp", _dbl_p),
                ("pE", _dbl_p), ("pV", _dbl_p), ("F", _dbl_p), ("sel", _int_p),
                ("nsel", ctypes.c_int), ("X", _dbl_p), ("nx", ctypes.c_int),
                ("single", ctypes.c_int), ("q", ctypes.c_int), ("field", _int_p),
                ("nfield", ctypes.c_int), ("maxit", ctypes.c_int), ("alpha", ctypes.c_double),
                ("beta", ctypes.c_double), ("hE", ctypes.c_double), ("hC", ctypes.c_double)]


class PebResult(ctypes.Structure):
    _fields_ = [("np", ctypes.c_int), ("nx", ctypes.c_int), ("ng", ctypes.c_int),
                ("sel", _int_p), ("Ep", _dbl_p), ("Cp", _dbl_p), ("Eh", _dbl_p), ("Ch", _dbl_p),
                ("Ce", _dbl_p), ("F", ctypes.c_double), ("iterations", ctypes.c_int),
                ("converged", ctypes.c_int)]


def _candidates():
    env = os.environ.get("DCM_LIBRARY")
    if env:
        return [("DCM_LIBRARY", env)]
    out = []
    if _build is not None and getattr(_build, "BUILD_LIBRARY", None):
        out.append(("the build tree it was installed from", _build.BUILD_LIBRARY))
    else:  # imported from the source folder python/ itself: the tree's lib/
        here = os.path.dirname(os.path.abspath(__file__))
        out.append(("the source tree", os.path.join(os.path.dirname(os.path.dirname(here)),
                                                    "lib", "libdcm.so")))
    out.append(("the system loader", "libdcm.so.0"))
    try:
        libdir = subprocess.run(["pkg-config", "--variable=libdir", "dcm"], capture_output=True,
                                text=True, timeout=10).stdout.strip()
        if libdir:
            out.append(("pkg-config's libdir", os.path.join(libdir, "libdcm.so.0")))
    except (OSError, subprocess.SubprocessError):
        pass
    return out


def _load():
    tried = []
    for where, path in _candidates():
        try:
            return ctypes.CDLL(path), path
        except OSError as e:
            tried.append("%s (%s): %s" % (path, where, e))
    raise ImportError("dcm: cannot load libdcm.so; tried " + "; ".join(tried) +
                      ". Build it with `make` in the dcm tree and install the package from there, "
                      "`make install` it, or set DCM_LIBRARY=/path/to/libdcm.so")


lib, path = _load()


def _fn(name, restype, *argtypes):
    f = getattr(lib, name)
    f.restype = restype
    f.argtypes = list(argtypes)
    return f


_P = ctypes.c_void_p
_E = ctypes.POINTER(Error)
_c = ctypes.c_char_p
_i = ctypes.c_int
_d = ctypes.c_double

dcm_version = _fn("dcm_version", _c)
dcm_problem_load = _fn("dcm_problem_load", _i, _c, ctypes.POINTER(_P), _E)
dcm_problem_load_json = _fn("dcm_problem_load_json", _i, _c, _c, _c, ctypes.POINTER(_P), _E)
dcm_problem_free = _fn("dcm_problem_free", None, _P)
dcm_problem_parameters = _fn("dcm_problem_parameters", _i, _P)
dcm_problem_parameter_name = _fn("dcm_problem_parameter_name", _i, _P, _i, ctypes.c_char_p,
                                 ctypes.c_size_t)
dcm_problem_regions = _fn("dcm_problem_regions", _i, _P)
dcm_problem_scans = _fn("dcm_problem_scans", _i, _P)
dcm_problem_region_name = _fn("dcm_problem_region_name", _c, _P, _i)
dcm_problem_prior = _fn("dcm_problem_prior", _i, _P, _dbl_p, _dbl_p, _E)
dcm_estimate = _fn("dcm_estimate", _i, _P, PROGRESS, _P, ctypes.POINTER(_P), _E)
dcm_result_free = _fn("dcm_result_free", None, _P)
dcm_result_json = _fn("dcm_result_json", _i, _P, _P, ctypes.POINTER(ctypes.c_void_p), _E)
dcm_result_file_parameter_names = _fn("dcm_result_file_parameter_names", _i, _c,
                                      ctypes.POINTER(ctypes.c_void_p), _int_p, _E)
dcm_free = _fn("dcm_free", None, ctypes.c_void_p)
dcm_simulate = _fn("dcm_simulate", _i, _P, _dbl_p, _d, ctypes.c_ulong, _dbl_p, _E)
dcm_bms_ffx = _fn("dcm_bms_ffx", _i, _dbl_p, _i, _i, _dbl_p, _dbl_p, _dbl_p, _dbl_p, _E)
dcm_bms_rfx = _fn("dcm_bms_rfx", _i, _dbl_p, _i, _i, ctypes.POINTER(BmsRfx), _E)
dcm_bms_rfx_result_free = _fn("dcm_bms_rfx_result_free", None, ctypes.POINTER(BmsRfx))
dcm_bmr_switch_off = _fn("dcm_bmr_switch_off", _i, _i, _dbl_p, _dbl_p, _dbl_p, _dbl_p,
                         ctypes.POINTER(ctypes.c_ubyte), _dbl_p, _dbl_p, _dbl_p, _E)
dcm_peb = _fn("dcm_peb", _i, ctypes.POINTER(PebInput), ctypes.POINTER(PebResult), _E)
dcm_peb_result_free = _fn("dcm_peb_result_free", None, ctypes.POINTER(PebResult))
dcm_peb_effects = _fn("dcm_peb_effects", None, ctypes.POINTER(PebResult), _dbl_p, _i, _dbl_p,
                      _dbl_p, _dbl_p, _dbl_p, _dbl_p)
