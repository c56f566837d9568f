// What a command may replace when told to (--force): a path it writes, never the file
// system's root, the working directory or a directory above it, and never a directory
// holding what the command does not write. So `OUT/`, `.` or a mistyped home directory
// cannot make a --force delete what the command did not create.
#pragma once

#include <filesystem>
#include <functional>
#include <string>

namespace character {

// `out` as an absolute path without '.' parts or a trailing '/' ("runs/x/" → /…/runs/x).
std::filesystem::path normal_target(const std::filesystem::path& out);

// Why `out` must not be replaced, or "" when it may (or does not exist). `foreign` is asked
// about an existing directory and returns what in it the command did not write ("" when
// nothing).
std::string why_not_replace(const std::filesystem::path& out,
                            const std::function<std::string(const std::filesystem::path& dir)>& foreign);

}  // namespace character
