#pragma once

// The collector's log: one line per event on stderr, with UTC time and level,
//   2026-11-25T21:48:01.123Z WARN publish: HTTP 503 from http://..., retrying
// Lines below the configured level are dropped. Thread-safe.

#include <functional>
#include <string>
#include <string_view>

#include "spectator/options.h"  // spectator::LogLevel

namespace spectator::collector {

void SetLogLevel(LogLevel level) noexcept;
bool LogEnabled(LogLevel level) noexcept;

/// Writes one line when `level` is enabled.
void Log(LogLevel level, std::string_view message);

/// Writes one line whatever the configured level: for the few lines an
/// operator or a script must always see (the port a listener bound).
void LogAlways(LogLevel level, std::string_view message);

/// Replaces the destination (tests); an empty function restores stderr.
using LogSink = std::function<void(LogLevel, std::string_view line)>;
void SetLogSinkForTesting(LogSink sink);

/// "debug", "info", "warn", "error" → level; false for anything else.
bool ParseLogLevel(std::string_view text, LogLevel* out) noexcept;

}  // namespace spectator::collector
