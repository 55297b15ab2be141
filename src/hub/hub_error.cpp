#include "hub/hub_error.h"

#include <algorithm>
#include <cctype>

#include "common/status.h"

namespace llmserve::hub {
namespace {

constexpr const char* kTokenHint =
    "pass a token with --token-file FILE or the HF_TOKEN environment variable";

// The hub's own explanation, one printable line of at most 300 characters.
std::string hub_message(const FetchResult& r) {
  std::string m = r.headers.get("X-Error-Message").value_or("");
  if (m.empty() && !r.error_body.empty() && r.error_body.front() == '{') {
    auto pos = r.error_body.find("\"error\"");
    if (pos != std::string::npos) m = r.error_body.substr(pos, 300);
  }
  for (char& c : m) {
    if (!std::isprint(static_cast<unsigned char>(c))) c = ' ';
  }
  if (m.size() > 300) m.resize(300);
  return m.empty() ? std::string() : fmt::format(" (hub: {})", m);
}

std::string what(const HubRequestContext& ctx) {
  return ctx.file.empty()
             ? fmt::format("{} at revision '{}'", ctx.repo, ctx.revision)
             : fmt::format("'{}' of {} at revision '{}'", ctx.file, ctx.repo, ctx.revision);
}

}  // namespace

bool is_retryable_status(int status) {
  return status == 408 || status == 429 || status >= 500;
}

void throw_hub_error(const FetchResult& r, const HubRequestContext& ctx) {
  const std::string code = r.headers.get("X-Error-Code").value_or("");
  const std::string hub = hub_message(r);
  switch (r.status) {
    case 401:
      if (ctx.has_token) {
        fail(StatusCode::kFailedPrecondition,
             "{}: 401 Unauthorized from {}: the token was refused; it is invalid or expired, or "
             "its account cannot see the repository{}",
             what(ctx), ctx.endpoint, hub);
      }
      fail(code == "RepoNotFound" ? StatusCode::kNotFound : StatusCode::kFailedPrecondition,
           "{}: 401 Unauthorized from {}: the repository does not exist, or it is private or "
           "gated; for a private or gated one, {}{}",
           what(ctx), ctx.endpoint, kTokenHint, hub);
    case 403:
      if (code == "GatedRepo") {
        fail(StatusCode::kFailedPrecondition,
             "{}: 403 Forbidden: {} is gated; accept its conditions at {}/{} with your account, "
             "then {}{}",
             what(ctx), ctx.repo, ctx.endpoint, ctx.repo,
             ctx.has_token ? "use a token of that account" : kTokenHint, hub);
      }
      fail(StatusCode::kFailedPrecondition, "{}: 403 Forbidden from {}: {}{}", what(ctx),
           ctx.endpoint,
           ctx.has_token ? "the token has no read access to the repository" : kTokenHint, hub);
    case 404:
      if (code == "RevisionNotFound") {
        fail(StatusCode::kNotFound, "revision '{}' not found in {} at {}{}", ctx.revision, ctx.repo,
             ctx.endpoint, hub);
      }
      if (code == "EntryNotFound" || (!ctx.file.empty() && code != "RepoNotFound")) {
        fail(StatusCode::kNotFound, "{}: file not found (404) at {}{}", what(ctx),
             r.url.to_string(), hub);
      }
      if (code == "RepoNotFound") {
        fail(StatusCode::kNotFound, "repository {} not found at {}{}", ctx.repo, ctx.endpoint, hub);
      }
      fail(StatusCode::kNotFound, "{}: repository or revision not found (404) at {}{}", what(ctx),
           ctx.endpoint, hub);
    default:
      break;
  }
  fail(is_retryable_status(r.status) ? StatusCode::kUnavailable : StatusCode::kInvalidArgument,
       "{}: HTTP {} from {}{}", what(ctx), r.status, r.url.to_string(), hub);
}

}  // namespace llmserve::hub
