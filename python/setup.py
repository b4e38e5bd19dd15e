"""Builds the spectator_shm wheel by running CMake on the repository this
directory belongs to (the library, the extension and spectator-collector;
no tests, examples or benchmarks), then packaging:

  spectator_shm/                     the pure-Python files of this directory
  spectator_shm/_spectator_shm*.so   the extension (target spectator_python)
  spectator_shm/bin/spectator-collector
  console script spectator-collector -> spectator_shm._collector:main (execs it)

Offline, with what the machine has:
  pip install --no-build-isolation path/to/spectator-shm/python

Knobs (environment): CMAKE (the cmake binary), CMAKE_BUILD_PARALLEL_LEVEL
(default: at most 2 jobs), SPECTATOR_CMAKE_ARGS (extra -D flags, split on
spaces), SPECTATOR_CMAKE_BUILD_TYPE (default Release).
"""

import glob
import os
import re
import shutil
import subprocess
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def project_version():
    with open(os.path.join(ROOT, "CMakeLists.txt")) as f:
        m = re.search(r"project\(spectator-shm\s+VERSION\s+([0-9.]+)", f.read())
    if not m:
        raise RuntimeError("no project VERSION in %s/CMakeLists.txt" % ROOT)
    return m.group(1)


class CMakeExtension(Extension):
    def __init__(self, name):
        super().__init__(name, sources=[])


class CMakeBuild(build_ext):
    def build_extension(self, ext):
        cmake = os.environ.get("CMAKE", "cmake")
        build_dir = os.path.join(os.path.abspath(self.build_temp), "cmake")
        configure = [
            cmake, "-S", ROOT, "-B", build_dir,
            "-DCMAKE_BUILD_TYPE=" + os.environ.get("SPECTATOR_CMAKE_BUILD_TYPE", "Release"),
            "-DPython3_EXECUTABLE=" + sys.executable,
            "-DSPECTATOR_BUILD_PYTHON=ON",
            "-DSPECTATOR_BUILD_COLLECTOR=ON",
            "-DSPECTATOR_BUILD_TESTS=OFF",
            "-DSPECTATOR_BUILD_EXAMPLES=OFF",
            "-DSPECTATOR_BUILD_BENCHMARKS=OFF",
        ]
        if shutil.which("ninja") and not os.path.exists(os.path.join(build_dir, "CMakeCache.txt")):
            configure += ["-G", "Ninja"]
        configure += os.environ.get("SPECTATOR_CMAKE_ARGS", "").split()
        jobs = os.environ.get("CMAKE_BUILD_PARALLEL_LEVEL") or str(min(2, os.cpu_count() or 1))
        subprocess.check_call(configure)
        subprocess.check_call([cmake, "--build", build_dir, "-j", jobs,
                               "--target", "spectator_python", "spectator-collector"])

        built = glob.glob(os.path.join(build_dir, "python", "spectator_shm", "_spectator_shm*.so"))
        if len(built) != 1:
            raise RuntimeError("expected one extension module in the CMake build, found %s" % built)
        target = self.get_ext_fullpath(ext.name)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copyfile(built[0], target)

        bin_dir = os.path.join(os.path.dirname(target), "bin")
        os.makedirs(bin_dir, exist_ok=True)
        collector = os.path.join(bin_dir, "spectator-collector")
        shutil.copyfile(os.path.join(build_dir, "collector", "spectator-collector"), collector)
        os.chmod(collector, 0o755)


setup(
    name="spectator-shm",
    version=project_version(),
    description="Netflix Spectator meters for Python pre-fork servers on a shared-memory segment",
    long_description=open(os.path.join(HERE, "README.md")).read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.9",
    packages=["spectator_shm"],
    ext_modules=[CMakeExtension("spectator_shm._spectator_shm")],
    cmdclass={"build_ext": CMakeBuild},
    entry_points={"console_scripts": ["spectator-collector = spectator_shm._collector:main"]},
    zip_safe=False,
)
