"""Packaging: `pip install --no-build-isolation` of python/ into a fresh venv
(--system-site-packages, offline) builds the C++ library, the extension and
the collector with CMake, and gives a working `import spectator_shm` and a
`spectator-collector` command; `cmake --install` of the build tree installs
an importable package too.

Slow: the pip test compiles the project in Release (about 30 s on two
cores, -j2 at most); tests/python/CMakeLists.txt gives this file a long
timeout. The source is copied to a temporary directory first, so the build
leaves nothing in the worktree.
"""

import os
import shutil
import subprocess
import sys
import textwrap

import pytest


REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_IGNORED = {".git", "out", "__pycache__", ".cache", "build", "dist"}


def _ignore(directory, names):
    out = {n for n in names if n in _IGNORED or n.startswith("build-") or n.endswith(".egg-info")}
    if os.path.abspath(directory) == REPO:
        out |= {n for n in names if n.startswith("build")}
    return out


def clean_env():
    """The environment without the build tree on PYTHONPATH, so that imports
    come from the venv or the install tree only."""
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    env["PYTHONNOUSERSITE"] = "1"
    env["PIP_NO_INDEX"] = "1"           # offline: never ask an index
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env.setdefault("CMAKE_BUILD_PARALLEL_LEVEL", "2")
    return env


def run(cmd, timeout, cwd=None, env=None):
    proc = subprocess.run(cmd, cwd=cwd, env=env or clean_env(), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=timeout)
    assert proc.returncode == 0, "%s exited %d:\n%s" % (cmd, proc.returncode, proc.stdout[-6000:])
    return proc.stdout


def test_pip_install_into_a_venv_gives_the_module_and_the_collector(tmp_path, segment):
    src = tmp_path / "src"
    shutil.copytree(REPO, src, ignore=_ignore, symlinks=True)
    venv = tmp_path / "venv"
    run(["/usr/bin/python3", "-m", "venv", "--system-site-packages", str(venv)], 120)
    python, pip = venv / "bin" / "python", venv / "bin" / "pip"
    run([str(pip), "install", "--no-build-isolation", "--no-index", str(src / "python")], 170,
        cwd=tmp_path)

    where = run([str(python), "-c", "import spectator_shm; print(spectator_shm.__file__)"], 60,
                cwd=tmp_path).strip()
    assert where.startswith(str(venv)), where

    version = run([str(venv / "bin" / "spectator-collector"), "--version"], 60).strip()
    assert version.startswith("spectator-collector "), version
    with open(os.path.join(REPO, "CMakeLists.txt")) as f:
        assert ("VERSION " + version.split()[1]) in f.read()

    # The two installed pieces work together: the venv's module updates a
    # segment, the venv's collector publishes it.
    run([str(python), "-c", textwrap.dedent("""
        import sys
        from spectator_shm import Registry
        Registry(sys.argv[1]).counter("packaged", {"via": "pip"}).increment(7)
    """), segment], 60, cwd=tmp_path)
    out = run([str(venv / "bin" / "spectator-collector"), "--segment", segment, "--once"], 60)
    assert "packaged{statistic=count,via=pip} 7" in out.splitlines(), out


def _build_dir():
    """The CMake build tree these tests run from (PYTHONPATH=<build>/python)."""
    for entry in os.environ.get("PYTHONPATH", "").split(os.pathsep):
        if entry and os.path.exists(os.path.join(entry, os.pardir, "CMakeCache.txt")):
            return os.path.abspath(os.path.join(entry, os.pardir))
    return None


def test_cmake_install_installs_an_importable_package(tmp_path, segment):
    build = _build_dir()
    if build is None:
        pytest.skip("not run from a CMake build tree (PYTHONPATH=<build>/python)")
    prefix = tmp_path / "prefix"
    run(["cmake", "--install", build, "--prefix", str(prefix), "--component", "spectator_Python"],
        120)
    found = [os.path.join(d, "spectator_shm") for d, dirs, _ in os.walk(prefix)
             if "spectator_shm" in dirs]
    assert len(found) == 1, found
    site = os.path.dirname(found[0])
    rel = os.path.relpath(site, prefix)
    v = sys.version_info
    assert rel in ("lib/python%d.%d/dist-packages" % (v.major, v.minor),
                   "lib/python%d.%d/site-packages" % (v.major, v.minor)), rel
    env = clean_env()
    env["PYTHONPATH"] = site
    where = run([sys.executable, "-c", "import sys, spectator_shm; "
                 "spectator_shm.Registry(sys.argv[1]).counter('installed').increment(); "
                 "print(spectator_shm.__file__)", segment], 60, cwd=tmp_path, env=env).strip()
    assert where.startswith(str(prefix)), where
    collector = os.environ.get("SPECTATOR_COLLECTOR")
    if collector:
        out = run([collector, "--segment", segment, "--once"], 60)
        assert "installed{statistic=count} 1" in out.splitlines(), out
