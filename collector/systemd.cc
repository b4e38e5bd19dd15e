#include "systemd.h"

#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstddef>
#include <cstring>
#include <utility>

#include "log.h"

namespace spectator::collector {

SystemdNotifier::~SystemdNotifier() {
  if (fd_ >= 0) ::close(fd_);
}

SystemdNotifier::SystemdNotifier(SystemdNotifier&& other) noexcept { *this = std::move(other); }

SystemdNotifier& SystemdNotifier::operator=(SystemdNotifier&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    addr_ = other.addr_;
    addr_len_ = other.addr_len_;
    watchdog_ = other.watchdog_;
    send_failure_logged_ = other.send_failure_logged_;
  }
  return *this;
}

SystemdNotifier SystemdNotifier::FromEnvironment(const Getenv& getenv, pid_t pid) {
  SystemdNotifier n;
  const char* socket_env = getenv("NOTIFY_SOCKET");
  if (socket_env == nullptr || *socket_env == '\0') return n;
  const std::string_view name = socket_env;

  // "/path" or "@abstract" (the '@' becomes the leading NUL); no NUL
  // terminator in the address length, as systemd does it.
  n.addr_.sun_family = AF_UNIX;
  if ((name[0] != '/' && name[0] != '@') || name.size() > sizeof(n.addr_.sun_path) ||
      name.size() < 2) {
    Log(LogLevel::kWarning, "NOTIFY_SOCKET '" + std::string(name) +
                                "' is not a unix socket path or @abstract name; not notifying "
                                "systemd");
    return n;
  }
  std::memcpy(n.addr_.sun_path, name.data(), name.size());
  if (name[0] == '@') n.addr_.sun_path[0] = '\0';
  n.addr_len_ = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name.size());

  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    Log(LogLevel::kWarning, std::string("cannot create the systemd notification socket: ") +
                                std::strerror(errno));
    return n;
  }
  n.fd_ = fd;

  // The watchdog applies to us unless WATCHDOG_PID names another process
  // (a wrapper that exec'd us keeps its pid, so it is ours then).
  const char* usec = getenv("WATCHDOG_USEC");
  if (usec != nullptr && *usec != '\0') {
    const std::string_view text = usec;
    std::uint64_t v = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    const char* pid_env = getenv("WATCHDOG_PID");
    long long watchdog_pid = 0;
    bool ours = true;
    if (pid_env != nullptr && *pid_env != '\0') {
      const std::string_view p = pid_env;
      const auto [pend, pec] = std::from_chars(p.data(), p.data() + p.size(), watchdog_pid);
      ours = pec == std::errc() && pend == p.data() + p.size() && watchdog_pid == pid;
    }
    if (ec != std::errc() || end != text.data() + text.size() || v == 0 ||
        v > std::uint64_t{1} << 40) {
      Log(LogLevel::kWarning, "WATCHDOG_USEC '" + std::string(text) +
                                  "' is not a positive number of microseconds; no watchdog");
    } else if (ours) {
      n.watchdog_ = std::chrono::microseconds(static_cast<std::int64_t>(v));
    }
  }
  return n;
}

bool SystemdNotifier::Notify(std::string_view state) {
  if (fd_ < 0) return false;
  const ssize_t sent =
      ::sendto(fd_, state.data(), state.size(), MSG_NOSIGNAL,
               reinterpret_cast<const sockaddr*>(&addr_), addr_len_);
  if (sent == static_cast<ssize_t>(state.size())) return true;
  if (!send_failure_logged_) {
    send_failure_logged_ = true;
    Log(LogLevel::kWarning, "cannot notify systemd (" + std::string(state) +
                                "): " + (sent < 0 ? std::strerror(errno) : "short send"));
  }
  return false;
}

}  // namespace spectator::collector
