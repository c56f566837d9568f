#include "base/log.h"

#include <cstdio>
#include <fstream>
#include <mutex>
#include <vector>

#include "base/utc_time.h"

namespace character::log {
namespace {

struct State {
  std::mutex mutex;
  Level level = Level::kInfo;
  std::ofstream file;
  std::vector<std::string> secrets;
};

State& state() {
  static State s;
  return s;
}

const char* level_name(Level level) {
  switch (level) {
    case Level::kDebug: return "debug";
    case Level::kInfo: return "info";
    case Level::kWarn: return "warning";
    case Level::kError: return "error";
  }
  return "?";
}

std::string redact_locked(const State& s, std::string_view text) {
  std::string out(text);
  for (const auto& secret : s.secrets) {
    for (std::size_t pos = out.find(secret); pos != std::string::npos;
         pos = out.find(secret, pos + 3)) {
      out.replace(pos, secret.size(), "***");
    }
  }
  return out;
}

}  // namespace

void set_level(Level level) {
  std::lock_guard lock(state().mutex);
  state().level = level;
}

Level level() {
  std::lock_guard lock(state().mutex);
  return state().level;
}

void set_file(const std::filesystem::path& path) {
  std::lock_guard lock(state().mutex);
  auto& s = state();
  if (s.file.is_open()) s.file.close();
  if (path.empty()) return;
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path());
  s.file.open(path, std::ios::app);
}

void register_secret(std::string value) {
  if (value.size() < 4) return;
  std::lock_guard lock(state().mutex);
  state().secrets.push_back(std::move(value));
}

std::string redact(std::string_view text) {
  std::lock_guard lock(state().mutex);
  return redact_locked(state(), text);
}

std::string redacted_excerpt(std::string_view text, std::size_t max_bytes) {
  std::string out = redact(text);
  if (out.size() > max_bytes) {
    std::size_t cut = max_bytes;
    while (cut > 0 && (static_cast<unsigned char>(out[cut]) & 0xC0) == 0x80) --cut;  // not inside a character
    out = out.substr(0, cut) + "…";
  }
  for (char& c : out) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return out;
}

void write(Level level, std::string_view message) {
  std::lock_guard lock(state().mutex);
  auto& s = state();
  const std::string line = redact_locked(s, message);
  if (level >= s.level) {
    std::fprintf(stderr, "%s%s\n", level == Level::kInfo ? "" : (std::string(level_name(level)) + ": ").c_str(),
                 line.c_str());
  }
  if (s.file.is_open()) {
    s.file << utc_now_text() << ' ' << level_name(level) << ' ' << line << '\n';
    s.file.flush();
  }
}

void write_file_only(std::string_view label, std::string_view message) {
  std::lock_guard lock(state().mutex);
  auto& s = state();
  if (!s.file.is_open()) return;
  s.file << utc_now_text() << ' ' << label << ' ' << redact_locked(s, message) << '\n';
  s.file.flush();
}

}  // namespace character::log
