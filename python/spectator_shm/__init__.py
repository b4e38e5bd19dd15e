"""Netflix Spectator meters for Python pre-fork servers, on a spectator-shm
shared-memory segment.

    from spectator_shm import GlobalRegistry

    GlobalRegistry.counter("server.numRequests", {"statusCode": "200"}).increment()

Every process (gunicorn master and workers, uWSGI, multiprocessing children)
updates the same segment, /dev/shm/<segment>, with atomic instructions; a
separate spectator-collector process publishes the whole server's series to
Atlas. Nothing runs in the Python process: no thread, no lock, no fork
handler, so meters made before fork() keep working in the children.

- GlobalRegistry: a Registry on the segment named by env SPECTATOR_SEGMENT
  (default "spectator"), opened at first use. If it cannot be opened, one
  warning is logged and its meters are no-ops.
- Registry(segment=None, *, max_meters=8192, value_words=1<<20, mode=0o600,
  group=None): opens (creates or attaches) a segment now; raises a
  SpectatorError subclass naming the segment when that fails.

Getters and meter methods never raise: bad input gives a no-op meter, a
converted value, a dropped tag or an ignored update, and one warning per kind
of problem on logging.getLogger("spectator_shm"). See docs/python.md.
"""

from ._spectator_shm import (
    AgeGauge,
    Counter,
    DistributionSummary,
    ForeignSegmentError,
    Gauge,
    InvalidSegmentOptions,
    MaxGauge,
    MonotonicCounter,
    PercentileDistributionSummary,
    PercentileTimer,
    Registry,
    SegmentNoSpaceError,
    SegmentNotInitialisedError,
    SegmentPermissionError,
    SegmentSizeError,
    SegmentSystemError,
    SegmentVersionError,
    SpectatorError,
    Stopwatch,
    Timer,
    __version__,
    _lazy_registry,
)
from ._collector import collector_path

GlobalRegistry = _lazy_registry()
del _lazy_registry

__all__ = [
    "AgeGauge",
    "Counter",
    "DistributionSummary",
    "ForeignSegmentError",
    "Gauge",
    "GlobalRegistry",
    "InvalidSegmentOptions",
    "MaxGauge",
    "MonotonicCounter",
    "PercentileDistributionSummary",
    "PercentileTimer",
    "Registry",
    "SegmentNoSpaceError",
    "SegmentNotInitialisedError",
    "SegmentPermissionError",
    "SegmentSizeError",
    "SegmentSystemError",
    "SegmentVersionError",
    "SpectatorError",
    "Stopwatch",
    "Timer",
    "collector_path",
]
