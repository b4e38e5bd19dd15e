# Shell helpers shared by scripts/demo and scripts/soak. Source it; it
# defines functions only.

# stop PID [SIGNAL]: sends SIGNAL (default TERM), then SIGKILL if the process
# still runs after 10 s. Its exit status goes to $stopped_status. (A child
# that has exited stays visible to `kill -0` until it is reaped, hence the
# /proc state check: Z means it is done and `wait` will not block.)
stop() {
  local pid=$1 sig=${2:-TERM} deadline=$((SECONDS + 10))
  stopped_status=0
  [ -n "$pid" ] || return 0
  kill -"$sig" "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null && [ "$(cut -d' ' -f3 "/proc/$pid/stat" 2>/dev/null)" != Z ]; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.1
  done
  wait "$pid" 2>/dev/null || stopped_status=$?
}

# wait_until SECONDS WHAT COMMAND...: polls COMMAND every 100 ms until it
# succeeds; calls `fail "timed out ..."` (defined by the script) after
# SECONDS, and `still_running` (also the script's) on every round so that a
# dead process fails fast instead of at the deadline.
wait_until() {
  local seconds=$1 what=$2
  shift 2
  local deadline=$((SECONDS + seconds))
  until "$@"; do
    [ "$SECONDS" -lt "$deadline" ] || fail "timed out after ${seconds}s waiting for $what"
    still_running
    sleep 0.1
  done
}

# build_binaries DIR: a Release build of spectator-collector and
# prefork-server in DIR; sets $collector and $server to their paths.
build_binaries() {
  local build=$1
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DSPECTATOR_BUILD_TESTS=OFF -DSPECTATOR_BUILD_BENCHMARKS=OFF >"$build.cmake.log" 2>&1 ||
    { cat "$build.cmake.log" >&2; exit 1; }
  cmake --build "$build" -j "$(nproc)" --target spectator-collector prefork-server
  collector=$build/collector/spectator-collector
  server=$build/examples/prefork/prefork-server
}

# Sum of the values of stdout-sink lines of NAME with statistic=STAT (and
# optionally a tag filter regex) over files, skipping a last line cut short
# by a kill -9 (no newline): its batch was not committed and is published
# again by the next collector.
sum_published() {
  local name=$1 filter=$2
  shift 2
  local f
  for f in "$@"; do
    if [ -n "$(tail -c 1 "$f")" ]; then sed '$d' "$f"; else cat "$f"; fi
  done | awk -v name="$name" -v filter="$filter" '
    index($0, name "{") == 1 && $0 ~ filter { sum += $NF }
    END { printf "%d", sum }'
}
