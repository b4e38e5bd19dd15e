// The spectator_shm._spectator_shm extension: the Spectator Python API on a
// spectator-shm segment, written against the CPython C API.
//
// Shape of the hot paths:
// - Each meter is a small extension object holding the C++ handle (a pointer
//   into the mapping, plus the bucket range for percentile meters) and a
//   strong reference to its Registry object, which owns the mapping. An
//   update is one METH_NOARGS/METH_FASTCALL call straight into the inline
//   C++ update: no Python frame, no argument tuple, no lock.
// - A getter turns the tags dict into TagViews on the stack (PyDict_Next +
//   PyUnicode_AsUTF8AndSize, which for a str returns its cached UTF-8 bytes)
//   and calls Registry::Get*, which canonicalises into a stack buffer and
//   probes the lock-free table. No Python object is built for the key.
//
// Thread safety: every entry point runs with the GIL held (none releases it:
// the calls are far shorter than a GIL hand-off), which also serialises the
// module's own once-only logging state. Process safety and fork: nothing
// here is per-process (no thread, no lock, no at-fork handler); meter
// objects created before fork() keep working in the children, as the C++
// handles do.
//
// Error policy (docs/python.md, "Bad input"): only an explicit Registry(...)
// raises, with a SpectatorError subclass. Getters and meter methods never
// raise: bad input gives a no-op meter, a converted value, a dropped tag or
// an ignored update, and a log line on logging.getLogger("spectator_shm")
// the first time each kind of problem happens in the process.

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <chrono>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstring>
#include <exception>
#include <memory>
#include <new>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "spectator/spectator.h"

