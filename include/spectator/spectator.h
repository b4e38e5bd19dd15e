#pragma once

// Convenience header: the whole worker-side API.
#include "spectator/counter.h"
#include "spectator/distribution_summary.h"
#include "spectator/error.h"
#include "spectator/gauge.h"
#include "spectator/id.h"
#include "spectator/meter_type.h"
#include "spectator/options.h"
#include "spectator/percentile_buckets.h"
#include "spectator/registry.h"
#include "spectator/timer.h"
#include "spectator/version.h"
