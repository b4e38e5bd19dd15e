#pragma once

// A temporary directory for a test's files (a server's config and data, a
// file handed to a tool), and a write that a reader watching the file never
// sees half of. Header-only; throws instead of asserting, so it also works in
// helpers and constructors.

#include <stdlib.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <system_error>

namespace spectator::testing {

/// A fresh directory `<prefix>-XXXXXX` under $TMPDIR (or /tmp), removed with
/// its contents on destruction.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "spectator-test") {
    const char* base = std::getenv("TMPDIR");
    std::string path =
        std::string(base != nullptr && base[0] != '\0' ? base : "/tmp") + "/" + prefix + "-XXXXXX";
    if (::mkdtemp(path.data()) == nullptr) {
      throw std::system_error(errno, std::generic_category(), "mkdtemp " + path);
    }
    path_ = path;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

/// Writes `content` to `path` through a rename, so that a reader watching the
/// file (Prometheus' file_sd) never sees half of it.
inline void WriteFileAtomically(const std::string& path, const std::string& content) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << content;
    if (!out.flush()) throw std::runtime_error("cannot write " + tmp);
  }
  std::filesystem::rename(tmp, path);
}

}  // namespace spectator::testing