namespace {

// ---------------------------------------------------------------------------
// Logging: once per kind of problem per process.

enum LogKind : unsigned {
  kLogOpenFailed,    // GlobalRegistry could not open its segment
  kLogBadName,       // name not a str, or not encodable
  kLogBadTags,       // tags not a dict (and not convertible to one)
  kLogTagConverted,  // a non-str tag key or value converted with str()
  kLogTagDropped,    // a tag with a None key/value, or one str() failed on
  kLogBadValue,      // a meter method given something that is not a number
  kLogIgnoredValue,  // a number the meter ignores (negative, NaN, infinite)
  kLogBadRange,      // percentile getter bounds not numbers
  kLogBadArgs,       // wrong number of arguments or unknown keyword
  kLogInvalidId,     // the library refused the Id (too long, empty, ...)
  kLogTypeMismatch,  // the Id exists with another meter type
  kLogFull,          // the segment has no room
  kLogStuck,         // another process does not finish registering the Id
  kLogEmptyRange,    // percentile range refused by the library
  kLogLibraryOther,  // any other refusal of a meter by the library
  kLogKindCount
};

unsigned g_logged = 0;         // bit i set: kind i was logged
PyObject* g_logger = nullptr;  // logging.getLogger("spectator_shm")

// Emits one line at `level` ("debug", "info", "warning", "error") on the
// package logger. Never raises: a pending exception is saved and restored,
// and a failing handler is swallowed.
void EmitLog(const char* level, PyObject* message) {
  if (g_logger == nullptr || message == nullptr) return;
  PyObject *type, *value, *tb;
  PyErr_Fetch(&type, &value, &tb);
  PyObject* r = PyObject_CallMethod(g_logger, level, "sO", "%s", message);
  Py_XDECREF(r);
  if (r == nullptr) PyErr_Clear();
  PyErr_Restore(type, value, tb);
}

// printf-style (PyUnicode_FromFormat) line, logged the first time `kind`
// happens in this process. The format is only evaluated then.
// kind == kLogKindCount: do not log.
void LogOnce(LogKind kind, const char* format, ...) {
  if (kind >= kLogKindCount || (g_logged & (1u << kind))) return;
  g_logged |= 1u << kind;
  PyObject *type, *value, *tb;
  PyErr_Fetch(&type, &value, &tb);
  va_list args;
  va_start(args, format);
  PyObject* body = PyUnicode_FromFormatV(format, args);
  va_end(args);
  PyObject* message =
      body != nullptr
          ? PyUnicode_FromFormat("%U (logged once; later problems of this kind are silent)", body)
          : nullptr;
  if (message == nullptr) PyErr_Clear();
  EmitLog("warning", message);
  Py_XDECREF(message);
  Py_XDECREF(body);
  PyErr_Restore(type, value, tb);
}

// The library's Logger: called from inside Registry methods, on the thread
// that called them, i.e. with the GIL held. Warnings are sorted into kinds
// by their wording (src/registry.cc) and logged once per kind.
void LibraryLog(spectator::LogLevel level, std::string_view text) {
  const char* lvl = "warning";
  switch (level) {
    case spectator::LogLevel::kDebug: lvl = "debug"; break;
    case spectator::LogLevel::kInfo: lvl = "info"; break;
    case spectator::LogLevel::kWarning: lvl = "warning"; break;
    case spectator::LogLevel::kError: lvl = "error"; break;
  }
  if (level == spectator::LogLevel::kWarning) {
    LogKind kind = kLogLibraryOther;
    if (text.find("refusing meter") != std::string_view::npos) {
      kind = kLogInvalidId;
    } else if (text.find("empty range") != std::string_view::npos) {
      kind = kLogEmptyRange;
    } else if (text.find("is full") != std::string_view::npos) {
      kind = kLogFull;
    } else if (text.find("being registered") != std::string_view::npos) {
      kind = kLogStuck;
    } else if (text.find(", not a ") != std::string_view::npos) {
      kind = kLogTypeMismatch;
    } else if (text.find("no-op meter") != std::string_view::npos) {
      kind = kLogLibraryOther;  // any other per-call refusal (e.g. a claim lock failing)
    } else {
      // Not a per-call problem (e.g. capacities differing on attach): pass on.
      PyObject* m = PyUnicode_DecodeUTF8(text.data(), static_cast<Py_ssize_t>(text.size()),
                                         "replace");
      EmitLog(lvl, m);
      Py_XDECREF(m);
      return;
    }
    const std::string line(text);
    LogOnce(kind, "%s", line.c_str());
    return;
  }
  PyObject* m =
      PyUnicode_DecodeUTF8(text.data(), static_cast<Py_ssize_t>(text.size()), "replace");
  EmitLog(lvl, m);
  Py_XDECREF(m);
}

// ---------------------------------------------------------------------------
// Exceptions.

PyObject* g_spectator_error = nullptr;

struct ErrorClass {
  spectator::ErrorCode code;
  const char* name;       // attribute name in the module
  const char* code_name;  // value of exc.code
  bool value_error;       // also a ValueError
  const char* doc;
  PyObject* type;
};

ErrorClass g_error_classes[] = {
    {spectator::ErrorCode::kInvalidArgument, "InvalidSegmentOptions", "invalid_argument", true,
     "A bad segment name, capacity or mode.", nullptr},
    {spectator::ErrorCode::kForeignSegment, "ForeignSegmentError", "foreign_segment", false,
     "The file is not a spectator-shm segment; it was left untouched.", nullptr},
    {spectator::ErrorCode::kVersionMismatch, "SegmentVersionError", "version_mismatch", false,
     "A spectator-shm segment of another layout version.", nullptr},
    {spectator::ErrorCode::kSizeMismatch, "SegmentSizeError", "size_mismatch", false,
     "The segment's header and size disagree.", nullptr},
    {spectator::ErrorCode::kNotInitialised, "SegmentNotInitialisedError", "not_initialised",
     false, "The creator of the segment never finished initialising it.", nullptr},
    {spectator::ErrorCode::kPermission, "SegmentPermissionError", "permission", false,
     "The segment belongs to another user or group, or access is denied.", nullptr},
    {spectator::ErrorCode::kNoSpace, "SegmentNoSpaceError", "no_space", false,
     "/dev/shm has no room for the segment.", nullptr},
    {spectator::ErrorCode::kSystem, "SegmentSystemError", "system", false,
     "An operating-system call failed.", nullptr},
};

// Sets the Python exception for a failed open of `segment`: the class of
// `code` (nullptr: SpectatorError itself), with .segment and .code set.
void RaiseOpenError(const ErrorClass* cls, const std::string& segment, const char* what) {
  PyObject* type = cls != nullptr ? cls->type : g_spectator_error;
  std::string message = what;
  if (message.find(segment) == std::string::npos) {
    message = "segment '" + segment + "': " + message;
  }
  PyObject* exc = PyObject_CallFunction(type, "s", message.c_str());
  if (exc == nullptr) return;
  PyObject* seg = PyUnicode_DecodeUTF8(segment.data(), static_cast<Py_ssize_t>(segment.size()),
                                       "replace");
  PyObject* code = PyUnicode_FromString(cls != nullptr ? cls->code_name : "other");
  if (seg != nullptr) PyObject_SetAttrString(exc, "segment", seg);
  if (code != nullptr) PyObject_SetAttrString(exc, "code", code);
  Py_XDECREF(seg);
  Py_XDECREF(code);
  PyErr_Clear();  // a failed SetAttr must not mask the error being raised
  PyErr_SetObject(type, exc);
  Py_DECREF(exc);
}

const ErrorClass* ClassOf(spectator::ErrorCode code) {
  for (const ErrorClass& c : g_error_classes) {
    if (c.code == code) return &c;
  }
  return nullptr;
}

// ---------------------------------------------------------------------------
// Registry.

enum class RegistryState { kOpen, kLazy, kFailed };

struct RegistryObject {
  PyObject_HEAD
  spectator::Registry* registry;   // owned; null unless kOpen
  spectator::SegmentOptions* lazy;  // owned; the options a lazy registry opens with
  RegistryState state;
};

extern PyTypeObject RegistryType;

// Default segment name: env SPECTATOR_SEGMENT, else "spectator".
std::string DefaultSegment() {
  const char* env = std::getenv("SPECTATOR_SEGMENT");
  return env != nullptr && *env != '\0' ? std::string(env) : std::string("spectator");
}


// Opens `options`; on failure sets the Python exception and returns null.
spectator::Registry* Open(const spectator::SegmentOptions& options) {
  try {
    return new spectator::Registry(options);
  } catch (const spectator::Error& e) {
    RaiseOpenError(ClassOf(e.code()), options.name, e.what());
  } catch (const std::exception& e) {
    RaiseOpenError(nullptr, options.name, e.what());
  } catch (...) {
    RaiseOpenError(nullptr, options.name, "unknown error");
  }
  return nullptr;
}

// The library registry behind `self`, opening a lazy one on first use; null
// when it cannot be opened (logged once), and forever after.
inline spectator::Registry* Live(RegistryObject* self) {
  if (self->state == RegistryState::kOpen) return self->registry;
  if (self->state == RegistryState::kFailed) return nullptr;
  self->lazy->name = DefaultSegment();  // read at first use, not at import
  spectator::Registry* r = Open(*self->lazy);
  if (r == nullptr) {
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyObject* text = value != nullptr ? PyObject_Str(value) : nullptr;
    if (text == nullptr) PyErr_Clear();
    LogOnce(kLogOpenFailed, "GlobalRegistry: cannot open segment '%s': %S; its meters are no-ops",
            self->lazy->name.c_str(), text != nullptr ? text : Py_None);
    Py_XDECREF(text);
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
    if (self->state == RegistryState::kOpen) return self->registry;  // see below
    self->state = RegistryState::kFailed;
    return nullptr;
  }
  // A log handler run during Open may have released the GIL and let another
  // thread open this registry too: keep the first, and leave ours mapped
  // (meters may already point into it) rather than unmap under them.
  if (self->state == RegistryState::kOpen) return self->registry;
  self->registry = r;
  self->state = RegistryState::kOpen;
  return r;
}

// ---------------------------------------------------------------------------
// Argument helpers (never raise).

// A real number as a double. False (nothing pending, logged once as `kind`)
// for anything else: str, bytes, None, objects without __float__/__index__,
// ints too large for a double.
bool ToDouble(PyObject* o, double* out, LogKind kind, const char* what) {
  if (PyFloat_CheckExact(o)) {
    *out = PyFloat_AS_DOUBLE(o);
    return true;
  }
  if (PyLong_CheckExact(o)) {
    const double d = PyLong_AsDouble(o);
    if (d == -1.0 && PyErr_Occurred()) {
      PyErr_Clear();
      LogOnce(kind, "%s: %R is out of range; ignored", what, o);
      return false;
    }
    *out = d;
    return true;
  }
  if (!PyUnicode_Check(o) && !PyBytes_Check(o) && !PyByteArray_Check(o)) {
    const double d = PyFloat_AsDouble(o);  // __float__, then __index__
    if (!(d == -1.0 && PyErr_Occurred())) {
      *out = d;
      return true;
    }
    PyErr_Clear();
  }
  LogOnce(kind, "%s: expected a number, got %.100s; ignored", what, Py_TYPE(o)->tp_name);
  return false;
}

// A number the C++ meter ignores, as Spectator does (a negative count or
// duration, NaN, infinity): logged once, then silently ignored.
void LogIgnored(const char* what, PyObject* value) {
  LogOnce(kLogIgnoredValue, "%s: %R is negative, NaN or infinite; ignored", what, value);
}

// Seconds to nanoseconds, rounded; false when NaN or beyond int64.
bool SecondsToNanos(double s, std::int64_t* ns) {
  const double v = std::round(s * 1e9);
  if (!(v > -9.2e18 && v < 9.2e18)) return false;
  *ns = static_cast<std::int64_t>(v);
  return true;
}

// ---------------------------------------------------------------------------
// Ids: name + tags dict -> string views on the stack.

constexpr std::size_t kStackTags = spectator::kMaxUserTags;

struct IdArgs {
  std::string_view name;
  // Left uninitialised (a union member is not constructed): only the first n
  // are ever written or read.
  union {
    spectator::TagView tags[kStackTags];
  };
  std::size_t n = 0;
  // More than kStackTags usable tags: the library refuses the Id
  // (kTooManyTags); `overflow` carries them so that it does so itself.
  spectator::Tags overflow;
  bool use_overflow = false;
  // str() results that back some views; released with this object.
  PyObject* owned[2 * kStackTags + 2];
  std::size_t n_owned = 0;
  PyObject* dict_owned = nullptr;  // tags converted to a dict

