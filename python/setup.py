"""Build script of the `dcm` Python package (ctypes over libdcm.so).

It records, in dcm/_build.py, where the library of the tree it is installed
from lives (../lib/libdcm.so beside this file), so an installed package finds
the library that `make` built without LD_LIBRARY_PATH; dcm/_lib.py says the
order in which the library is looked for. No compiler is needed here.
"""
import os
import re

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def library_version():
    """The library's version, from dcm/dcm_api.h (one version for both)."""
    try:
        with open(os.path.join(ROOT, "dcm", "dcm_api.h"), encoding="utf-8") as f:
            m = re.search(r'#define DCM_VERSION_STRING "([0-9.]+)"', f.read())
        if m:
            return m.group(1)
    except OSError:
        pass
    return "0.0.0"


class BuildWithLibraryPath(build_py):
    """Writes dcm/_build.py: the build tree's library and version."""

    def run(self):
        super().run()
        lib = os.path.join(ROOT, "lib", "libdcm.so")
        target = os.path.join(self.build_lib, "dcm", "_build.py")
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "w", encoding="utf-8") as f:
            f.write('"""Written at install time by setup.py: where the build tree\'s library is."""\n')
            f.write("BUILD_LIBRARY = %r\n" % lib)
            f.write("VERSION = %r\n" % library_version())


setup(
    name="dcm",
    version=library_version(),
    description="Dynamic causal modelling for fMRI (SPM12 parity) over libdcm",
    packages=["dcm"],
    python_requires=">=3.9",
    install_requires=[],  # numpy comes from Debian (python3-numpy, --system-site-packages)
    cmdclass={"build_py": BuildWithLibraryPath},
)
