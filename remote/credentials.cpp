#include "remote/credentials.h"

#include <algorithm>
#include <array>
#include <cctype>

namespace character::remote {
namespace {

struct UrlParts {
  std::string_view scheme, userinfo, rest, query;  // rest: host and path, without userinfo and query
  bool has_userinfo = false;
};

UrlParts split(std::string_view url) {
  UrlParts p;
  std::size_t start = 0;
  if (const auto colon = url.find("://"); colon != std::string_view::npos) {
    p.scheme = url.substr(0, colon + 3);
    start = colon + 3;
  }
  const std::size_t query = url.find_first_of("?#", start);
  const std::size_t authority_end = std::min(url.find('/', start), query);
  const std::string_view authority = url.substr(start, authority_end == std::string_view::npos ? url.npos
                                                                                                : authority_end - start);
  if (const auto at = authority.rfind('@'); at != std::string_view::npos) {
    p.has_userinfo = true;
    p.userinfo = authority.substr(0, at);
    start += at + 1;
  }
  p.rest = url.substr(start, query == std::string_view::npos ? url.npos : query - start);
  if (query != std::string_view::npos) p.query = url.substr(query);
  return p;
}

bool secret_like(std::string_view name) {
  std::string lower(name);
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  static const std::array<const char*, 6> words = {"key", "token", "secret", "password", "auth", "sig"};
  return std::any_of(words.begin(), words.end(), [&](const char* w) { return lower.find(w) != std::string::npos; });
}

}  // namespace

bool is_key_variable_name(std::string_view name) {
  if (name.empty() || std::isdigit(static_cast<unsigned char>(name[0]))) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  });
}

std::optional<std::string> credentials_in_url(std::string_view url) {
  const UrlParts p = split(url);
  if (p.has_userinfo) return "user information (user:password@)";
  // ?a=1&b=2 (and #fragment, where some clients put tokens too).
  std::string_view q = p.query;
  while (!q.empty()) {
    q.remove_prefix(1);  // '?', '&' or '#'
    const std::size_t end = q.find_first_of("&#");
    const std::string_view pair = q.substr(0, end);
    const std::string_view name = pair.substr(0, pair.find('='));
    if (secret_like(name)) return "the query parameter '" + std::string(name.substr(0, 40)) + "'";
    if (end == std::string_view::npos) break;
    q.remove_prefix(end);
  }
  return std::nullopt;
}

std::string url_for_messages(std::string_view url) {
  const UrlParts p = split(url);
  std::string out = std::string(p.scheme) + (p.has_userinfo ? "***@" : "") + std::string(p.rest);
  if (!p.query.empty()) out += p.query[0] == '#' ? "#***" : "?***";
  return out;
}

}  // namespace character::remote