  IdArgs() {}  // NOLINT: must not value-initialise `tags`
  IdArgs(const IdArgs&) = delete;
  IdArgs& operator=(const IdArgs&) = delete;
  ~IdArgs() {
    for (std::size_t i = 0; i < n_owned; ++i) Py_DECREF(owned[i]);
    Py_XDECREF(dict_owned);
  }
};

// The UTF-8 view of a tag key or value. A str is used as is; None drops the
// tag; anything else is converted with str(). False: drop the tag.
bool TagPart(PyObject* o, IdArgs* id, std::string_view* out, const char* role) {
  if (PyUnicode_Check(o)) {
    Py_ssize_t len;
    const char* s = PyUnicode_AsUTF8AndSize(o, &len);
    if (s != nullptr) {
      *out = std::string_view(s, static_cast<std::size_t>(len));
      return true;
    }
    PyErr_Clear();
    LogOnce(kLogTagDropped, "tag %s %R cannot be encoded as UTF-8; tag dropped", role, o);
    return false;
  }
  if (o == Py_None) {
    LogOnce(kLogTagDropped, "tag %s is None; tag dropped", role);
    return false;
  }
  if (id->n_owned == sizeof id->owned / sizeof id->owned[0]) return false;
  PyObject* str = PyObject_Str(o);
  if (str == nullptr) {
    PyErr_Clear();
    LogOnce(kLogTagDropped, "tag %s of type %.100s has no str(); tag dropped", role,
            Py_TYPE(o)->tp_name);
    return false;
  }
  Py_ssize_t len;
  const char* s = PyUnicode_AsUTF8AndSize(str, &len);
  if (s == nullptr) {
    PyErr_Clear();
    Py_DECREF(str);
    LogOnce(kLogTagDropped, "tag %s of type %.100s has no UTF-8 str(); tag dropped", role,
            Py_TYPE(o)->tp_name);
    return false;
  }
  id->owned[id->n_owned++] = str;
  LogOnce(kLogTagConverted, "tag %s %R is a %.100s, not a str; converted with str()", role, o,
          Py_TYPE(o)->tp_name);
  *out = std::string_view(s, static_cast<std::size_t>(len));
  return true;
}

// Fills `id` from the getter's name and tags. False: use a no-op meter.
bool ParseId(PyObject* name, PyObject* tags, IdArgs* id) {
  if (!PyUnicode_Check(name)) {
    LogOnce(kLogBadName, "meter name must be a str, got %.100s; using a no-op meter",
            Py_TYPE(name)->tp_name);
    return false;
  }
  Py_ssize_t len;
  const char* s = PyUnicode_AsUTF8AndSize(name, &len);
  if (s == nullptr) {
    PyErr_Clear();
    LogOnce(kLogBadName, "meter name %R cannot be encoded as UTF-8; using a no-op meter", name);
    return false;
  }
  id->name = std::string_view(s, static_cast<std::size_t>(len));
  if (tags == nullptr || tags == Py_None) return true;
  if (!PyDict_Check(tags)) {
    // A mapping or a sequence of pairs: what dict() accepts.
    PyObject* d = PyObject_CallOneArg(reinterpret_cast<PyObject*>(&PyDict_Type), tags);
    if (d == nullptr) {
      PyErr_Clear();
      LogOnce(kLogBadTags, "tags of meter %R must be a dict, got %.100s; using a no-op meter",
              name, Py_TYPE(tags)->tp_name);
      return false;
    }
    LogOnce(kLogBadTags, "tags of meter %R are a %.100s, not a dict; converted with dict()", name,
            Py_TYPE(tags)->tp_name);
    id->dict_owned = d;
    tags = d;
  }
  Py_ssize_t pos = 0;
  PyObject *k, *v;
  while (PyDict_Next(tags, &pos, &k, &v)) {
    std::string_view key, value;
    if (!TagPart(k, id, &key, "key") || !TagPart(v, id, &value, "value")) continue;
    if (id->n < kStackTags) {
      new (&id->tags[id->n++]) spectator::TagView(key, value);  // starts its lifetime
    } else {
      if (!id->use_overflow) {
        id->use_overflow = true;
        for (std::size_t i = 0; i < id->n; ++i) {
          id->overflow.emplace_back(std::string(id->tags[i].first),
                                    std::string(id->tags[i].second));
        }
      }
      id->overflow.emplace_back(std::string(key), std::string(value));
    }
  }
  return true;
}

// Calls get(TagList) with the tags of `id`. Up to kStackTags tags travel as a
// braced list of views (no copy, no allocation); more go through the owning
// Tags vector so that the library refuses them as it would any caller's.
template <class Get, std::size_t... I>
auto CallWithViews(Get& get, const spectator::TagView* t, std::index_sequence<I...>) {
  return get(spectator::TagList{t[I]...});
}

template <std::size_t N = 0, class Get>
auto WithTags(const IdArgs& id, Get& get) {
  if constexpr (N == kStackTags) {
    return CallWithViews(get, id.tags, std::make_index_sequence<N>{});
  } else {
    if (id.n == N) return CallWithViews(get, id.tags, std::make_index_sequence<N>{});
    return WithTags<N + 1>(id, get);
  }
}

template <class Get>
auto GetWith(const IdArgs& id, Get get) {
  if (id.use_overflow) return get(spectator::TagList(id.overflow));
  return WithTags(id, get);
}

// ---------------------------------------------------------------------------
// Meters.

template <class Handle>
struct MeterObject {
  PyObject_HEAD
  Handle handle;
  PyObject* registry;  // strong: keeps the mapping the handle points into alive
};

using CounterObject = MeterObject<spectator::Counter>;
using TimerObject = MeterObject<spectator::Timer>;
using SummaryObject = MeterObject<spectator::DistributionSummary>;
using GaugeObject = MeterObject<spectator::Gauge>;
using MaxGaugeObject = MeterObject<spectator::MaxGauge>;
using AgeGaugeObject = MeterObject<spectator::AgeGauge>;
using MonotonicObject = MeterObject<spectator::MonotonicCounter>;
using PctTimerObject = MeterObject<spectator::PercentileTimer>;
using PctSummaryObject = MeterObject<spectator::PercentileDistributionSummary>;

template <class Handle>
void MeterDealloc(PyObject* self) {
  auto* m = reinterpret_cast<MeterObject<Handle>*>(self);
  Py_XDECREF(m->registry);
  PyObject_Free(self);
}

template <class Handle>
PyObject* NewMeter(PyTypeObject* type, PyObject* registry, Handle handle) {
  auto* m = PyObject_New(MeterObject<Handle>, type);
  if (m == nullptr) return nullptr;  // MemoryError: the one thing we cannot hide
  new (&m->handle) Handle(handle);
  Py_INCREF(registry);
  m->registry = registry;
  return reinterpret_cast<PyObject*>(m);
}

// The argument of a one-argument meter method, given by position or as the
// keyword `name`. Returns null when absent; false (logged once, call
// ignored) when the call has any other shape. Never raises.
bool OneArg(PyObject* self, const char* method, const char* name, PyObject* const* args,
            Py_ssize_t nargs, PyObject* kwnames, PyObject** out) {
  const Py_ssize_t nkw = kwnames != nullptr ? PyTuple_GET_SIZE(kwnames) : 0;
  *out = nullptr;
  if (nargs + nkw > 1) {
    LogOnce(kLogBadArgs, "%s.%s() takes at most one argument (%s), got %zd; call ignored",
            Py_TYPE(self)->tp_name, method, name, nargs + nkw);
    return false;
  }
  if (nkw == 1) {
    PyObject* kw = PyTuple_GET_ITEM(kwnames, 0);
    if (PyUnicode_CompareWithASCIIString(kw, name) != 0) {
      LogOnce(kLogBadArgs, "%s.%s(): unexpected argument %R; call ignored",
              Py_TYPE(self)->tp_name, method, kw);
      return false;
    }
  }
  if (nargs + nkw == 1) *out = args[0];  // keyword values follow the positional ones
  return true;
}

// Like OneArg, for methods whose argument is required.
bool RequiredArg(PyObject* self, const char* method, const char* name, PyObject* const* args,
                 Py_ssize_t nargs, PyObject* kwnames, PyObject** out) {
  if (!OneArg(self, method, name, args, nargs, kwnames, out)) return false;
  if (*out != nullptr) return true;
  LogOnce(kLogBadArgs, "%s.%s() needs its argument (%s); call ignored", Py_TYPE(self)->tp_name,
          method, name);
  return false;
}

// Methods that take no argument (reset, stopwatch): anything passed is
// logged once and otherwise disregarded.
void NoArgs(PyObject* self, const char* method, Py_ssize_t nargs, PyObject* kwnames) {
  if (nargs == 0 && kwnames == nullptr) return;
  LogOnce(kLogBadArgs, "%s.%s() takes no arguments; they were disregarded",
          Py_TYPE(self)->tp_name, method);
}

// Counter.increment(amount=1)
PyObject* CounterIncrement(PyObject* self, PyObject* const* args, Py_ssize_t nargs,
                           PyObject* kwnames) {
  auto* m = reinterpret_cast<CounterObject*>(self);
  if (nargs == 0 && kwnames == nullptr) {  // the hot path: one relaxed fetch_add
    m->handle.Increment();
    Py_RETURN_NONE;
  }
  PyObject* arg;
  double amount;
  if (OneArg(self, "increment", "amount", args, nargs, kwnames, &arg)) {
    if (arg == nullptr) {
      m->handle.Increment();
    } else if (ToDouble(arg, &amount, kLogBadValue, "Counter.increment()")) {
      if (amount < 0 || !std::isfinite(amount)) LogIgnored("Counter.increment()", arg);
      m->handle.Add(amount);  // ignores those itself
    }
  }
  Py_RETURN_NONE;
}

// Timer.record(seconds), PercentileTimer.record(seconds)
template <class Obj>
PyObject* TimerRecord(PyObject* self, PyObject* const* args, Py_ssize_t nargs,
                      PyObject* kwnames) {
  PyObject* arg;
  double s;
  std::int64_t ns;
  if (nargs == 1 && kwnames == nullptr) {
    arg = args[0];
  } else if (!RequiredArg(self, "record", "seconds", args, nargs, kwnames, &arg)) {
    Py_RETURN_NONE;
  }
  if (!ToDouble(arg, &s, kLogBadValue, "Timer.record()")) Py_RETURN_NONE;
  if (!SecondsToNanos(s, &ns) || ns < 0) {
    LogIgnored("Timer.record()", arg);
    Py_RETURN_NONE;
  }
  reinterpret_cast<Obj*>(self)->handle.Record(std::chrono::nanoseconds(ns));
  Py_RETURN_NONE;
}

// DistributionSummary.record(amount), PercentileDistributionSummary.record(amount)
template <class Obj>
PyObject* SummaryRecord(PyObject* self, PyObject* const* args, Py_ssize_t nargs,
                        PyObject* kwnames) {
  PyObject* arg;
  double amount;
  if (RequiredArg(self, "record", "amount", args, nargs, kwnames, &arg) &&
      ToDouble(arg, &amount, kLogBadValue, "DistributionSummary.record()")) {
    if (!(amount >= 0) || !std::isfinite(amount)) LogIgnored("record()", arg);
    reinterpret_cast<Obj*>(self)->handle.Record(amount);  // ignores those itself
  }
  Py_RETURN_NONE;
}

// Gauge.set(value), MaxGauge.set(value), MonotonicCounter.set(total).
// NaN clears a Gauge; the other two ignore it (logged once).
template <class Obj, bool kNaNIgnored>
PyObject* SetValue(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  PyObject* arg;
  double v;
  const char* name = std::is_same_v<Obj, MonotonicObject> ? "total" : "value";
  if (RequiredArg(self, "set", name, args, nargs, kwnames, &arg) &&
      ToDouble(arg, &v, kLogBadValue, "set()")) {
    if (kNaNIgnored && std::isnan(v)) LogIgnored("set()", arg);
    reinterpret_cast<Obj*>(self)->handle.Set(v);
  }
  Py_RETURN_NONE;
}

// AgeGauge.reset()
PyObject* AgeGaugeReset(PyObject* self, PyObject* const*, Py_ssize_t nargs, PyObject* kwnames) {
  NoArgs(self, "reset", nargs, kwnames);
  reinterpret_cast<AgeGaugeObject*>(self)->handle.Reset();
  Py_RETURN_NONE;
}

// AgeGauge.set(unix_seconds)
PyObject* AgeGaugeSet(PyObject* self, PyObject* const* args, Py_ssize_t nargs,
                      PyObject* kwnames) {
  PyObject* arg;
  double s;
  std::int64_t ns;
  if (RequiredArg(self, "set", "unix_seconds", args, nargs, kwnames, &arg) &&
      ToDouble(arg, &s, kLogBadValue, "AgeGauge.set()")) {
    if (SecondsToNanos(s, &ns)) {
      reinterpret_cast<AgeGaugeObject*>(self)->handle.Set(
          std::chrono::system_clock::time_point(
              std::chrono::duration_cast<std::chrono::system_clock::duration>(
                  std::chrono::nanoseconds(ns))));
    } else {
      LogIgnored("AgeGauge.set()", arg);
    }
  }
  Py_RETURN_NONE;
}

// ---------------------------------------------------------------------------
// Stopwatch: `with timer.stopwatch(): ...` records the block's duration,
// measured with the monotonic clock, also when the block raises.

struct StopwatchObject {
  PyObject_HEAD
  PyObject* timer;  // a Timer or PercentileTimer
  std::int64_t start_ns;
  bool percentile;
};

extern PyTypeObject StopwatchType;
extern PyTypeObject TimerType;
extern PyTypeObject PctTimerType;

std::int64_t MonotonicNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

PyObject* NewStopwatch(PyObject* timer, bool percentile) {
  auto* w = PyObject_New(StopwatchObject, &StopwatchType);
  if (w == nullptr) return nullptr;
  Py_INCREF(timer);
  w->timer = timer;
  w->start_ns = MonotonicNanos();
  w->percentile = percentile;
  return reinterpret_cast<PyObject*>(w);
}

void StopwatchDealloc(PyObject* self) {
  Py_XDECREF(reinterpret_cast<StopwatchObject*>(self)->timer);
  PyObject_Free(self);
}

PyObject* StopwatchEnter(PyObject* self, PyObject*) {
  reinterpret_cast<StopwatchObject*>(self)->start_ns = MonotonicNanos();
  Py_INCREF(self);
  return self;
}

PyObject* StopwatchExit(PyObject* self, PyObject* const*, Py_ssize_t) {
  auto* w = reinterpret_cast<StopwatchObject*>(self);
  const std::chrono::nanoseconds elapsed(MonotonicNanos() - w->start_ns);
  if (w->percentile) {
    reinterpret_cast<PctTimerObject*>(w->timer)->handle.Record(elapsed);
  } else {
    reinterpret_cast<TimerObject*>(w->timer)->handle.Record(elapsed);
  }
  Py_RETURN_FALSE;  // never swallows the block's exception
}

PyObject* StopwatchDuration(PyObject* self, PyObject*) {
  auto* w = reinterpret_cast<StopwatchObject*>(self);
  return PyFloat_FromDouble(static_cast<double>(MonotonicNanos() - w->start_ns) / 1e9);
}

PyObject* TimerStopwatch(PyObject* self, PyObject* const*, Py_ssize_t nargs, PyObject* kwnames) {
  NoArgs(self, "stopwatch", nargs, kwnames);
  return NewStopwatch(self, false);
}

PyObject* PctTimerStopwatch(PyObject* self, PyObject* const*, Py_ssize_t nargs,
                            PyObject* kwnames) {
  NoArgs(self, "stopwatch", nargs, kwnames);
  return NewStopwatch(self, true);
}

// ---------------------------------------------------------------------------
// Registry getters.

extern PyTypeObject CounterType, SummaryType, GaugeType, MaxGaugeType, AgeGaugeType,
    MonotonicType, PctSummaryType;

// The positional-or-keyword arguments of a getter: name, tags[, min, max].
// Never raises; false (logged once) when the call does not fit, which gives a
// no-op meter.
struct GetterArgs {
  PyObject* name = nullptr;
  PyObject* tags = nullptr;
  PyObject* min = nullptr;
  PyObject* max = nullptr;
};

bool ParseGetter(const char* what, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames,
                 bool has_range, GetterArgs* out) {
  PyObject** slots[] = {&out->name, &out->tags, &out->min, &out->max};
  const Py_ssize_t max_args = has_range ? 4 : 2;
  static const char* const kNames[] = {"name", "tags", "min", "max"};
  if (nargs > max_args) {
    LogOnce(kLogBadArgs, "%s() takes at most %zd arguments, got %zd; using a no-op meter", what,
            max_args, nargs);
    return false;
  }
  for (Py_ssize_t i = 0; i < nargs; ++i) *slots[i] = args[i];
  if (kwnames != nullptr) {
    const Py_ssize_t nkw = PyTuple_GET_SIZE(kwnames);
    for (Py_ssize_t k = 0; k < nkw; ++k) {
      PyObject* kw = PyTuple_GET_ITEM(kwnames, k);
      Py_ssize_t slot = -1;
      for (Py_ssize_t i = 0; i < max_args; ++i) {
        if (PyUnicode_CompareWithASCIIString(kw, kNames[i]) == 0) slot = i;
      }
      if (slot < 0 || *slots[slot] != nullptr) {
        LogOnce(kLogBadArgs, "%s(): unexpected or repeated argument %R; using a no-op meter",
                what, kw);
        return false;
      }
      *slots[slot] = args[nargs + k];
    }
  }
  if (out->name == nullptr) {
    LogOnce(kLogBadArgs, "%s() needs a name; using a no-op meter", what);
    return false;
  }
  return true;
}

// The simple getters: counter, timer, distribution_summary, gauge, max_gauge,
// age_gauge, monotonic_counter.
template <class Handle, PyTypeObject* Type,
          Handle (spectator::Registry::*Getter)(std::string_view, spectator::TagList) noexcept>
PyObject* SimpleGetter(PyObject* self, PyObject* const* args, Py_ssize_t nargs,
                       PyObject* kwnames) {
  auto* reg = reinterpret_cast<RegistryObject*>(self);
  Handle handle;
  GetterArgs a;
  IdArgs id;
  if (ParseGetter(Type->tp_name, args, nargs, kwnames, false, &a) && ParseId(a.name, a.tags, &id)) {
    if (spectator::Registry* r = Live(reg)) {
      handle = GetWith(id, [&](spectator::TagList tags) { return (r->*Getter)(id.name, tags); });
    }
  }
  return NewMeter(Type, self, handle);
}

// Percentile bound: a number (seconds for timers), or the default.
bool RangeBound(PyObject* o, double fallback, double* out, const char* what) {
  if (o == nullptr) {
    *out = fallback;
    return true;
  }
  if (ToDouble(o, out, kLogKindCount, what) && !std::isnan(*out)) return true;
  LogOnce(kLogBadRange, "%s: bound %R is not a number; using a no-op meter", what, o);
  return false;
}

PyObject* PctTimerGetter(PyObject* self, PyObject* const* args, Py_ssize_t nargs,
                         PyObject* kwnames) {
  auto* reg = reinterpret_cast<RegistryObject*>(self);
  spectator::PercentileTimer handle;
  GetterArgs a;
  IdArgs id;
  double lo, hi;
  std::int64_t lo_ns, hi_ns;
  if (ParseGetter("pct_timer", args, nargs, kwnames, true, &a) && ParseId(a.name, a.tags, &id) &&
      RangeBound(a.min, 0.01, &lo, "pct_timer()") && RangeBound(a.max, 60.0, &hi, "pct_timer()")) {
    // Out-of-range bounds saturate; min > max is refused by the library.
    lo_ns = SecondsToNanos(lo, &lo_ns) ? lo_ns : (lo < 0 ? -1 : INT64_MAX);
    hi_ns = SecondsToNanos(hi, &hi_ns) ? hi_ns : (hi < 0 ? -1 : INT64_MAX);
    if (spectator::Registry* r = Live(reg)) {
      handle = GetWith(id, [&](spectator::TagList tags) {
        return r->GetPercentileTimer(id.name, tags, std::chrono::nanoseconds(lo_ns),
                                     std::chrono::nanoseconds(hi_ns));
      });
    }
  }
  return NewMeter(&PctTimerType, self, handle);
}

std::int64_t ToInt64(double d) {
  if (d >= 9.2233720368547758e18) return INT64_MAX;
  if (d < -9.2233720368547758e18) return INT64_MIN;
  return static_cast<std::int64_t>(d);
}

PyObject* PctSummaryGetter(PyObject* self, PyObject* const* args, Py_ssize_t nargs,
                           PyObject* kwnames) {
  auto* reg = reinterpret_cast<RegistryObject*>(self);
  spectator::PercentileDistributionSummary handle;
  GetterArgs a;
  IdArgs id;
  double lo = 0, hi = 0;
  if (ParseGetter("pct_distribution_summary", args, nargs, kwnames, true, &a) &&
      ParseId(a.name, a.tags, &id) &&
      RangeBound(a.min, 0, &lo, "pct_distribution_summary()") &&
      RangeBound(a.max, 9.2233720368547758e18, &hi, "pct_distribution_summary()")) {
    // Exact for ints (2**63-1 does not survive a trip through double).
    std::int64_t lo_i = ToInt64(lo), hi_i = ToInt64(hi);
    if (a.min != nullptr && PyLong_Check(a.min)) {
      int overflow = 0;
      const long long v = PyLong_AsLongLongAndOverflow(a.min, &overflow);
      if (overflow == 0 && !(v == -1 && PyErr_Occurred())) lo_i = v;
      PyErr_Clear();
    }
    if (a.max == nullptr) hi_i = INT64_MAX;
    if (a.max != nullptr && PyLong_Check(a.max)) {
      int overflow = 0;
      const long long v = PyLong_AsLongLongAndOverflow(a.max, &overflow);
      if (overflow == 0 && !(v == -1 && PyErr_Occurred())) hi_i = v;
      PyErr_Clear();
    }
    if (spectator::Registry* r = Live(reg)) {
      handle = GetWith(id, [&](spectator::TagList tags) {
        return r->GetPercentileDistributionSummary(id.name, tags, lo_i, hi_i);
      });
    }
  }
  return NewMeter(&PctSummaryType, self, handle);
}

// ---------------------------------------------------------------------------
// Registry construction and the compatibility methods.

bool ToU64(PyObject* o, const char* what, const std::string& segment, std::uint64_t* out,
           std::uint64_t max) {
  if (!PyLong_Check(o) || PyBool_Check(o)) {
    PyErr_Format(PyExc_TypeError, "Registry(): %s must be an int, got %.100s", what,
                 Py_TYPE(o)->tp_name);
    return false;
  }
  const unsigned long long v = PyLong_AsUnsignedLongLong(o);
  if (PyErr_Occurred() || v > max) {
    PyErr_Clear();
    PyObject* text = PyObject_Repr(o);
    const char* t = text != nullptr ? PyUnicode_AsUTF8(text) : nullptr;
    RaiseOpenError(ClassOf(spectator::ErrorCode::kInvalidArgument), segment,
                   (std::string(what) + " " + (t != nullptr ? t : "?") + " is out of range")
                       .c_str());
    Py_XDECREF(text);
    return false;
  }
  *out = v;
  return true;
}

PyObject* RegistryNew(PyTypeObject* type, PyObject* args, PyObject* kwargs) {
  static const char* kw[] = {"segment", "max_meters", "value_words", "mode", "group", nullptr};
  PyObject *segment = Py_None, *max_meters = nullptr, *value_words = nullptr, *mode = nullptr,
           *group = Py_None;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|O$OOOO:Registry", const_cast<char**>(kw),
                                   &segment, &max_meters, &value_words, &mode, &group)) {
    return nullptr;
  }
  spectator::SegmentOptions options;
  options.logger = LibraryLog;
  if (segment == Py_None) {
    options.name = DefaultSegment();
  } else if (PyUnicode_Check(segment)) {
    Py_ssize_t len;
    const char* s = PyUnicode_AsUTF8AndSize(segment, &len);
    if (s == nullptr) return nullptr;
    options.name.assign(s, static_cast<std::size_t>(len));
  } else {
    PyErr_Format(PyExc_TypeError, "Registry(): segment must be a str or None, got %.100s",
                 Py_TYPE(segment)->tp_name);
    return nullptr;
  }
  std::uint64_t v;
  if (max_meters != nullptr) {
    if (!ToU64(max_meters, "max_meters", options.name, &v, UINT32_MAX)) return nullptr;
    options.max_meters = static_cast<std::uint32_t>(v);
  }
  if (value_words != nullptr) {
    if (!ToU64(value_words, "value_words", options.name, &v, UINT64_MAX)) return nullptr;
    options.value_words = v;
  }
  if (mode != nullptr) {
    if (!ToU64(mode, "mode", options.name, &v, 07777)) return nullptr;
    options.mode = static_cast<std::uint32_t>(v);
  }
  if (group != Py_None) {
    if (PyLong_Check(group) && !PyBool_Check(group)) {
      if (!ToU64(group, "group", options.name, &v, UINT32_MAX)) return nullptr;
      options.group = std::to_string(v);
    } else if (PyUnicode_Check(group)) {
      const char* g = PyUnicode_AsUTF8(group);
      if (g == nullptr) return nullptr;
      options.group = g;
    } else {
      PyErr_Format(PyExc_TypeError, "Registry(): group must be a str, an int or None, got %.100s",
                   Py_TYPE(group)->tp_name);
      return nullptr;
    }
  }
  spectator::Registry* r = Open(options);
  if (r == nullptr) return nullptr;
  auto* self = reinterpret_cast<RegistryObject*>(type->tp_alloc(type, 0));
  if (self == nullptr) {
    delete r;
    return nullptr;
  }
  self->registry = r;
  self->lazy = nullptr;
  self->state = RegistryState::kOpen;
  return reinterpret_cast<PyObject*>(self);
}

