#include "base/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>

#include "base/error.h"

namespace character {
namespace {

std::string errno_text() { return std::strerror(errno); }

// Writes all of `size` bytes to `fd` or throws, retrying short writes and EINTR.
void write_all(int fd, const void* data, std::size_t size, const std::filesystem::path& path) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = ::write(fd, p, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw IoError(path.string() + ": write failed: " + errno_text());
    }
    p += n;
    size -= static_cast<std::size_t>(n);
  }
}

std::filesystem::path temp_path_for(const std::filesystem::path& path) {
  std::random_device rd;
  return path.parent_path() /
         ("." + path.filename().string() + ".tmp." + std::to_string(::getpid()) + "." +
          std::to_string(rd()));
}

void fsync_directory(const std::filesystem::path& dir) {
  int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

}  // namespace

void write_file_atomic_streamed(const std::filesystem::path& path,
                                const std::function<void(const ByteSink&)>& write) {
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path());
  const auto tmp = temp_path_for(path);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw IoError(tmp.string() + ": cannot create: " + errno_text());
  try {
    write([&](const void* data, std::size_t size) { write_all(fd, data, size, path); });
    if (::fsync(fd) != 0) throw IoError(path.string() + ": fsync failed: " + errno_text());
  } catch (...) {
    ::close(fd);
    std::filesystem::remove(tmp);
    throw;
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    std::filesystem::remove(tmp);
    throw IoError(path.string() + ": rename from temp file failed: " + errno_text());
  }
  fsync_directory(path.parent_path());
}

void write_file_atomic(const std::filesystem::path& path, std::string_view content) {
  write_file_atomic_streamed(path, [&](const ByteSink& sink) { sink(content.data(), content.size()); });
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(path.string() + ": cannot open for reading");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void append_jsonl_line(const std::filesystem::path& path, std::string_view line) {
  if (line.find('\n') != std::string_view::npos)
    throw FormatError(path.string() + ": JSONL line contains a newline");
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path());
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) throw IoError(path.string() + ": cannot open for append: " + errno_text());
  std::string buffer(line);
  buffer.push_back('\n');
  try {
    write_all(fd, buffer.data(), buffer.size(), path);
    if (::fsync(fd) != 0) throw IoError(path.string() + ": fsync failed: " + errno_text());
  } catch (...) {
    ::close(fd);
    throw;
  }
  ::close(fd);
}

std::vector<std::string> read_jsonl_lines(const std::filesystem::path& path) {
  std::vector<std::string> lines;
  if (!std::filesystem::exists(path)) return lines;
  const std::string text = read_file(path);
  std::size_t start = 0;
  while (start < text.size()) {
    const std::size_t end = text.find('\n', start);
    if (end == std::string::npos) break;  // torn final line from a killed writer
    if (end > start) lines.emplace_back(text.substr(start, end - start));
    start = end + 1;
  }
  return lines;
}

}  // namespace character
