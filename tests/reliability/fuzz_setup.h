#pragma once

// The segment every fuzz run starts from, shared by the gtest fuzz loops and
// the libFuzzer targets (which cannot link gtest).

#include <chrono>

#include "spectator/internal/reader.h"
#include "spectator/spectator.h"

namespace spectator::reliability {

// A small segment (32 slots, 4096 value words) with one meter of every type,
// values recorded, one step taken and committed (so collector-owned words are
// set) and a second one taken but not committed (so the pending journal is
// not empty).
inline void PopulateEveryMeterType(Registry& r) {
  Counter c = r.GetCounter("fz.counter", {{"status", "200"}});
  Timer t = r.GetTimer("fz.timer", {{"method", "GET"}});
  DistributionSummary d = r.GetDistributionSummary("fz.summary");
  Gauge g = r.GetGauge("fz.gauge");
  MaxGauge mg = r.GetMaxGauge("fz.max");
  AgeGauge ag = r.GetAgeGauge("fz.age");
  MonotonicCounter mc = r.GetMonotonicCounter("fz.mono");
  PercentileTimer pt = r.GetPercentileTimer("fz.ptimer");
  PercentileDistributionSummary pd = r.GetPercentileDistributionSummary("fz.psummary", {}, 0, 1000);
  c.Add(3);
  c.Add(0.5);
  t.Record(std::chrono::milliseconds(5));
  d.Record(12);
  g.Set(4);
  mg.Set(9);
  ag.Set(std::chrono::system_clock::now() - std::chrono::seconds(30));
  mc.Set(100);
  pt.Record(std::chrono::milliseconds(20));
  pd.Record(50);
  CollectorLock lock(r.segment_name());
  SegmentReader reader(r, lock);
  reader.Scan(SegmentReader::Mode::kTake, std::chrono::system_clock::now(),
              [&](const MeterReading& m) { reader.Commit(m); });
  c.Increment();
  t.Record(std::chrono::milliseconds(7));
  mg.Set(3);
  mc.Set(150);
  g.Set(5);
  pt.Record(std::chrono::milliseconds(30));
  pd.Record(70);
  reader.Scan(SegmentReader::Mode::kTake, std::chrono::system_clock::now(),
              [](const MeterReading&) {});  // left pending: not committed
  c.Add(2);
  d.Record(1);
}

}  // namespace spectator::reliability
