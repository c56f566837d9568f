// The resumable record of one generation stage: an append-only JSONL ledger with
// one line per finished item ({"key","index","status","row"|"reason"}), each line
// appended and fsync'ed whole, so a killed run resumes with nothing lost and nothing
// done twice. finalize() writes the stage's outputs from it atomically, in item
// order, so a resumed run's files equal an uninterrupted run's.
#pragma once

#include <nlohmann/json.hpp>

#include "pipeline/gen_filters.h"
#include "remote/types.h"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <string_view>
#include <string>
#include <vector>

namespace character::pipeline {

enum class ItemStatus { kKept, kDropped, kFailed };
const char* item_status_name(ItemStatus status);  // "kept", "dropped", "failed"

struct LedgerEntry {
  std::string key;        // stable item id: "dpo-00012", "reflection-3-0042" …
  std::size_t index = 0;  // position in the stage's output order
  ItemStatus status = ItemStatus::kKept;
  nlohmann::json row;     // kept: the output row
  std::string reason;     // dropped: the filter's reason; failed: the request's failure
  nlohmann::json detail;  // failed: {"http_status", "attempts", "request"} …
};

class Ledger {
 public:
  // Reads the ledger at `path` if it exists. A final line torn by a kill is cut off
  // (the file is rewritten atomically without it) so later appends start on a fresh
  // line. FormatError naming path:line for a complete line that is not a ledger entry.
  explicit Ledger(std::filesystem::path path);

  // Kept or dropped items are finished; failed ones are asked again on a resume.
  bool finished(const std::string& key) const;
  void record(const LedgerEntry& entry);

  // The latest entry of every key, ordered by index.
  std::vector<LedgerEntry> entries() const;
  std::size_t count(ItemStatus status) const;
  std::size_t resumed() const { return resumed_; }  // finished entries found at open
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  std::map<std::string, LedgerEntry> latest_;
  std::size_t resumed_ = 0;
};

// Writes `rows` as JSONL to `path` atomically (one line per row).
void write_jsonl_atomic(const std::filesystem::path& path, const std::vector<nlohmann::json>& rows);

// Outputs of a finished stage: kept rows to `output`, failures (key, reason,
// detail) to `failures` (removed when there are none). Returns {kept, dropped, failed}.
struct StageCounts {
  std::size_t kept = 0, dropped = 0, failed = 0;
};
StageCounts finalize_stage(const Ledger& ledger, const std::filesystem::path& output,
                           const std::filesystem::path& failures);

// --- shared by the stages ------------------------------------------------------

// Called after items are recorded: (stage, finished items, total items).
using StageProgress = std::function<void(const std::string& stage, std::size_t done, std::size_t total)>;

struct StageReport {
  std::string stage;
  StageCounts counts;
  std::size_t resumed = 0;  // items already finished when the stage started
};

// "dpo-00012": stable ids, zero-padded so that they sort like their index.
std::string item_key(std::string_view prefix, std::size_t index);

// A sampling seed from the run seed and a label (FNV-1a over the label, mixed with
// splitmix64), kept in the non-negative int64 range that JSON servers accept.
std::int64_t derive_seed(std::uint64_t seed, std::string_view label);

// Adds a ledger's outcomes to `drops` (resumed items included): kept items under
// `stage` (plus detail["truncated"], a list of filter stages), dropped ones under
// detail["filter"] (default `stage`) with reason detail["drop"] (default the entry's reason).
void tally_drops(const Ledger& ledger, const std::string& stage, DropCounter& drops);

// Between batches: when `stop` is set, Interrupted naming the stage, how far it
// got and the ledger a resume continues from; otherwise nothing.
void stop_if_requested(const std::atomic<bool>* stop, const Ledger& ledger, const std::string& stage,
                       std::size_t done, std::size_t total);

// The ledger entry of an item whose request failed: reason and detail from the Failure.
LedgerEntry failed_entry(const std::string& key, std::size_t index, const std::string& side,
                         const remote::Failure& failure);

}  // namespace character::pipeline