void RegistryDealloc(PyObject* obj) {
  auto* self = reinterpret_cast<RegistryObject*>(obj);
  delete self->registry;
  delete self->lazy;
  Py_TYPE(obj)->tp_free(obj);
}

PyObject* RegistryReturnSelf(PyObject* self, PyObject*) {
  Py_INCREF(self);
  return self;
}

PyObject* RegistryNoop(PyObject*, PyObject*) { Py_RETURN_NONE; }

PyObject* RegistryExit(PyObject*, PyObject* const*, Py_ssize_t) { Py_RETURN_FALSE; }

PyObject* RegistrySegment(PyObject* obj, void*) {
  auto* self = reinterpret_cast<RegistryObject*>(obj);
  const std::string& name =
      self->registry != nullptr ? self->registry->segment_name() : self->lazy->name;
  return PyUnicode_DecodeUTF8(name.data(), static_cast<Py_ssize_t>(name.size()), "replace");
}

PyObject* RegistryRepr(PyObject* obj) {
  auto* self = reinterpret_cast<RegistryObject*>(obj);
  const std::string& name =
      self->registry != nullptr ? self->registry->segment_name() : self->lazy->name;
  const char* state = self->state == RegistryState::kOpen
                          ? "open"
                          : (self->state == RegistryState::kLazy ? "not opened yet" : "no-op");
  return PyUnicode_FromFormat("<spectator_shm.Registry segment='%s' (%s)>", name.c_str(), state);
}

