// Files that are never seen half-written: content goes to a temp file beside the
// target, is fsync'ed, then renamed over it (rename is atomic on POSIX). JSONL
// appends go through one helper that writes whole lines and syncs them.
#pragma once

#include <cstddef>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace character {

// Writes `content` to `path` atomically; creates parent directories.
void write_file_atomic(const std::filesystem::path& path, std::string_view content);

// Streams content through `write` (called with a FILE-like sink) into a temp file,
// then renames it to `path`. For large outputs (safetensors) that should not be
// built in memory first. The sink writes all bytes or throws IoError.
using ByteSink = std::function<void(const void* data, std::size_t size)>;
void write_file_atomic_streamed(const std::filesystem::path& path,
                                const std::function<void(const ByteSink&)>& write);

// Reads a whole file; IoError naming the path when it cannot.
std::string read_file(const std::filesystem::path& path);

// Appends one line (a '\n' is added) to a JSONL file and fsyncs it, so a killed
// process leaves at most a torn final line, which read_jsonl_lines() drops.
void append_jsonl_line(const std::filesystem::path& path, std::string_view line);

// Complete lines of a JSONL file; a final line without '\n' (torn by a kill) is
// ignored. A missing file gives no lines.
std::vector<std::string> read_jsonl_lines(const std::filesystem::path& path);

}  // namespace character
