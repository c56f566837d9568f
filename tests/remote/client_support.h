// Shared setup of the teacher-client tests: a ClientConfig pointed at a
// FaultServer with millisecond backoff, so retry scenarios finish in well under
// a second each.
#pragma once

#include <chrono>
#include <string>

#include "remote/client.h"
#include "tests/remote/fault_server.h"

namespace character::remote::testing {

inline ClientConfig config_for(const FaultServer& server) {
  ClientConfig c;
  c.base_url = server.base_url();
  c.model = "teacher-test";
  c.timeout = std::chrono::milliseconds(2000);
  c.retry.max_retries = 2;
  c.retry.base_delay = std::chrono::milliseconds(5);
  c.retry.max_delay = std::chrono::milliseconds(20);
  c.jitter_seed = 1;
  return c;
}

inline ChatRequest chat(const std::string& prompt) {
  ChatRequest r;
  r.messages = {{"system", "You are terse."}, {"user", prompt}};
  return r;
}

// prefix + i. (Not `"p" + std::to_string(i)`: GCC 12 warns falsely on it, bug 105329.)
inline std::string numbered(std::string prefix, int i) {
  prefix += std::to_string(i);
  return prefix;
}

inline BatchOptions in_stage(const std::string& stage) {
  BatchOptions options;
  options.stage = stage;
  return options;
}

}  // namespace character::remote::testing
