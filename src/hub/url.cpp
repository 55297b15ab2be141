#include "hub/url.h"

#include <algorithm>
#include <cctype>
#include <charconv>

namespace llmserve::hub {
namespace {

uint16_t default_port(std::string_view scheme) {
  return scheme == "https" ? 443 : 80;
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

bool is_unreserved(unsigned char c) {
  return std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~';
}

// The endpoint's path prefix without a trailing '/' ("" for "https://host/").
std::string_view path_prefix(const Url& endpoint) {
  std::string_view t = endpoint.target;
  t = t.substr(0, t.find_first_of("?#"));
  while (!t.empty() && t.back() == '/') t.remove_suffix(1);
  return t;
}

// Removes "." and ".." segments (RFC 3986 §5.2.4) from an absolute path.
std::string normalize_path(std::string_view path) {
  std::string out;
  size_t pos = 0;
  while (pos < path.size()) {
    size_t next = path.find('/', pos + 1);
    if (next == std::string_view::npos) next = path.size();
    std::string_view seg = path.substr(pos, next - pos);  // "/name"
    if (seg == "/.") {
      if (next == path.size()) out += '/';
    } else if (seg == "/..") {
      auto cut = out.rfind('/');
      out.erase(cut == std::string::npos ? 0 : cut);
      if (next == path.size()) out += '/';
    } else {
      out += seg;
    }
    pos = next;
  }
  return out.empty() ? "/" : out;
}

}  // namespace

std::string Url::host_header() const {
  std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  if (port != default_port(scheme)) h += ":" + std::to_string(port);
  return h;
}

std::string Url::to_string() const {
  return scheme + "://" + host_header() + target;
}

std::optional<Url> parse_url(std::string_view text) {
  Url url;
  auto sep = text.find("://");
  if (sep == std::string_view::npos) return std::nullopt;
  url.scheme = lower(text.substr(0, sep));
  if (url.scheme != "http" && url.scheme != "https") return std::nullopt;
  std::string_view rest = text.substr(sep + 3);
  size_t auth_end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, auth_end);
  std::string_view target = auth_end == std::string_view::npos ? "" : rest.substr(auth_end);
  if (authority.empty() || authority.find('@') != std::string_view::npos) return std::nullopt;
  std::string_view host = authority;
  std::string_view port;
  if (authority.front() == '[') {  // [v6]:port
    auto close = authority.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    host = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return std::nullopt;
      port = after.substr(1);
    }
  } else if (auto colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  }
  if (host.empty()) return std::nullopt;
  url.host = lower(host);
  url.port = default_port(url.scheme);
  if (!port.empty()) {
    unsigned value = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc() || end != port.data() + port.size() || value == 0 || value > 65535) {
      return std::nullopt;
    }
    url.port = static_cast<uint16_t>(value);
  }
  target = target.substr(0, target.find('#'));
  url.target =
      target.empty() || target.front() != '/' ? "/" + std::string(target) : std::string(target);
  return url;
}

std::optional<Url> resolve_location(const Url& base, std::string_view location) {
  if (location.empty()) return std::nullopt;
  if (location.find("://") != std::string_view::npos &&
      location.find("://") < location.find_first_of("/?#")) {
    return parse_url(location);
  }
  if (location.substr(0, 2) == "//") return parse_url(base.scheme + ":" + std::string(location));
  Url url = base;
  location = location.substr(0, location.find('#'));
  std::string_view query;
  if (auto q = location.find('?'); q != std::string_view::npos) {
    query = location.substr(q);
    location = location.substr(0, q);
  }
  std::string path;
  if (location.empty()) {  // "?x": same path, new query
    path = base.target.substr(0, base.target.find('?'));
  } else if (location.front() == '/') {
    path = normalize_path(location);
  } else {
    std::string dir = base.target.substr(0, base.target.find('?'));
    dir.erase(dir.rfind('/') + 1);
    path = normalize_path(dir + std::string(location));
  }
  url.target = path + std::string(query);
  return url;
}

bool is_same_origin(const Url& a, const Url& b) {
  return a.scheme == b.scheme && a.host == b.host && a.port == b.port;
}

bool may_send_token(const Url& endpoint, const Url& target) {
  return is_same_origin(endpoint, target);
}

std::string percent_encode(std::string_view text, bool keep_slash) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (unsigned char c : text) {
    if (is_unreserved(c) || (keep_slash && c == '/')) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

bool is_repo_id(std::string_view text) {
  auto slash = text.find('/');
  if (slash == std::string_view::npos || text.find('/', slash + 1) != std::string_view::npos) {
    return false;
  }
  auto valid_part = [](std::string_view part) {
    if (part.empty() || part.size() > 96 || part.front() == '.' || part.front() == '-')
      return false;
    if (part.find("..") != std::string_view::npos) return false;
    return std::all_of(part.begin(), part.end(), [](unsigned char c) {
      return std::isalnum(c) || c == '-' || c == '_' || c == '.';
    });
  };
  return valid_part(text.substr(0, slash)) && valid_part(text.substr(slash + 1));
}

bool is_safe_repo_path(std::string_view path) {
  if (path.empty() || path.front() == '/') return false;
  if (path.find('\\') != std::string_view::npos || path.find('\0') != std::string_view::npos) {
    return false;
  }
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t next = path.find('/', pos);
    if (next == std::string_view::npos) next = path.size();
    std::string_view seg = path.substr(pos, next - pos);
    if (seg.empty() || seg == "." || seg == "..") return false;
    pos = next + 1;
  }
  return true;
}

Url revision_api_url(const Url& endpoint, std::string_view repo, std::string_view revision) {
  Url url = endpoint;
  url.target = std::string(path_prefix(endpoint)) + "/api/models/" + percent_encode(repo, true) +
               "/revision/" + percent_encode(revision, false) + "?blobs=true";
  return url;
}

Url resolve_url(const Url& endpoint, std::string_view repo, std::string_view revision,
                std::string_view path) {
  Url url = endpoint;
  url.target = std::string(path_prefix(endpoint)) + "/" + percent_encode(repo, true) + "/resolve/" +
               percent_encode(revision, false) + "/" + percent_encode(path, true);
  return url;
}

}  // namespace llmserve::hub
