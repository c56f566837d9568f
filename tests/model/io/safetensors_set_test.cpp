// Model-directory weights: a sharded checkpoint saved by transformers'
// save_pretrained opens with every tensor in the shard its index names, and a
// broken directory (missing shard, index that lies) fails naming file and tensor.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "base/atomic_file.h"
#include "base/error.h"
#include "model/io/safetensors.h"
#include "tests/test_support.h"

namespace character::model {
namespace {

using nlohmann::json;
using testing::fixture;
using testing::TempDir;

std::filesystem::path copy_sharded_llama(const TempDir& tmp) {
  const auto dst = tmp / "model";
  std::filesystem::copy(fixture("safetensors/sharded_llama"), dst, std::filesystem::copy_options::recursive);
  return dst;
}

template <typename Fn>
std::string checkpoint_error(Fn&& fn) {
  try {
    fn();
  } catch (const CheckpointError& e) {
    return e.what();
  }
  return "<no CheckpointError>";
}

TEST(SafetensorsSet, OpensShardedTransformersCheckpoint) {
  const auto dir = fixture("safetensors/sharded_llama");
  const json expected = json::parse(read_file(dir / "expected.json"));
  SafetensorsSet set = SafetensorsSet::open_dir(dir);
  EXPECT_GT(set.files().size(), 1u);

  std::vector<std::string> expected_names;
  for (const auto& [name, t] : expected["tensors"].items()) expected_names.push_back(name);
  EXPECT_EQ(set.names(), expected_names);

  int64_t total = 0;
  for (const auto& [name, t] : expected["tensors"].items()) {
    SCOPED_TRACE(name);
    EXPECT_TRUE(set.contains(name));
    TensorView v = set.view(name);
    EXPECT_EQ(v.shape, t["shape"].get<std::vector<int64_t>>());
    EXPECT_EQ(set.file_of(name).filename(), t["shard"].get<std::string>());
    total += v.numel();
  }
  EXPECT_EQ(total, expected["num_parameters"].get<int64_t>());  // 6736 for the tiny llama
}

TEST(SafetensorsSet, MissingShardIsNamed) {
  TempDir tmp;
  const auto dir = copy_sharded_llama(tmp);
  std::filesystem::remove(dir / "model-00002-of-00009.safetensors");
  const auto msg = checkpoint_error([&] { SafetensorsSet::open_dir(dir); });
  EXPECT_NE(msg.find("missing shard model-00002-of-00009.safetensors listed in model.safetensors.index.json"),
            std::string::npos)
      << msg;
  EXPECT_NE(msg.find(dir.string()), std::string::npos) << msg;
}

TEST(SafetensorsSet, IndexNamingTensorNotInShardIsNamed) {
  TempDir tmp;
  const auto dir = copy_sharded_llama(tmp);
  json index = json::parse(read_file(dir / "model.safetensors.index.json"));
  const std::string real_shard = index["weight_map"]["lm_head.weight"];
  const std::string wrong_shard = real_shard == "model-00001-of-00009.safetensors" ? "model-00002-of-00009.safetensors"
                                                                                    : "model-00001-of-00009.safetensors";
  index["weight_map"]["lm_head.weight"] = wrong_shard;
  write_file_atomic(dir / "model.safetensors.index.json", index.dump());
  const auto msg = checkpoint_error([&] { SafetensorsSet::open_dir(dir); });
  EXPECT_NE(msg.find("weight_map puts tensor 'lm_head.weight' in " + wrong_shard), std::string::npos) << msg;
  EXPECT_NE(msg.find("model.safetensors.index.json"), std::string::npos) << msg;
}

TEST(SafetensorsSet, SingleFileDirectory) {
  TempDir tmp;
  float w[6] = {1, 2, 3, 4, 5, 6};
  write_safetensors(tmp / "model.safetensors", {{"w", DType::F32, {2, 3}, w, sizeof(w)}});
  SafetensorsSet set = SafetensorsSet::open_dir(tmp.path());
  EXPECT_EQ(set.names(), std::vector<std::string>{"w"});
  EXPECT_EQ(set.file_of("w"), tmp / "model.safetensors");
  const auto msg = checkpoint_error([&] { set.view("v"); });
  EXPECT_NE(msg.find("no tensor named 'v'"), std::string::npos) << msg;
}

TEST(SafetensorsSet, DirectoryWithoutWeightsIsNamed) {
  TempDir tmp;
  const auto msg = checkpoint_error([&] { SafetensorsSet::open_dir(tmp.path()); });
  EXPECT_NE(msg.find("no model.safetensors or model.safetensors.index.json"), std::string::npos) << msg;
}

TEST(SafetensorsSet, ShardPathOutsideDirectoryIsRejected) {
  TempDir tmp;
  write_file_atomic(tmp / "model.safetensors.index.json", R"({"weight_map": {"w": "../elsewhere.safetensors"}})");
  EXPECT_THROW(SafetensorsSet::open_dir(tmp.path()), FormatError);
}

}  // namespace
}  // namespace character::model
