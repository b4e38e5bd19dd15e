"""The `spectator-collector` console script of the pip-installed package.

A wheel built by setup.py carries the collector binary in
spectator_shm/bin/; the console script replaces itself with it (exec), so
signals, exit codes and stdout are the binary's own.
"""

import os
import sys

_BUNDLED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bin", "spectator-collector")


def collector_path():
    """The spectator-collector binary: the one bundled with this package,
    else env SPECTATOR_COLLECTOR, else the first on PATH that is not this
    console script; None when there is none."""
    if os.access(_BUNDLED, os.X_OK):
        return _BUNDLED
    env = os.environ.get("SPECTATOR_COLLECTOR")
    if env and os.access(env, os.X_OK):
        return env
    me = os.path.realpath(sys.argv[0]) if sys.argv and sys.argv[0] else None
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        candidate = os.path.join(directory or ".", "spectator-collector")
        if (os.access(candidate, os.X_OK) and not os.path.isdir(candidate)
                and os.path.realpath(candidate) != me and not _is_script(candidate)):
            return candidate
    return None


def _is_script(path):
    # A console script (ours, in another environment) starts with "#!".
    try:
        with open(path, "rb") as f:
            return f.read(2) == b"#!"
    except OSError:
        return True


def main():
    path = collector_path()
    if path is None:
        sys.stderr.write("spectator-collector: the binary is not installed with this package "
                         "and none is on PATH\n")
        return 127
    os.execv(path, [path] + sys.argv[1:])
    return 127  # not reached


if __name__ == "__main__":
    sys.exit(main())
