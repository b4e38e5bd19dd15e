#include "support/prometheus_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

#include "support/http_get.h"

namespace spectator::testing {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using Json = PrometheusServer::Json;

/// A port that was free on 127.0.0.1 a moment ago (bound to port 0, then
/// closed): for Prometheus, which cannot pick its own. Someone else can take
/// it before Prometheus binds it; PrometheusServer retries then.
std::uint16_t FreeLoopbackPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    const int e = errno;
    ::close(fd);
    throw std::system_error(e, std::generic_category(), "bind 127.0.0.1:0");
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

}  // namespace

PrometheusServer::PrometheusServer() {
  targets_ = dir_.path() + "/targets.json";
  WriteFileAtomically(targets_, "[]\n");
  WriteFileAtomically(dir_.path() + "/prometheus.yml",
                      "global:\n"
                      "  scrape_interval: 1s\n"
                      "  scrape_timeout: 1s\n"
                      "  evaluation_interval: 1s\n"
                      "scrape_configs:\n"
                      "  - job_name: spectator\n"
                      "    file_sd_configs:\n"
                      "      - files: ['" +
                          targets_ +
                          "']\n"
                          "        refresh_interval: 1s\n");
  // The port is chosen before Prometheus binds it: another process can
  // take it in between, so a start that fails on the address is retried.
  for (int attempt = 0; attempt < 5; ++attempt) {
    port_ = FreeLoopbackPort();
    process_ = std::make_unique<Subprocess>(DiesWithTheTest(
        {kPrometheusPath, "--config.file=" + dir_.path() + "/prometheus.yml",
         "--storage.tsdb.path=" + dir_.path() + "/data",
         "--web.listen-address=127.0.0.1:" + std::to_string(port_), "--log.level=info"}));
    if (WaitReady()) return;
    if (process_->Wait(milliseconds(1)) < 0 ||
        process_->err().find("address already in use") == std::string::npos) {
      return;  // not a bind race: ready() is false, log() says why
    }
  }
}

PrometheusServer::~PrometheusServer() {
  if (process_ != nullptr && process_->Wait(milliseconds(1)) < 0) {
    process_->Signal(SIGTERM);
    // The Subprocess's destructor SIGKILLs if still running.
    process_->Wait(std::chrono::seconds(20));
  }
}

void PrometheusServer::SetTarget(std::uint16_t port) {
  WriteFileAtomically(targets_, "[{\"targets\": [\"127.0.0.1:" + std::to_string(port) +
                                    "\"], \"labels\": {\"instance\": \"spectator-collector\"}}]\n");
}

Json PrometheusServer::ActiveTargets() {
  const HttpResponse r = HttpGet(url() + "/api/v1/targets?state=active");
  if (r.status != 200) return Json::array();
  const Json j = Json::parse(r.body, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("data") || !j["data"].contains("activeTargets")) {
    return Json::array();
  }
  return j["data"]["activeTargets"];
}

bool PrometheusServer::WaitForTarget(std::uint16_t port, std::string* why) {
  const std::string want = "http://127.0.0.1:" + std::to_string(port) + "/metrics";
  const auto deadline = Clock::now() + kPrometheusDeadline;
  Json targets;
  while (Clock::now() < deadline) {
    targets = ActiveTargets();
    if (targets.size() == 1 && targets[0].value("scrapeUrl", "") == want &&
        targets[0].value("health", "") == "up") {
      return true;
    }
    Pump();
  }
  *why = "target " + want + " not up within the deadline; active targets: " + targets.dump();
  return false;
}

bool PrometheusServer::WaitForScrapes(int n) {
  auto last = [this] {
    const Json t = ActiveTargets();
    return t.size() == 1 ? t[0].value("lastScrape", "") : std::string();
  };
  std::string seen = last();
  const auto deadline = Clock::now() + kPrometheusDeadline;
  while (n > 0 && Clock::now() < deadline) {
    Pump();
    const std::string now = last();
    if (!now.empty() && now != seen) {
      seen = now;
      --n;
    }
  }
  return n == 0;
}

std::optional<Json> PrometheusServer::QueryVector(const std::string& expr, std::string* why) {
  const HttpResponse r = HttpGet(url() + "/api/v1/query?query=" + UrlEncode(expr));
  if (r.status != 200) {
    *why = "query '" + expr + "': HTTP " + std::to_string(r.status) + " " + r.error + " " + r.body;
    return std::nullopt;
  }
  const Json j = Json::parse(r.body, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || j.value("status", "") != "success" || !j.contains("data") ||
      j["data"].value("resultType", "") != "vector") {
    *why = "query '" + expr + "': unexpected answer " + r.body;
    return std::nullopt;
  }
  return j["data"]["result"];
}

std::optional<double> PrometheusServer::Query(const std::string& expr, std::string* why) {
  const std::optional<Json> v = QueryVector(expr, why);
  if (!v.has_value()) return std::nullopt;
  if (v->size() != 1) {
    *why = "query '" + expr + "': " + std::to_string(v->size()) + " series: " + v->dump();
    return std::nullopt;
  }
  return std::stod((*v)[0]["value"][1].get<std::string>());
}

std::optional<double> PrometheusServer::WaitForValue(const std::string& expr, double want,
                                                     std::string* why) {
  const auto deadline = Clock::now() + kPrometheusDeadline;
  std::optional<double> v;
  while (Clock::now() < deadline) {
    why->clear();
    v = Query(expr, why);
    if (v.has_value() && *v >= want) break;
    Pump(milliseconds(50));
  }
  if (!v.has_value() || *v != want) {
    *why = "'" + expr + "' = " + (v.has_value() ? std::to_string(*v) : "(none)") + ", want " +
           std::to_string(want) + ". " + *why;
  }
  return v;
}

bool PrometheusServer::WaitReady() {
  const auto deadline = Clock::now() + kPrometheusDeadline;
  while (Clock::now() < deadline) {
    if (process_->Wait(milliseconds(20)) >= 0) return false;
    if (HttpGet(url() + "/-/ready").status == 200) return ready_ = true;
  }
  return false;
}

}  // namespace spectator::testing