// _lazy_registry(): the object behind GlobalRegistry. Its segment (env
// SPECTATOR_SEGMENT, else "spectator", read at first use) is opened by the
// first getter; if that fails, it logs once and hands out no-op meters.
PyObject* LazyRegistry(PyObject*, PyObject*) {
  auto* self = reinterpret_cast<RegistryObject*>(RegistryType.tp_alloc(&RegistryType, 0));
  if (self == nullptr) return nullptr;
  self->registry = nullptr;
  self->lazy = nullptr;
  self->state = RegistryState::kLazy;
  try {
    self->lazy = new spectator::SegmentOptions();
  } catch (...) {
    Py_DECREF(self);
    return PyErr_NoMemory();
  }
  self->lazy->logger = LibraryLog;
  return reinterpret_cast<PyObject*>(self);
}

// ---------------------------------------------------------------------------
// Type objects.

// A METH_FASTCALL function in the PyCFunction slot of a PyMethodDef.
#define FASTCALL(...) reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(__VA_ARGS__))

PyMethodDef kCounterMethods[] = {
    {"increment", FASTCALL(CounterIncrement), METH_FASTCALL | METH_KEYWORDS,
     "increment(amount=1): adds amount; ignored unless it is a number > 0 and finite."},
    {nullptr, nullptr, 0, nullptr}};

