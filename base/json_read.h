// JSON from outside the program (files, request bodies, a teacher's replies) parsed with a
// bound on nesting. nlohmann's parser is iterative, but copying, comparing and dumping a
// value recurse once per level, so a document 100,000 levels deep that parses fine overflows
// the stack later. parse_json refuses one nested deeper than the bound while reading it,
// before any value is built; describe_json keeps error messages from dumping whole values.
#pragma once

#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace character {

// Deeper than any format we read needs (chat requests, tokenizer.json's normalizer and
// pre-tokenizer sequences, config.json: under 10 levels), far below what recursion over a
// value survives on a thread's stack.
inline constexpr int kMaxJsonDepth = 64;

// The value, or FormatError "<source>: not valid JSON: <line and column, what>" or
// "<source>: JSON nested deeper than <max_depth> levels".
nlohmann::json parse_json(std::string_view text, const std::string& source, int max_depth = kMaxJsonDepth);

// parse_json's checks alone, for a caller that parses with a callback of its own.
void check_json(std::string_view text, const std::string& source, int max_depth = kMaxJsonDepth);

// parse_json of a whole file, the path as the source; IoError when it cannot be read.
nlohmann::json read_json_file(const std::filesystem::path& path, int max_depth = kMaxJsonDepth);

// The value, or nullopt when the text is not valid JSON or too deep (a torn JSONL line, a
// teacher reply to retry); `why` gets the reason when given.
std::optional<nlohmann::json> try_parse_json(std::string_view text, std::string* why = nullptr,
                                             int max_depth = kMaxJsonDepth);

// `text` cut to max_bytes on a UTF-8 character boundary, "…" added when cut: a piece of
// outside text (a file name, a scalar) fit for a message.
std::string clip_utf8(std::string_view text, std::size_t max_bytes);

// A value for an error message: a scalar or a short flat list rendered and clipped to
// max_chars, anything larger as its type and size ("an object of 12 keys"); never the whole
// value.
std::string describe_json(const nlohmann::json& value, std::size_t max_chars = 60);

}  // namespace character
