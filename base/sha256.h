// SHA-256 as lower-case hex (OpenSSL libcrypto's EVP): of bytes in memory, of a
// file streamed in 1 MiB blocks, or incrementally. Request-cache keys, the judge's
// cache and the run manifest's input/output hashes all use this one.
#pragma once

#include <cstddef>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

namespace character {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(std::string_view data);
  std::string hex();  // finishes the digest; call once

 private:
  struct Context;
  std::unique_ptr<Context> context_;
};

std::string sha256_hex(std::string_view data);
// IoError naming the file when it cannot be opened or read.
std::string sha256_file(const std::filesystem::path& file);

}  // namespace character