PyMethodDef kTimerMethods[] = {
    {"record", FASTCALL(TimerRecord<TimerObject>), METH_FASTCALL | METH_KEYWORDS,
     "record(seconds): records one duration; negative, NaN or non-numbers are ignored."},
    {"stopwatch", FASTCALL(TimerStopwatch), METH_FASTCALL | METH_KEYWORDS,
     "stopwatch(): a context manager recording the duration of its block (monotonic clock)."},
    {nullptr, nullptr, 0, nullptr}};

PyMethodDef kPctTimerMethods[] = {
    {"record", FASTCALL(TimerRecord<PctTimerObject>), METH_FASTCALL | METH_KEYWORDS,
     "record(seconds): records one duration; negative, NaN or non-numbers are ignored."},
    {"stopwatch", FASTCALL(PctTimerStopwatch), METH_FASTCALL | METH_KEYWORDS,
     "stopwatch(): a context manager recording the duration of its block (monotonic clock)."},
    {nullptr, nullptr, 0, nullptr}};

PyMethodDef kSummaryMethods[] = {
    {"record", FASTCALL(SummaryRecord<SummaryObject>), METH_FASTCALL | METH_KEYWORDS,
     "record(amount): records one amount; negative, NaN, infinite or non-numbers are ignored."},
    {nullptr, nullptr, 0, nullptr}};

