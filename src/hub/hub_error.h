// Turning the hub's HTTP error answers into messages that say what to do. The hub names the cause
// in X-Error-Code (RepoNotFound, RevisionNotFound, EntryNotFound, GatedRepo) and explains it in
// X-Error-Message; it answers 401 rather than 404 for a repository it will not show an anonymous
// caller, so "not found" and "private" read alike without a token.
#pragma once

#include <string>

#include "hub/http_client.h"

namespace llmserve::hub {

struct HubRequestContext {
  std::string endpoint;  // for messages: "https://huggingface.co"
  std::string repo;
  std::string revision;
  std::string file;  // "" for the revision listing
  bool has_token = false;
};

// Whether an answer is worth retrying after a pause: 408, 429 and 5xx.
bool is_retryable_status(int status);

// Throws Error: kNotFound (404, or 401 RepoNotFound), kFailedPrecondition (401/403: a token is
// missing, wrong or lacks access), kUnavailable (retryable statuses), kInternal never.
[[noreturn]] void throw_hub_error(const FetchResult& result, const HubRequestContext& ctx);

}  // namespace llmserve::hub
