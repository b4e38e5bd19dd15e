#include "support/fake_atlas.h"

#include <exception>
#include <utility>

namespace spectator::testing {

Answered Atlas::Request::kind() const {
  if (action != HttpReply::Action::kRespond) return Answered::kRefused;
  if (status == 200 || status == 202) return Answered::kAccepted;
  if (status >= 400 && status < 500 && status != 429) return Answered::kRejected;
  return Answered::kRefused;
}

double Atlas::Request::Sum(std::string_view name, std::string_view statistic,
                           const std::map<std::string, std::string>& tags) const {
  return testing::Sum(sums, name, statistic, tags);
}

Atlas::Atlas() {
  server_.SetHandler([this](const HttpRequest& req) { return Handle(req); });
}

void Atlas::Answer(HttpReply reply) {
  std::lock_guard<std::mutex> lock(mu_);
  answer_ = std::move(reply);
}

void Atlas::Answer(int status, std::string body) {
  HttpReply r;
  r.status = status;
  r.body = std::move(body);
  Answer(std::move(r));
}

void Atlas::Answer(HttpReply::Action action) {
  HttpReply r;
  r.action = action;
  Answer(std::move(r));
}

void Atlas::Stall(bool stall) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stalled_before_ = CountLocked(IsStalled);
  }
  Answer(stall ? HttpReply::Action::kStall : HttpReply::Action::kRespond);
}

bool Atlas::WaitForStalledRequest(std::chrono::milliseconds timeout) {
  std::size_t before;
  {
    std::lock_guard<std::mutex> lock(mu_);
    before = stalled_before_;
  }
  return WaitFor(IsStalled, before + 1, timeout);
}

bool Atlas::WaitForAnswered(Answered kind, std::size_t n, std::chrono::milliseconds timeout) {
  return WaitFor([kind](const Request& r) { return Matches(r, kind); }, n, timeout);
}

bool Atlas::WaitForStatus(int status, std::size_t n, std::chrono::milliseconds timeout) {
  return WaitFor(
      [status](const Request& r) {
        return r.action == HttpReply::Action::kRespond && r.status == status;
      },
      n, timeout);
}

std::size_t Atlas::Count(Answered kind) {
  std::lock_guard<std::mutex> lock(mu_);
  return CountLocked([kind](const Request& r) { return Matches(r, kind); });
}

bool Atlas::WaitUntilHandled(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const std::size_t received = server_.request_count();
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (cv_.wait_until(lock, deadline, [&] { return handled_ >= received; }) &&
          server_.request_count() == received) {
        return true;
      }
    }
    if (std::chrono::steady_clock::now() >= deadline) return false;
  }
}

double Atlas::Sum(Answered kind, std::string_view name, std::string_view statistic,
                  const std::map<std::string, std::string>& tags) {
  std::lock_guard<std::mutex> lock(mu_);
  double sum = 0;
  for (const Request& r : requests_) {
    if (Matches(r, kind)) sum += r.Sum(name, statistic, tags);
  }
  return sum;
}

std::vector<Atlas::Request> Atlas::Requests() {
  std::lock_guard<std::mutex> lock(mu_);
  return requests_;
}

std::vector<std::string> Atlas::DecodeErrors() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> out;
  for (const Request& r : requests_) {
    if (!r.error.empty()) out.push_back(r.error);
  }
  return out;
}

HttpReply Atlas::Handle(const HttpRequest& req) {
  HttpReply reply;
  {
    std::lock_guard<std::mutex> lock(mu_);
    reply = answer_;
  }
  Request r;
  r.action = reply.action;
  r.status = reply.action == HttpReply::Action::kRespond ? reply.status : 0;
  try {
    const std::vector<PublishedMeasurement> ms = DecodePayload(req.DecodedBody());
    r.measurements = ms.size();
    std::map<std::pair<std::string, std::map<std::string, std::string>>, double> merged;
    for (PublishedMeasurement m : ms) {
      const auto rnd = m.tags.find("rnd");
      if (rnd != m.tags.end()) r.round = rnd->second;
      m.tags.erase("rnd");
      m.tags.erase("i");
      m.tags.erase("percentile");
      merged[{m.name, m.tags}] += m.value;
    }
    for (auto& [key, value] : merged) {
      PublishedMeasurement m;
      m.name = key.first;
      m.tags = key.second;
      m.value = value;
      r.sums.push_back(std::move(m));
    }
  } catch (const std::exception& e) {
    r.error = e.what();
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    requests_.push_back(std::move(r));
    ++handled_;
  }
  cv_.notify_all();
  return reply;
}

}  // namespace spectator::testing
