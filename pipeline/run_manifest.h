// RUN/manifest.json of a `character pipeline` run: the resolved config, each
// stage's status, times, input and output hashes, counts, usage and cost, the
// gates, the exports, the code version and the device. Every change is written
// at once and atomically, so a killed run leaves a manifest that --resume and
// `character runs` can read. Schema: docs/pipeline.md.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "base/sha256.h"  // sha256_file
#include "pipeline/run_config.h"
#include "pipeline/stages.h"

namespace character::pipeline {

// sha256 of a file or a directory. A directory's hash is the sha256 of the lines
// "<file sha256>  <relative path>\n" (sha256sum's format) of every regular file
// under it, sorted by relative path (byte order, '/' separators). IoError when
// `path` does not exist.
std::string sha256_path(const std::filesystem::path& path);

// Remembers file hashes by (path, size, mtime) so that a resume does not re-read
// a 60 GB student; persisted in RUN/.hashes.json. Same rule as make and rsync: a
// file whose size and modification time are unchanged is taken as unchanged.
class HashCache {
 public:
  explicit HashCache(std::filesystem::path file = {});
  std::string file_hash(const std::filesystem::path& file);
  std::string path_hash(const std::filesystem::path& path);  // file or directory
  void save() const;                                          // no-op without a file

 private:
  struct Entry {
    uintmax_t size = 0;
    int64_t mtime_ns = 0;
    std::string sha256;
  };
  std::filesystem::path file_;
  std::map<std::string, Entry> entries_;
  bool dirty_ = false;
};

// What the run ran on: "cpu", or "cuda (NVIDIA H100 80GB HBM3)" from the driver's
// /proc entry when the device is cuda (no torch needed to say it).
std::string describe_device(const std::string& device);

// The gate table of a gates.json (eval/gates.h's schema) as aligned lines: gate,
// value, comparison, threshold, verdict, note; then the notes. Empty for null.
std::vector<std::string> gate_table(const nlohmann::json& gates);

class RunManifest {
 public:
  // A new run: RUN/manifest.json with every stage pending, written at once.
  static RunManifest create(const std::filesystem::path& run_dir, const RunConfig& config,
                            const std::vector<std::string>& stage_names);
  // An existing run; FormatError naming the file and field when it is not a
  // manifest, IoError when missing.
  static RunManifest load(const std::filesystem::path& run_dir);

  const std::filesystem::path& run_dir() const { return run_dir_; }
  const nlohmann::json& data() const { return data_; }
  RunConfig config() const;               // the recorded config
  void set_config(const RunConfig& config);  // resume with --force-export / --export / --device
  std::string status() const { return data_.value("status", ""); }
  // running | finished | partial (--until/--only stopped early) | failed | gated-out | interrupted
  void set_status(const std::string& status);

  // The record of a stage ({} when the manifest has none).
  const nlohmann::json& stage(const std::string& name) const;
  std::string stage_status(const std::string& name) const;
  // Stage transitions; each one saves. `seconds` (this attempt's) adds to the
  // stage's total over attempts (a resumed stage runs more than once).
  void stage_running(const std::string& name);
  void stage_done(const std::string& name, const StageResult& result, double seconds, HashCache& hashes);
  // status: failed | interrupted.
  void stage_ended(const std::string& name, const std::string& status, const std::string& error, double seconds);
  void stage_skipped(const std::string& name, const std::string& reason);

  // Whether a done stage's recorded inputs and outputs still hash the same.
  // `why` gets the first path that differs.
  bool stage_still_valid(const std::string& name, HashCache& hashes, std::string& why) const;

  void set_gates(const nlohmann::json& gates);  // gates.json's content, or null
  // The persona lab the run took its student or teacher from
  // (pipeline/lab_default.h's LabRuntime::record()), or null.
  void set_lab(const nlohmann::json& lab);
  void set_exports(const nlohmann::json& exports);

  // Writes RUN/manifest.json atomically.
  void save() const;

  // "data/sft.jsonl" for a path inside RUN/, the absolute path otherwise.
  std::string record_key(const std::filesystem::path& path) const;
  // The inverse: a record key back to a path.
  std::filesystem::path resolve(const std::string& key) const;

 private:
  RunManifest(std::filesystem::path run_dir, nlohmann::json data) : run_dir_(std::move(run_dir)), data_(std::move(data)) {}
  nlohmann::json& mutable_stage(const std::string& name);
  void update_totals();
  std::filesystem::path run_dir_;
  nlohmann::json data_;
};

}  // namespace character::pipeline
