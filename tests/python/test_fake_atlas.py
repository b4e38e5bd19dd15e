"""The test plumbing itself: the fake Atlas's decoder, and the fixtures
against the real collector (its self-metrics, no Python package needed)."""

import gzip
import json
import urllib.error
import urllib.request

import pytest

from fake_atlas import PayloadError, decode_payload
from helpers import key


def test_decode_payload_reads_the_string_table_format():
    payload = [4, "count", "name", "server.requestCount", "statistic",
               2, 3, 0, 1, 2, 0, 42,
               2, 3, 0, 1, 2, 10, 0.5]
    assert decode_payload(json.dumps(payload)) == [
        ("server.requestCount", {"statistic": "count"}, 0, 42.0),
        ("server.requestCount", {"statistic": "count"}, 10, 0.5),
    ]


@pytest.mark.parametrize("payload, message", [
    ([], "non-empty"),
    ([2, "b", "a"], "not sorted"),
    ([1, "name", 1, 0, 5, 0, 1], "out of range"),
    ([2, "name", "x", 1, 1, 0, 0, 1], "not name"),
    ([2, "name", "x", 1, 0, 1, 3, 1], "op is not"),
    ([2, "name", "x", 1, 0, 1, 0, "1"], "finite number"),
    ([2, "name", "x", 1, 0, 1, 0], "truncated"),
])
def test_decode_payload_rejects_what_atlas_could_misread(payload, message):
    with pytest.raises(PayloadError, match=message):
        decode_payload(json.dumps(payload))


def test_fake_atlas_answers_400_and_records_bad_payloads(fake_atlas):
    request = urllib.request.Request(fake_atlas.url, data=gzip.compress(b"[1]"),
                                     headers={"Content-Encoding": "gzip"})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(request, timeout=10)
    assert e.value.code == 400
    assert len(fake_atlas.errors) == 1
    fake_atlas._errors.clear()  # expected here; the fixture fails on any left


def test_collect_once_parses_the_stdout_sink(segment, collect_once):
    first = collect_once(segment)  # creates the segment
    assert first[key("spectator.registrySize", statistic="gauge")] > 0
    # The first step's self-metric counts the measurements it printed; the
    # collector updates it after the step, so the second --once shows it.
    second = collect_once(segment)
    assert second[key("spectator.measurements", id="sent", statistic="count")] == len(first)


def test_run_collector_publishes_to_the_fake_atlas(segment, fake_atlas, run_collector,
                                                    collector_pid):
    with run_collector(segment, fake_atlas.url, step=0.1) as proc:
        assert collector_pid(segment) == proc.pid
        assert fake_atlas.wait_for(lambda a: a.sum("spectator.measurements", id="sent") > 0,
                                   timeout=20)
    # SIGTERM: one more step went out, and every payload was accepted.
    totals = fake_atlas.totals()
    assert key("spectator.registrySize", statistic="gauge") in totals
    assert fake_atlas.request_count >= 2
