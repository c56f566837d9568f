#include "pipeline/gen_ledger.h"

#include <algorithm>

#include "base/atomic_file.h"
#include "base/error.h"
#include "base/json_read.h"

namespace character::pipeline {

namespace {

ItemStatus parse_status(const std::string& name, const std::string& where) {
  if (name == "kept") return ItemStatus::kKept;
  if (name == "dropped") return ItemStatus::kDropped;
  if (name == "failed") return ItemStatus::kFailed;
  throw FormatError(where + ": status \"" + name + "\", expected kept, dropped or failed");
}

nlohmann::json to_json(const LedgerEntry& e) {
  nlohmann::json j = {{"key", e.key}, {"index", e.index}, {"status", item_status_name(e.status)}};
  if (e.status == ItemStatus::kKept) j["row"] = e.row;
  if (!e.reason.empty()) j["reason"] = e.reason;
  if (!e.detail.is_null()) j["detail"] = e.detail;
  return j;
}

// One JSONL line; invalid UTF-8 from a model (a token limit can split a character)
// becomes U+FFFD instead of an exception.
std::string dump_line(const nlohmann::json& j) {
  return j.dump(-1, ' ', /*ensure_ascii=*/false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

const char* item_status_name(ItemStatus status) {
  switch (status) {
    case ItemStatus::kKept: return "kept";
    case ItemStatus::kDropped: return "dropped";
    case ItemStatus::kFailed: return "failed";
  }
  return "?";
}

Ledger::Ledger(std::filesystem::path path) : path_(std::move(path)) {
  if (!std::filesystem::exists(path_)) return;
  const std::string text = read_file(path_);
  const auto lines = read_jsonl_lines(path_);
  if (!text.empty() && text.back() != '\n') {
    // A kill tore the last append: keep the complete lines only.
    std::string complete;
    for (const auto& line : lines) (complete += line) += '\n';
    write_file_atomic(path_, complete);
  }
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const std::string where = path_.string() + ":" + std::to_string(i + 1);
    const nlohmann::json j = parse_json(lines[i], where);
    if (!j.is_object() || !j.contains("key") || !j["key"].is_string() || !j.contains("index") ||
        !j["index"].is_number_unsigned() || !j.contains("status") || !j["status"].is_string()) {
      throw FormatError(where + ": expected a ledger entry {\"key\": string, \"index\": integer, \"status\": string}");
    }
    LedgerEntry e;
    e.key = j["key"].get<std::string>();
    e.index = j["index"].get<std::size_t>();
    e.status = parse_status(j["status"].get<std::string>(), where);
    if (e.status == ItemStatus::kKept) {
      if (!j.contains("row") || !j["row"].is_object()) throw FormatError(where + ": kept entry without an object \"row\"");
      e.row = j["row"];
    }
    e.reason = j.value("reason", "");
    if (j.contains("detail")) e.detail = j["detail"];
    latest_[e.key] = std::move(e);
  }
  for (const auto& [key, e] : latest_) resumed_ += e.status != ItemStatus::kFailed;
}

bool Ledger::finished(const std::string& key) const {
  const auto it = latest_.find(key);
  return it != latest_.end() && it->second.status != ItemStatus::kFailed;
}

void Ledger::record(const LedgerEntry& entry) {
  append_jsonl_line(path_, dump_line(to_json(entry)));
  latest_[entry.key] = entry;
}

std::vector<LedgerEntry> Ledger::entries() const {
  std::vector<LedgerEntry> out;
  out.reserve(latest_.size());
  for (const auto& [key, e] : latest_) out.push_back(e);
  std::stable_sort(out.begin(), out.end(), [](const LedgerEntry& a, const LedgerEntry& b) { return a.index < b.index; });
  return out;
}

std::size_t Ledger::count(ItemStatus status) const {
  std::size_t n = 0;
  for (const auto& [key, e] : latest_) n += e.status == status;
  return n;
}

void write_jsonl_atomic(const std::filesystem::path& path, const std::vector<nlohmann::json>& rows) {
  std::string text;
  for (const auto& row : rows) (text += dump_line(row)) += '\n';
  write_file_atomic(path, text);
}

StageCounts finalize_stage(const Ledger& ledger, const std::filesystem::path& output,
                           const std::filesystem::path& failures) {
  StageCounts counts;
  std::vector<nlohmann::json> rows, failed;
  for (const auto& e : ledger.entries()) {
    switch (e.status) {
      case ItemStatus::kKept:
        rows.push_back(e.row);
        ++counts.kept;
        break;
      case ItemStatus::kDropped: ++counts.dropped; break;
      case ItemStatus::kFailed:
        failed.push_back({{"key", e.key}, {"reason", e.reason}, {"detail", e.detail}});
        ++counts.failed;
        break;
    }
  }
  write_jsonl_atomic(output, rows);
  if (failed.empty()) {
    std::filesystem::remove(failures);
  } else {
    write_jsonl_atomic(failures, failed);
  }
  return counts;
}

std::string item_key(std::string_view prefix, std::size_t index) {
  std::string digits = std::to_string(index);
  if (digits.size() < 5) digits.insert(0, 5 - digits.size(), '0');
  return std::string(prefix) + "-" + digits;
}

std::int64_t derive_seed(std::uint64_t seed, std::string_view label) {
  std::uint64_t h = 0xcbf29ce484222325ULL;  // FNV-1a 64
  for (unsigned char c : label) h = (h ^ c) * 0x100000001b3ULL;
  std::uint64_t z = seed + h + 0x9e3779b97f4a7c15ULL;  // splitmix64 finaliser
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return static_cast<std::int64_t>((z ^ (z >> 31)) >> 1);
}

void tally_drops(const Ledger& ledger, const std::string& stage, DropCounter& drops) {
  for (const auto& e : ledger.entries()) {
    const bool has_detail = e.detail.is_object();
    if (e.status == ItemStatus::kKept) {
      drops.kept(stage);
      if (has_detail && e.detail.contains("truncated") && e.detail["truncated"].is_array()) {
        for (const auto& s : e.detail["truncated"]) drops.truncated(s.get<std::string>());
      }
    } else if (e.status == ItemStatus::kDropped) {
      drops.dropped(has_detail ? e.detail.value("filter", stage) : stage,
                    has_detail ? e.detail.value("drop", e.reason) : e.reason);
    }
  }
}

LedgerEntry failed_entry(const std::string& key, std::size_t index, const std::string& side,
                         const remote::Failure& failure) {
  LedgerEntry e;
  e.key = key;
  e.index = index;
  e.status = ItemStatus::kFailed;
  e.reason = side + ": " + failure.reason;
  e.detail = {{"side", side}, {"http_status", failure.http_status}, {"attempts", failure.attempts}};
  return e;
}

void stop_if_requested(const std::atomic<bool>* stop, const Ledger& ledger, const std::string& stage,
                       std::size_t done, std::size_t total) {
  if (stop == nullptr || !stop->load()) return;
  throw Interrupted(stage + ": stopped on request after " + std::to_string(done) + " of " + std::to_string(total) +
                    " items; a resume continues from " + ledger.path().string());
}

}  // namespace character::pipeline
