// One error hierarchy for the whole program. Every class says what went wrong,
// and every message says where (file, field, tensor), what was found and what was
// expected. Errors are caught once, in pipeline/main.cpp, and mapped to exit codes.
#pragma once

#include <stdexcept>
#include <string>

namespace character {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
  // Process exit code that main() returns for this kind of failure.
  virtual int exit_code() const { return 1; }
};

// A flag, a YAML/JSON config value or a combination of them is wrong.
class ConfigError : public Error {
 public:
  using Error::Error;
  int exit_code() const override { return 2; }
};

// An input file exists but its content does not match its format
// (safetensors header, tokenizer.json, JSONL rows, persona YAML ...).
class FormatError : public Error {
 public:
  using Error::Error;
  int exit_code() const override { return 3; }
};

// A model or training checkpoint is incomplete or inconsistent
// (missing shard, missing tensor, wrong shape, unknown architecture).
class CheckpointError : public Error {
 public:
  using Error::Error;
  int exit_code() const override { return 4; }
};

// The operating system refused: a file cannot be opened, written, renamed.
class IoError : public Error {
 public:
  using Error::Error;
  int exit_code() const override { return 5; }
};

// A remote service (teacher, judge) failed after its retries.
class RemoteError : public Error {
 public:
  using Error::Error;
  int exit_code() const override { return 6; }
};

// A quality gate failed; distinct so CI can tell "checkpoint rejected" from "tool broke".
class GateFailure : public Error {
 public:
  using Error::Error;
  int exit_code() const override { return 10; }
};

// Stopped on request (SIGINT/SIGTERM) after saving what can be resumed; 130 as a
// shell reports a process ended by Ctrl-C.
class Interrupted : public Error {
 public:
  using Error::Error;
  int exit_code() const override { return 130; }
};

}  // namespace character