PyMethodDef kPctSummaryMethods[] = {
    {"record", FASTCALL(SummaryRecord<PctSummaryObject>), METH_FASTCALL | METH_KEYWORDS,
     "record(amount): records one amount; negative, NaN, infinite or non-numbers are ignored."},
    {nullptr, nullptr, 0, nullptr}};

PyMethodDef kGaugeMethods[] = {
    {"set", FASTCALL(SetValue<GaugeObject, false>), METH_FASTCALL | METH_KEYWORDS,
     "set(value): the current value; NaN clears the gauge."},
    {nullptr, nullptr, 0, nullptr}};

PyMethodDef kMaxGaugeMethods[] = {
    {"set", FASTCALL(SetValue<MaxGaugeObject, true>), METH_FASTCALL | METH_KEYWORDS,
     "set(value): publishes the largest value set during the step; NaN is ignored."},
    {nullptr, nullptr, 0, nullptr}};

PyMethodDef kMonotonicMethods[] = {
    {"set", FASTCALL(SetValue<MonotonicObject, true>), METH_FASTCALL | METH_KEYWORDS,
     "set(total): the current cumulative total; its increase per step is published."},
    {nullptr, nullptr, 0, nullptr}};

PyMethodDef kAgeGaugeMethods[] = {
    {"reset", FASTCALL(AgeGaugeReset), METH_FASTCALL | METH_KEYWORDS, "reset(): the event happened now."},
    {"set", FASTCALL(AgeGaugeSet), METH_FASTCALL | METH_KEYWORDS,
     "set(unix_seconds): the event happened at this time (seconds since the epoch)."},
    {nullptr, nullptr, 0, nullptr}};

PyMethodDef kStopwatchMethods[] = {
    {"__enter__", StopwatchEnter, METH_NOARGS, "Starts timing."},
    {"__exit__", FASTCALL(StopwatchExit), METH_FASTCALL, "Records the elapsed time."},
    {"duration", StopwatchDuration, METH_NOARGS, "Seconds since the stopwatch started."},
    {nullptr, nullptr, 0, nullptr}};

#define GETTER(pyname, Handle, Type, Method, doc)                                          \
  {                                                                                        \
    pyname,                                                                                \
        FASTCALL((SimpleGetter<spectator::Handle, &Type, &spectator::Registry::Method>)), \
        METH_FASTCALL | METH_KEYWORDS, doc                                                 \
  }

PyMethodDef kRegistryMethods[] = {
    GETTER("counter", Counter, CounterType, GetCounter, "counter(name, tags=None) -> Counter"),
    GETTER("timer", Timer, TimerType, GetTimer, "timer(name, tags=None) -> Timer"),
    GETTER("distribution_summary", DistributionSummary, SummaryType, GetDistributionSummary,
           "distribution_summary(name, tags=None) -> DistributionSummary"),
    GETTER("gauge", Gauge, GaugeType, GetGauge, "gauge(name, tags=None) -> Gauge"),
    GETTER("max_gauge", MaxGauge, MaxGaugeType, GetMaxGauge,
           "max_gauge(name, tags=None) -> MaxGauge"),
    GETTER("age_gauge", AgeGauge, AgeGaugeType, GetAgeGauge,
           "age_gauge(name, tags=None) -> AgeGauge"),
    GETTER("monotonic_counter", MonotonicCounter, MonotonicType, GetMonotonicCounter,
           "monotonic_counter(name, tags=None) -> MonotonicCounter"),
    {"pct_timer", FASTCALL(PctTimerGetter), METH_FASTCALL | METH_KEYWORDS,
     "pct_timer(name, tags=None, min=0.01, max=60.0) -> PercentileTimer (bounds in seconds)"},
    {"pct_distribution_summary", FASTCALL(PctSummaryGetter), METH_FASTCALL | METH_KEYWORDS,
     "pct_distribution_summary(name, tags=None, min=0, max=2**63-1) -> "
     "PercentileDistributionSummary"},
    {"start", RegistryReturnSelf, METH_NOARGS,
     "Compatibility no-op (nothing runs in the process); returns the registry, so that "
     "`with registry.start():` works."},
    {"stop", RegistryNoop, METH_NOARGS, "Compatibility no-op: the collector publishes."},
    {"__enter__", RegistryReturnSelf, METH_NOARGS, nullptr},
    {"__exit__", FASTCALL(RegistryExit), METH_FASTCALL, nullptr},
    {nullptr, nullptr, 0, nullptr}};

