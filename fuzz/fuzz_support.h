// What every harness shares. A harness feeds one input to one parser of outside input and
// returns; the parser may refuse it with a character::Error (the clear error the program
// prints), and anything else is a finding: a crash, a sanitizer report, an exception of
// another type escaping (which the program would report as an internal error, exit 70),
// or a timeout.
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "base/error.h"

namespace character::fuzz {

inline std::string_view as_text(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// A scratch directory of this process (in /dev/shm when there is one: inputs are written
// there once per run), removed by the OS with the tmpfs, never shared between processes.
inline const std::filesystem::path& scratch_dir() {
  static const std::filesystem::path dir = [] {
    const std::filesystem::path root = std::filesystem::exists("/dev/shm") ? "/dev/shm" : "/tmp";
    auto d = root / ("character-fuzz-" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    return d;
  }();
  return dir;
}

inline void write_bytes(const std::filesystem::path& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// Runs `parse`; a character::Error is the expected way to refuse bad input.
template <typename F>
void refusing_with_errors(F&& parse) {
  try {
    parse();
  } catch (const character::Error&) {
  }
}

}  // namespace character::fuzz
