// Helpers shared by the test suites: where the oracle fixtures and the project's
// source tree are, and scratch directories that clean up after themselves.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>

namespace character::testing {

// Root of the fixtures written by tools/oracle/ (`make fixtures`): $CHARACTER_FIXTURES,
// else <source>/build/fixtures. A missing fixture is a test failure, never a skip.
inline std::filesystem::path fixtures_dir() {
  if (const char* env = std::getenv("CHARACTER_FIXTURES"); env && *env) return env;
  return std::filesystem::path(CHARACTER_SOURCE_DIR) / "build" / "fixtures";
}

inline std::filesystem::path fixture(const std::string& relative) {
  auto path = fixtures_dir() / relative;
  if (!std::filesystem::exists(path)) {
    ADD_FAILURE() << "missing oracle fixture " << path << " (run `make fixtures`)";
  }
  return path;
}

inline std::filesystem::path source_dir() { return CHARACTER_SOURCE_DIR; }

// A fresh directory under the system temp dir, removed when the object dies.
class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = std::filesystem::temp_directory_path() / ("character-test-" + std::to_string(rd()));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

}  // namespace character::testing
