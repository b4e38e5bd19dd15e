#pragma once

// A fake systemd notification socket for tests: an AF_UNIX datagram socket
// bound to a unique abstract name (or a path), whose datagrams the test reads
// with a deadline.

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>

namespace spectator::testing {

class NotifyListener {
 public:
  /// Abstract (NOTIFY_SOCKET=@name) unless `path` is true (a file in /tmp).
  explicit NotifyListener(bool path = false) {
    static std::atomic<int> counter{0};
    const std::string unique =
        "spectator-test-notify-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) std::abort();
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    socklen_t len = 0;
    if (path) {
      path_ = "/tmp/" + unique;
      ::unlink(path_.c_str());
      std::memcpy(addr.sun_path, path_.c_str(), path_.size() + 1);
      len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path_.size() + 1);
      address_ = path_;
    } else {
      std::memcpy(addr.sun_path + 1, unique.data(), unique.size());
      len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + unique.size());
      address_ = "@" + unique;
    }
    if (::bind(fd_, reinterpret_cast<const sockaddr*>(&addr), len) != 0) std::abort();
  }
  ~NotifyListener() {
    ::close(fd_);
    if (!path_.empty()) ::unlink(path_.c_str());
  }
  NotifyListener(const NotifyListener&) = delete;
  NotifyListener& operator=(const NotifyListener&) = delete;

  /// The value for NOTIFY_SOCKET.
  const std::string& address() const { return address_; }

  /// The next datagram, or nothing when none arrives within `timeout`.
  std::optional<std::string> Receive(std::chrono::milliseconds timeout) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) return std::nullopt;
    char buf[4096];
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n < 0) return std::nullopt;
    return std::string(buf, static_cast<std::size_t>(n));
  }

 private:
  int fd_ = -1;
  std::string path_;
  std::string address_;
};

}  // namespace spectator::testing
