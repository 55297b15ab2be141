// URLs as the hub client needs them: parsing http(s) URLs, resolving a redirect's Location
// against the URL that answered, deciding where a token may be sent, and building the hub's two
// URL shapes (the revision API and `resolve`). Pure functions; no I/O.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace llmserve::hub {

struct Url {
  std::string scheme;  // "http" or "https"
  std::string host;    // no brackets, lower case
  uint16_t port = 0;   // always set (80/443 when the URL names none)
  std::string target;  // path and query, starts with '/'

  bool is_https() const { return scheme == "https"; }
  // "https://host[:port]/target"; the port only when it is not the scheme's default.
  std::string to_string() const;
  // The Host header's value: host, plus ":port" when not the default.
  std::string host_header() const;
};

// Parses "http://host[:port][/target]" or "https://…". Returns nullopt for anything else
// (other schemes, user info, an empty host, a bad port).
std::optional<Url> parse_url(std::string_view text);

// The URL a redirect's Location points to: absolute ("https://cdn/x"), scheme-relative
// ("//cdn/x"), absolute-path ("/x?y") or relative ("x", resolved against base's directory).
std::optional<Url> resolve_location(const Url& base, std::string_view location);

// Same scheme, host and port.
bool is_same_origin(const Url& a, const Url& b);

// Whether the token issued for `endpoint` may go to `target`: only to the endpoint's own origin,
// so a redirect to a CDN (another host or port) never carries it.
bool may_send_token(const Url& endpoint, const Url& target);

// Percent-encodes every byte outside RFC 3986's unreserved set; '/' too unless keep_slash.
std::string percent_encode(std::string_view text, bool keep_slash);

// "ORG/NAME": one '/', each part of letters, digits, '-', '_', '.', not starting with '.' or
// '-', no "..", at most 96 characters each.
bool is_repo_id(std::string_view text);

// A file path inside a repository that is safe to write under a destination directory:
// relative, no "." or ".." segments, no empty segments, no backslashes or NULs.
bool is_safe_repo_path(std::string_view path);

// {endpoint}/api/models/{repo}/revision/{revision}?blobs=true (revision fully encoded, so
// "refs/pr/1" stays one segment).
Url revision_api_url(const Url& endpoint, std::string_view repo, std::string_view revision);

// {endpoint}/{repo}/resolve/{revision}/{path} (each path segment encoded).
Url resolve_url(const Url& endpoint, std::string_view repo, std::string_view revision,
                std::string_view path);

}  // namespace llmserve::hub
