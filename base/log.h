// Logging to stderr (and optionally a file) with secret redaction: any value
// registered with register_secret() is replaced by "***" in every line, so an API
// key that slips into a URL or an error message never reaches a log.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

namespace character::log {

enum class Level { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

void set_level(Level level);
Level level();
// Also append every line to `path` (created if needed); empty path closes it.
void set_file(const std::filesystem::path& path);

// Values never to be printed; empty strings and strings under 4 chars are ignored.
void register_secret(std::string value);
// `text` with every registered secret replaced by "***".
std::string redact(std::string_view text);
// A piece of outside text (an upstream error body) fit for a message: redacted first, then
// cut to max_bytes on a UTF-8 boundary ("…" when cut), line breaks made spaces. Redacting
// after the cut would leave the head of a key that the cut split.
std::string redacted_excerpt(std::string_view text, std::size_t max_bytes);

void write(Level level, std::string_view message);
// Appends a line to the log file only (when set_file opened one), timestamped and
// redacted like the others, under `label`: what a command printed on stdout.
void write_file_only(std::string_view label, std::string_view message);
inline void debug(std::string_view m) { write(Level::kDebug, m); }
inline void info(std::string_view m) { write(Level::kInfo, m); }
inline void warn(std::string_view m) { write(Level::kWarn, m); }
inline void error(std::string_view m) { write(Level::kError, m); }

}  // namespace character::log
