// The request parser and response builder of examples/prefork.
#include "http_request.h"

#include <gtest/gtest.h>

#include <string>

#include "http_response.h"

namespace prefork {
namespace {

constexpr std::size_t kLimit = 8192;

ParsedRequest Parse(std::string_view input) { return ParseRequestHead(input, kLimit); }

TEST(HttpRequest, ParsesAGetRequest) {
  const std::string input = "GET /path?q=1 HTTP/1.1\r\nHost: x\r\n\r\n";
  const ParsedRequest r = Parse(input);
  ASSERT_EQ(r.status, ParseStatus::kComplete);
  EXPECT_EQ(r.method, Method::kGet);
  EXPECT_EQ(r.method_token, "GET");
  EXPECT_EQ(r.target, "/path?q=1");
  EXPECT_EQ(r.minor_version, 1);
  EXPECT_TRUE(r.keep_alive);
  EXPECT_EQ(r.content_length, 0u);
  EXPECT_EQ(r.head_length, input.size());
}

TEST(HttpRequest, IsIncompleteUntilTheEmptyLine) {
  const std::string input = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  for (std::size_t n = 0; n < input.size(); ++n) {
    EXPECT_EQ(Parse(input.substr(0, n)).status, ParseStatus::kIncomplete) << n;
  }
  EXPECT_EQ(Parse(input).status, ParseStatus::kComplete);
}

TEST(HttpRequest, HeadLengthStopsBeforeAPipelinedRequest) {
  const std::string first = "GET /1 HTTP/1.1\r\n\r\n";
  const std::string input = first + "GET /2 HTTP/1.1\r\n\r\n";
  const ParsedRequest r = Parse(input);  // views into `input`
  ASSERT_EQ(r.status, ParseStatus::kComplete);
  EXPECT_EQ(r.target, "/1");
  EXPECT_EQ(r.head_length, first.size());
}

TEST(HttpRequest, AcceptsBareLineFeedsAndLeadingEmptyLines) {
  const ParsedRequest r = Parse("\r\n\nPUT /x HTTP/1.1\nHost: x\n\n");
  ASSERT_EQ(r.status, ParseStatus::kComplete);
  EXPECT_EQ(r.method, Method::kPut);
}

TEST(HttpRequest, Http10ClosesUnlessAskedToKeepAlive) {
  EXPECT_FALSE(Parse("GET / HTTP/1.0\r\n\r\n").keep_alive);
  const ParsedRequest r = Parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
  EXPECT_EQ(r.minor_version, 0);
  EXPECT_TRUE(r.keep_alive);
}

TEST(HttpRequest, ConnectionCloseIsFoundInATokenList) {
  EXPECT_FALSE(Parse("GET / HTTP/1.1\r\nConnection: keep-alive , CLOSE\r\n\r\n").keep_alive);
  EXPECT_FALSE(Parse("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n").keep_alive);
  EXPECT_TRUE(Parse("GET / HTTP/1.1\r\nConnection: upgrade\r\n\r\n").keep_alive);
}

TEST(HttpRequest, ReadsContentLengthAndExpect) {
  const ParsedRequest r =
      Parse("POST / HTTP/1.1\r\ncontent-length: 42\r\nExpect: 100-Continue\r\n\r\n");
  ASSERT_EQ(r.status, ParseStatus::kComplete);
  EXPECT_EQ(r.method, Method::kPost);
  EXPECT_EQ(r.content_length, 42u);
  EXPECT_TRUE(r.expect_continue);
  EXPECT_EQ(Parse("POST / HTTP/1.1\r\nContent-Length: 7\r\nContent-Length: 7\r\n\r\n").status,
            ParseStatus::kComplete);
}

TEST(HttpRequest, RefusesBadOrConflictingContentLength) {
  for (const char* value : {"", "-1", "1x", "0x10", "1 2", "1234567890123456789"}) {
    EXPECT_EQ(Parse(std::string("POST / HTTP/1.1\r\nContent-Length: ") + value + "\r\n\r\n").status,
              ParseStatus::kBadRequest)
        << value;
  }
  EXPECT_EQ(Parse("POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n").status,
            ParseStatus::kBadRequest);
}

TEST(HttpRequest, TransferEncodingIsNotImplemented) {
  const ParsedRequest r = Parse("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
  EXPECT_EQ(r.status, ParseStatus::kNotImplemented);
  EXPECT_EQ(r.method, Method::kPost);
}

TEST(HttpRequest, RefusesMalformedRequestLines) {
  for (const char* line : {"GET", "GET /", "GET  / HTTP/1.1", "GET / HTTP/1.1 ", "GET / http/1.1",
                           "GET / HTTP/1", "GET / HTTP/1.10", "G(T / HTTP/1.1", " GET / HTTP/1.1",
                           "GET /a\x01 HTTP/1.1", "GET /\xc3\xa9 HTTP/1.1", "GET /\r HTTP/1.1"}) {
    EXPECT_EQ(Parse(std::string(line) + "\r\n\r\n").status, ParseStatus::kBadRequest) << line;
  }
}

TEST(HttpRequest, RefusesABadRequestLineBeforeTheHeadEnds) {
  const ParsedRequest r = Parse("garbage\r\n");
  EXPECT_EQ(r.status, ParseStatus::kBadRequest);
  EXPECT_EQ(r.method, Method::kUnknown);
}

TEST(HttpRequest, OtherMajorVersionsAreNotSupported) {
  EXPECT_EQ(Parse("GET / HTTP/2.0\r\n\r\n").status, ParseStatus::kBadVersion);
  EXPECT_EQ(Parse("GET / HTTP/0.9\r\n\r\n").status, ParseStatus::kBadVersion);
}

TEST(HttpRequest, RefusesMalformedHeaders) {
  for (const char* header : {"Host : x", "Host", ": x", " folded: x", "\tfolded", "Bad Name: x",
                             "X: a\x01z", "X: a\x7fz"}) {
    const ParsedRequest r = Parse(std::string("GET / HTTP/1.1\r\n") + header + "\r\n\r\n");
    EXPECT_EQ(r.status, ParseStatus::kBadRequest) << header;
    EXPECT_EQ(r.method, Method::kGet) << "the method is known once the request line is read";
  }
}

TEST(HttpRequest, HeadsOverTheLimitAreTooLarge) {
  const std::string big_header = "X: " + std::string(kLimit, 'a') + "\r\n";
  EXPECT_EQ(Parse("GET / HTTP/1.1\r\n" + big_header + "\r\n").status,
            ParseStatus::kHeadersTooLarge);
  // No end of line at all within the limit: too large as soon as the limit is reached.
  const std::string endless = "GET / HTTP/1.1\r\nX: " + std::string(kLimit, 'a');
  EXPECT_EQ(Parse(endless).status, ParseStatus::kHeadersTooLarge);
  EXPECT_EQ(Parse(endless.substr(0, kLimit - 1)).status, ParseStatus::kIncomplete);
  // Exactly at the limit is fine.
  const std::string head = "GET / HTTP/1.1\r\n\r\n";
  EXPECT_EQ(ParseRequestHead(head, head.size()).status, ParseStatus::kComplete);
  EXPECT_EQ(ParseRequestHead(head, head.size() - 1).status, ParseStatus::kHeadersTooLarge);
}

TEST(HttpRequest, UnknownMethodsShareOneTagValue) {
  const ParsedRequest r = Parse("PROPFIND / HTTP/1.1\r\n\r\n");
  ASSERT_EQ(r.status, ParseStatus::kComplete);
  EXPECT_EQ(r.method, Method::kOther);
  EXPECT_EQ(r.method_token, "PROPFIND");
  EXPECT_EQ(MethodName(r.method), "OTHER");
  EXPECT_EQ(Parse("get / HTTP/1.1\r\n\r\n").method, Method::kOther) << "methods are case-sensitive";
  EXPECT_EQ(MethodName(Method::kDelete), "DELETE");
}

TEST(HttpResponse, OkKeepAlive) {
  char out[kMaxResponseBytes];
  const std::size_t n = BuildResponse(Status::kOk, true, true, out);
  EXPECT_EQ(std::string(out, n),
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n"
            "Connection: keep-alive\r\n\r\nok\n");
}

TEST(HttpResponse, HeadHasTheHeadersButNoBody) {
  char out[kMaxResponseBytes];
  const std::size_t n = BuildResponse(Status::kOk, false, false, out);
  EXPECT_EQ(std::string(out, n),
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n"
            "Connection: close\r\n\r\n");
}

TEST(HttpResponse, ErrorsFitAndCarryTheirCode) {
  for (Status s : {Status::kBadRequest, Status::kHeadersTooLarge, Status::kNotImplemented,
                   Status::kVersionNotSupported}) {
    char out[kMaxResponseBytes];
    const std::string text(out, BuildResponse(s, false, true, out));
    EXPECT_EQ(text.substr(0, 13), "HTTP/1.1 " + std::string(StatusTagValue(s)) + " ");
    EXPECT_EQ(std::to_string(StatusCode(s)), StatusTagValue(s));
    EXPECT_NE(text.find("Connection: close\r\n\r\n"), std::string::npos);
  }
}

}  // namespace
}  // namespace prefork
