// The bodies `character serve` takes (remote/server.cpp parse_body, server_protocol.cpp):
// bounded JSON, then every field checked; InvalidRequest (a 4xx answer) for the rest.
#include "base/json_read.h"
#include "fuzz/fuzz_support.h"
#include "remote/server_protocol.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace character;
  const auto body = try_parse_json(fuzz::as_text(data, size));
  if (!body) return 0;
  fuzz::refusing_with_errors([&] { (void)remote::parse_chat_body(*body, "tiny"); });
  fuzz::refusing_with_errors([&] { (void)remote::parse_completion_body(*body, "tiny"); });
  return 0;
}
