// The API key check of every protocol (--api-key): an `Authorization: Bearer <key>` header (HTTP)
// or metadata entry (gRPC). The scheme is case-insensitive (RFC 9110 §11.1), the key is compared
// in time independent of where it differs, so response timing does not reveal a prefix.
//
// Which routes need it, on both protocols: everything but server liveness and readiness
// (/v2/health/live, /v2/health/ready; gRPC ServerLive, ServerReady), which probes call without
// credentials. Model readiness names a model, so it is protected like the rest; unknown routes
// and methods answer 401 before 404/405 to an unauthorized client, so routes cannot be enumerated.
#pragma once

#include <cstddef>
#include <string_view>

namespace llmserve {

// Whether `authorization` ("Bearer <key>", any case of "bearer", spaces after it) carries `key`.
// An empty `key` means no key is configured: everything is authorized.
inline bool api_key_matches(std::string_view authorization, std::string_view key) {
  if (key.empty()) return true;
  constexpr std::string_view kScheme = "bearer";
  if (authorization.size() <= kScheme.size()) return false;
  for (size_t i = 0; i < kScheme.size(); ++i) {
    const char c = authorization[i];
    if ((c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c) != kScheme[i]) return false;
  }
  size_t at = kScheme.size();
  if (authorization[at] != ' ') return false;
  while (at < authorization.size() && authorization[at] == ' ') ++at;
  const std::string_view given = authorization.substr(at);
  // Every byte of the configured key is compared whatever the given one holds.
  unsigned char diff = given.size() == key.size() ? 0 : 1;
  for (size_t i = 0; i < key.size(); ++i) {
    const char g = i < given.size() ? given[i] : '\0';
    diff |= static_cast<unsigned char>(g ^ key[i]);
  }
  return diff == 0;
}

}  // namespace llmserve