PyGetSetDef kRegistryGetSet[] = {
    {"segment", RegistrySegment, nullptr, "The segment name (/dev/shm/<segment>).", nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr}};

PyTypeObject MakeType(const char* name, Py_ssize_t size, destructor dealloc, PyMethodDef* methods,
                      const char* doc) {
  PyTypeObject t{};                // every slot empty, as in a C initializer
  Py_SET_REFCNT(&t, 1);            // what PyVarObject_HEAD_INIT sets: a static type
  t.tp_name = name;
  t.tp_basicsize = size;
  t.tp_dealloc = dealloc;
  t.tp_flags = Py_TPFLAGS_DEFAULT;
  t.tp_doc = doc;
  t.tp_methods = methods;
  return t;
}

#define METER_TYPE(Obj, Handle, pyname, methods, doc) \
  MakeType("spectator_shm." pyname, sizeof(Obj), MeterDealloc<spectator::Handle>, methods, doc)

PyTypeObject CounterType = METER_TYPE(CounterObject, Counter, "Counter", kCounterMethods,
                                      "The rate of something happening (statistic=count).");
PyTypeObject TimerType = METER_TYPE(TimerObject, Timer, "Timer", kTimerMethods,
                                    "How long something took: count, totalTime, "
                                    "totalOfSquares, max (seconds).");
PyTypeObject SummaryType = METER_TYPE(SummaryObject, DistributionSummary, "DistributionSummary",
                                      kSummaryMethods,
                                      "The distribution of amounts: count, totalAmount, "
                                      "totalOfSquares, max.");
PyTypeObject GaugeType = METER_TYPE(GaugeObject, Gauge, "Gauge", kGaugeMethods,
                                    "A sampled value; published for 15 minutes after the last "
                                    "set(), NaN clears it.");
PyTypeObject MaxGaugeType = METER_TYPE(MaxGaugeObject, MaxGauge, "MaxGauge", kMaxGaugeMethods,
                                       "The largest value set during each step.");
PyTypeObject AgeGaugeType = METER_TYPE(AgeGaugeObject, AgeGauge, "AgeGauge", kAgeGaugeMethods,
                                       "Seconds since an event (last success, say).");
PyTypeObject MonotonicType = METER_TYPE(MonotonicObject, MonotonicCounter, "MonotonicCounter",
                                        kMonotonicMethods,
                                        "Samples a cumulative total kept elsewhere; publishes "
                                        "its increase per step.");
PyTypeObject PctTimerType = METER_TYPE(PctTimerObject, PercentileTimer, "PercentileTimer",
                                       kPctTimerMethods,
                                       "A Timer that also keeps percentile buckets.");
PyTypeObject PctSummaryType = METER_TYPE(PctSummaryObject, PercentileDistributionSummary,
                                         "PercentileDistributionSummary", kPctSummaryMethods,
                                         "A DistributionSummary that also keeps percentile "
                                         "buckets.");
PyTypeObject StopwatchType =
    MakeType("spectator_shm.Stopwatch", sizeof(StopwatchObject), StopwatchDealloc,
             kStopwatchMethods, "Times a `with` block and records it in its timer.");
PyTypeObject RegistryType =
    MakeType("spectator_shm.Registry", sizeof(RegistryObject), RegistryDealloc, kRegistryMethods,
             "Registry(segment=None, *, max_meters=8192, value_words=1<<20, mode=0o600, "
             "group=None)\n\nThe meters of one shared-memory segment, /dev/shm/<segment>, "
             "created or attached. segment=None: env SPECTATOR_SEGMENT, else 'spectator'. "
             "Raises a SpectatorError subclass when the segment cannot be opened.");

PyMethodDef kModuleMethods[] = {
    {"_lazy_registry", LazyRegistry, METH_NOARGS,
     "A Registry that opens its segment at first use (the GlobalRegistry)."},
    {nullptr, nullptr, 0, nullptr}};

PyModuleDef kModule = {PyModuleDef_HEAD_INIT,
                       "spectator_shm._spectator_shm",
                       "Native core of spectator_shm (see the package docstring).",
                       -1,
                       kModuleMethods,
                       nullptr,
                       nullptr,
                       nullptr,
                       nullptr};

bool AddType(PyObject* module, PyTypeObject* type, const char* name) {
  if (PyType_Ready(type) < 0) return false;
  Py_INCREF(type);
  if (PyModule_AddObject(module, name, reinterpret_cast<PyObject*>(type)) < 0) {
    Py_DECREF(type);
    return false;
  }
  return true;
}

}  // namespace

PyMODINIT_FUNC PyInit__spectator_shm() {
  RegistryType.tp_new = RegistryNew;
  RegistryType.tp_getset = kRegistryGetSet;
  RegistryType.tp_repr = RegistryRepr;

  PyObject* module = PyModule_Create(&kModule);
  if (module == nullptr) return nullptr;

  PyObject* logging = PyImport_ImportModule("logging");
  if (logging == nullptr) goto fail;
  g_logger = PyObject_CallMethod(logging, "getLogger", "s", "spectator_shm");
  Py_DECREF(logging);
  if (g_logger == nullptr) goto fail;

  if (!AddType(module, &RegistryType, "Registry") || !AddType(module, &CounterType, "Counter") ||
      !AddType(module, &TimerType, "Timer") ||
      !AddType(module, &SummaryType, "DistributionSummary") ||
      !AddType(module, &GaugeType, "Gauge") || !AddType(module, &MaxGaugeType, "MaxGauge") ||
      !AddType(module, &AgeGaugeType, "AgeGauge") ||
      !AddType(module, &MonotonicType, "MonotonicCounter") ||
      !AddType(module, &PctTimerType, "PercentileTimer") ||
      !AddType(module, &PctSummaryType, "PercentileDistributionSummary") ||
      !AddType(module, &StopwatchType, "Stopwatch")) {
    goto fail;
  }

  g_spectator_error = PyErr_NewExceptionWithDoc(
      "spectator_shm.SpectatorError",
      "A segment could not be opened. .segment names it; .code says why.", nullptr, nullptr);
  if (g_spectator_error == nullptr) goto fail;
  Py_INCREF(g_spectator_error);
  if (PyModule_AddObject(module, "SpectatorError", g_spectator_error) < 0) goto fail;
  for (ErrorClass& c : g_error_classes) {
    PyObject* bases = c.value_error ? PyTuple_Pack(2, g_spectator_error, PyExc_ValueError)
                                    : PyTuple_Pack(1, g_spectator_error);
    if (bases == nullptr) goto fail;
    const std::string qualified = std::string("spectator_shm.") + c.name;
    c.type = PyErr_NewExceptionWithDoc(qualified.c_str(), c.doc, bases, nullptr);
    Py_DECREF(bases);
    if (c.type == nullptr) goto fail;
    Py_INCREF(c.type);
    if (PyModule_AddObject(module, c.name, c.type) < 0) goto fail;
  }
  if (PyModule_AddStringConstant(module, "__version__", spectator::kVersion) < 0) goto fail;
  return module;

fail:
  Py_DECREF(module);
  return nullptr;
}
