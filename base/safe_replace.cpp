#include "base/safe_replace.h"

namespace character {

namespace fs = std::filesystem;

fs::path normal_target(const fs::path& out) {
  fs::path target = fs::absolute(out).lexically_normal();
  if (target.filename().empty()) target = target.parent_path();
  return target;
}

std::string why_not_replace(const fs::path& out, const std::function<std::string(const fs::path& dir)>& foreign) {
  const fs::path target = normal_target(out);
  if (target == target.root_path() || target.filename().empty()) return "it is the root of the file system";
  std::error_code ec;
  const fs::path cwd = fs::current_path(ec);
  if (!ec) {
    const auto rel = cwd.lexically_relative(target);  // "." or "a/b" when cwd is at or below target
    if (!rel.empty() && *rel.begin() != "..") return "it is the working directory or holds it";
  }
  if (!fs::is_directory(target)) return "";
  const std::string what = foreign(target);
  return what.empty() ? "" : "it holds " + what + "; remove it yourself if it should go";
}

}  // namespace character
