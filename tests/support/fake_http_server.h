#pragma once

// An in-process HTTP/1.1 server on 127.0.0.1 for tests of the publish path:
// it records every request and answers with whatever the test's handler says,
// including never answering (a stall) or resetting the connection.

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace spectator::testing {

/// One request as the server received it.
struct HttpRequest {
  std::string method;
  std::string target;
  std::vector<std::pair<std::string, std::string>> headers;  // as received
  std::string body;                                          // raw bytes

  /// The value of the first header called `name` (case-insensitive), "" if absent.
  std::string Header(std::string_view name) const;
  /// The body, gunzipped when Content-Encoding is gzip.
  /// \throw std::runtime_error when the gzip data is corrupt.
  std::string DecodedBody() const;
};

/// What the server does with a request.
struct HttpReply {
  enum class Action {
    kRespond,  // send status + body
    kStall,    // never answer; the connection stays open until the server stops
    kReset,    // close the connection with SO_LINGER 0 (a TCP RST), no response
  };
  Action action = Action::kRespond;
  int status = 200;
  std::string body;
  /// Extra response headers (e.g. Content-Encoding: gzip with a gzip'd body).
  /// Content-Length is always added by the server.
  std::vector<std::pair<std::string, std::string>> headers;
};

/// A plain answer: `status` with `body`.
inline HttpReply Reply(int status, std::string body = "") {
  HttpReply r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

/// Serves HTTP/1.1 with keep-alive and Content-Length bodies on an ephemeral
/// loopback port, one thread per connection, so a stalled connection never
/// blocks another. Every member function is safe to call from any thread of
/// the process that created the server. Process safety: the server is only
/// for the test process; a fork()ed child must not call it (its threads do
/// not exist there), and its sockets are close-on-exec so an exec'd collector
/// does not inherit them.
class FakeHttpServer {
 public:
  using Handler = std::function<HttpReply(const HttpRequest&)>;

  /// Binds 127.0.0.1:0 and starts serving. An empty handler answers 200 "{}".
  /// \throw std::system_error when the socket cannot be set up.
  explicit FakeHttpServer(Handler handler = {});
  /// Stops: closes the listener, shuts down every connection (waking stalled
  /// ones) and joins all threads.
  ~FakeHttpServer();
  FakeHttpServer(const FakeHttpServer&) = delete;
  FakeHttpServer& operator=(const FakeHttpServer&) = delete;

  /// Replaces the handler for requests that arrive from now on.
  void SetHandler(Handler handler);

  std::uint16_t port() const { return port_; }
  /// "http://127.0.0.1:<port>/api/v1/publish"
  std::string url() const;

  /// Every request received so far, in arrival order, recorded before its
  /// handler runs (so a stalled or reset request is included).
  std::vector<HttpRequest> requests() const;
  std::size_t request_count() const;
  /// Connections accepted so far (keep-alive tests expect one).
  std::size_t connection_count() const;
  /// Waits until at least `n` requests have arrived; false on timeout.
  bool WaitForRequests(std::size_t n, std::chrono::milliseconds timeout) const;

 private:
  void AcceptLoop();
  void Serve(int fd);
  /// Reads the next request from `fd` into `req`; `buffer` keeps bytes of a
  /// following pipelined request. False when the connection is done.
  bool ReadRequest(int fd, std::string* buffer, HttpRequest* req);
  HttpReply Handle(const HttpRequest& req);
  /// Blocks until the server stops.
  void WaitForStop();

  int listen_fd_ = -1;
  int wake_pipe_[2] = {-1, -1};  // written once by the destructor to stop AcceptLoop
  std::uint16_t port_ = 0;
  std::thread accept_thread_;

  mutable std::mutex mu_;
  mutable std::condition_variable cv_;  // signals a new request or stopping_
  bool stopping_ = false;               // guarded by mu_
  Handler handler_;                     // guarded by mu_
  std::vector<HttpRequest> requests_;   // guarded by mu_
  std::vector<int> open_fds_;           // guarded by mu_; connections still open
  // One thread per connection; a thread that has finished Serve() lists its
  // id in finished_ and is joined at the next accept (or by the destructor),
  // so long tests with many reconnections do not accumulate dead threads.
  std::vector<std::thread> connection_threads_;  // guarded by mu_
  std::vector<std::thread::id> finished_;        // guarded by mu_
  std::size_t connections_accepted_ = 0;         // guarded by mu_
};

}  // namespace spectator::testing
