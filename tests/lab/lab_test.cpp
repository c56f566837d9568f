// The lab builder (lab/lab.h): sizes, paths, the default directory, and on a
// seconds-long "micro" lab the build itself: every part written, lab.json with its
// hashes, reuse of a finished build, rebuilding what was tampered with, refusing a
// directory of another lab, and stopping on request then resuming.
#include "lab/lab.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <cstdlib>
#include <fstream>
#include <optional>

#include "base/atomic_file.h"
#include "base/error.h"
#include "lab/lab_models.h"
#include "model/io/config.h"
#include "model/text/tokenizer.h"
#include "tests/test_support.h"

namespace character::lab {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

// The tiny size shrunk until the whole build (corpus, tokenizer, two trainings of a
// few steps, the sanity check) takes seconds: it tests the builder, not the models.
LabSize micro_size() {
  LabSize s = lab_size("tiny");
  s.name = "micro";
  s.generic_conversations = 40;
  s.persona_conversations = 4;
  s.vocab_size = 512;
  s.student_layers = 2, s.student_hidden = 32, s.student_experts = 4, s.student_top_k = 2;
  s.student_moe_intermediate = 32;
  s.teacher_layers = 1, s.teacher_hidden = 32, s.teacher_intermediate = 64;
  s.heads = 2, s.kv_heads = 1;
  s.student_steps = 2, s.teacher_steps = 2, s.batch_size = 8;
  s.max_length = 512;
  return s;
}

LabBuildOptions micro_options(const fs::path& dir, uint64_t seed = 0) {
  LabBuildOptions o;
  o.dir = dir;
  o.size = "micro";
  o.size_config = micro_size();
  o.seed = seed;
  o.progress = false;
  o.threads = 1;  // ctest runs suites side by side
  return o;
}

// Sets an environment variable for the test's lifetime, restoring the old value.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) {
      setenv(name, value, 1);
    } else {
      unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (old_) {
      setenv(name_, old_->c_str(), 1);
    } else {
      unsetenv(name_);
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
  std::optional<std::string> old_;
};

TEST(LabSize, NamesAreTinyDemoFullAndEachIsLargerThanTheLast) {
  EXPECT_EQ(lab_size_names(), (std::vector<std::string>{"tiny", "demo", "full"}));
  const LabSize tiny = lab_size("tiny"), demo = lab_size("demo"), full = lab_size("full");
  EXPECT_EQ(tiny.name, "tiny");
  EXPECT_LT(tiny.generic_conversations, demo.generic_conversations);
  EXPECT_LT(demo.generic_conversations, full.generic_conversations);
  EXPECT_LT(tiny.teacher_steps, demo.teacher_steps);
  EXPECT_LT(demo.teacher_steps, full.teacher_steps);
  for (const auto& s : {tiny, demo, full}) {
    // The student: Qwen3-MoE with 4-6 layers, 8-16 experts, top-2.
    EXPECT_GE(s.student_layers, 4) << s.name;
    EXPECT_LE(s.student_layers, 6) << s.name;
    EXPECT_GE(s.student_experts, 8) << s.name;
    EXPECT_EQ(s.student_top_k, 2) << s.name;
    EXPECT_EQ(s.student_hidden % s.heads, 0) << s.name;
    EXPECT_EQ(s.teacher_hidden % s.heads, 0) << s.name;
    EXPECT_GT(s.persona_conversations, 0) << s.name;
  }
}

TEST(LabSize, UnknownNameIsAConfigErrorListingTheSizes) {
  try {
    lab_size("huge");
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("'huge'"), std::string::npos) << what;
    EXPECT_NE(what.find("tiny, demo, full"), std::string::npos) << what;
  }
}

TEST(LabPaths, AreTheDocumentedSubdirectories) {
  const LabPaths p = lab_paths("/x/lab");
  EXPECT_EQ(p.dir, fs::path("/x/lab"));
  EXPECT_EQ(p.student, fs::path("/x/lab/student"));
  EXPECT_EQ(p.teacher, fs::path("/x/lab/teacher"));
  EXPECT_EQ(p.tokenizer, fs::path("/x/lab/tokenizer"));
  EXPECT_EQ(p.corpus, fs::path("/x/lab/corpus"));
}

TEST(DefaultLabDir, PrefersCharacterLabDirThenXdgCacheThenHome) {
  {
    ScopedEnv lab("CHARACTER_LAB_DIR", "/labs");
    ScopedEnv xdg("XDG_CACHE_HOME", "/xdg");
    EXPECT_EQ(default_lab_dir("demo", 3), fs::path("/labs/demo-seed3"));
  }
  {
    ScopedEnv lab("CHARACTER_LAB_DIR", nullptr);
    ScopedEnv xdg("XDG_CACHE_HOME", "/xdg");
    EXPECT_EQ(default_lab_dir("tiny", 0), fs::path("/xdg/character/lab/tiny-seed0"));
  }
  {
    ScopedEnv lab("CHARACTER_LAB_DIR", nullptr);
    ScopedEnv xdg("XDG_CACHE_HOME", nullptr);
    ScopedEnv home("HOME", "/home/me");
    EXPECT_EQ(default_lab_dir("full", 1), fs::path("/home/me/.cache/character/lab/full-seed1"));
  }
}

TEST(LabIsBuilt, FalseForAMissingOrDamagedDirectory) {
  TempDir tmp;
  EXPECT_FALSE(lab_is_built(tmp / "none", "tiny", 0));
  write_file_atomic(tmp / "lab.json", "{not json");
  EXPECT_FALSE(lab_is_built(tmp.path(), "tiny", 0));
  EXPECT_THROW(read_lab_manifest(tmp / "none"), IoError);
}

TEST(LabBuild, RefusesANonEmptyDirectoryThatIsNotALab) {
  TempDir tmp;
  write_file_atomic(tmp / "notes.txt", "mine\n");
  try {
    build_lab(micro_options(tmp.path()));
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("holds no lab.json"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(fs::exists(tmp / "notes.txt"));
}

TEST(LabBuild, SizeConfigMustCarryTheSizeName) {
  TempDir tmp;
  LabBuildOptions o = micro_options(tmp / "lab");
  o.size = "tiny";
  EXPECT_THROW(build_lab(o), ConfigError);
}

TEST(LabBuild, StopRequestedBeforeAStepIsInterruptedAndTheNextBuildFinishes) {
  TempDir tmp;
  std::atomic<bool> stop{true};
  LabBuildOptions o = micro_options(tmp / "lab");
  o.stop_requested = &stop;
  EXPECT_THROW(build_lab(o), Interrupted);
  EXPECT_FALSE(lab_is_built(tmp / "lab", micro_size(), 0));
  stop = false;
  build_lab(o);
  EXPECT_TRUE(lab_is_built(tmp / "lab", micro_size(), 0));
}

// One micro build shared by the tests below (a few seconds).
class MicroLab : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    tmp_ = new TempDir();
    paths_ = build_lab(micro_options(*tmp_ / "lab"));
  }
  static void TearDownTestSuite() {
    delete tmp_;
    tmp_ = nullptr;
  }
  static TempDir* tmp_;
  static LabPaths paths_;
};
TempDir* MicroLab::tmp_ = nullptr;
LabPaths MicroLab::paths_;

TEST_F(MicroLab, WritesEveryPartAndALabJsonWithHashesAndSeconds) {
  EXPECT_EQ(paths_.dir, *tmp_ / "lab");
  for (const char* f : {"corpus/generic.jsonl", "corpus/persona.jsonl", "corpus/tokenizer.txt",
                        "tokenizer/tokenizer.json", "student/config.json", "student/model.safetensors",
                        "student/tokenizer_config.json", "teacher/config.json", "teacher/model.safetensors",
                        "teacher/tokenizer_config.json"}) {
    EXPECT_TRUE(fs::is_regular_file(paths_.dir / f)) << f;
  }
  EXPECT_TRUE(lab_is_built(paths_.dir, micro_size(), 0));
  EXPECT_FALSE(lab_is_built(paths_.dir, micro_size(), 1));  // another seed
  const nlohmann::json m = read_lab_manifest(paths_.dir);
  EXPECT_EQ(m["size"], "micro");
  EXPECT_EQ(m["seed"], 0);
  EXPECT_EQ(m["complete"], true);
  for (const char* step : {"corpus", "tokenizer", "student", "teacher", "sanity"}) {
    const auto& s = m["steps"][step];
    EXPECT_EQ(s["state"], "done") << step;
    EXPECT_GE(s["seconds"].get<double>(), 0.0) << step;
    EXPECT_EQ(s["inputs"].get<std::string>().size(), 64u) << step;
  }
  EXPECT_EQ(m["steps"]["student"]["outputs"]["student/model.safetensors"].get<std::string>().size(), 64u);
  EXPECT_EQ(m["steps"]["student"]["details"]["steps"], 2);
  // The sanity check scored the three setups on held-out prompts.
  for (const char* setup : {"teacher_in_persona", "teacher_no_system", "student"}) {
    EXPECT_EQ(m["sanity"][setup]["n"], m["sanity"]["prompts"]) << setup;
  }
  EXPECT_GT(m["sanity"]["prompts"].get<int>(), 0);
}

TEST_F(MicroLab, ModelsAreAQwen3MoeStudentAndADenseQwen3TeacherWithTheLabTokenizer) {
  const auto tokenizer = model::load_tokenizer(paths_.tokenizer);
  const model::ModelConfig student = model::load_config(paths_.student);
  const model::ModelConfig teacher = model::load_config(paths_.teacher);
  EXPECT_EQ(student.model_type, "qwen3_moe");
  EXPECT_EQ(teacher.model_type, "qwen3");
  EXPECT_EQ(student.num_experts, 4);
  EXPECT_EQ(student.num_experts_per_tok, 2);
  EXPECT_TRUE(student.norm_topk_prob);
  EXPECT_FALSE(student.tie_word_embeddings);
  EXPECT_EQ(teacher.num_experts, 0);
  for (const auto& c : {student, teacher}) {
    EXPECT_EQ(c.vocab_size, tokenizer->vocab_size());
    EXPECT_EQ(c.eos_token_id, std::vector<int64_t>{*tokenizer->token_to_id("<|im_end|>")});
    EXPECT_EQ(c.pad_token_id, tokenizer->token_to_id("<|endoftext|>"));
  }
  // The chat template reached both model directories.
  for (const auto& dir : {paths_.student, paths_.teacher}) {
    const auto config = nlohmann::json::parse(read_file(dir / "tokenizer_config.json"));
    EXPECT_NE(config.value("chat_template", "").find("<|im_start|>"), std::string::npos) << dir;
  }
}

TEST_F(MicroLab, ARebuildReusesEveryStep) {
  const nlohmann::json before = read_lab_manifest(paths_.dir);
  const auto mtime = fs::last_write_time(paths_.student / "model.safetensors");
  build_lab(micro_options(paths_.dir));
  const nlohmann::json after = read_lab_manifest(paths_.dir);
  EXPECT_EQ(after["steps"], before["steps"]);
  EXPECT_EQ(fs::last_write_time(paths_.student / "model.safetensors"), mtime);
}

TEST_F(MicroLab, RefusesAnotherSeedWithoutForce) {
  try {
    build_lab(micro_options(paths_.dir, /*seed=*/7));
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("micro lab with seed 0"), std::string::npos) << what;
    EXPECT_NE(what.find("--force"), std::string::npos) << what;
  }
  EXPECT_TRUE(lab_is_built(paths_.dir, micro_size(), 0));
}

// Runs last among the MicroLab tests (gtest keeps definition order): it rebuilds parts.
TEST_F(MicroLab, ATamperedTeacherIsRetrainedAndTheEarlierStepsAreKept) {
  const nlohmann::json before = read_lab_manifest(paths_.dir);
  {
    std::ofstream f(paths_.teacher / "config.json", std::ios::app);
    f << " ";
  }
  EXPECT_FALSE(lab_is_built(paths_.dir, micro_size(), 0));
  build_lab(micro_options(paths_.dir));
  EXPECT_TRUE(lab_is_built(paths_.dir, micro_size(), 0));
  const nlohmann::json after = read_lab_manifest(paths_.dir);
  for (const char* step : {"corpus", "tokenizer", "student"}) EXPECT_EQ(after["steps"][step], before["steps"][step]) << step;
  // Retrained from the same seed and data: the same weights as before.
  EXPECT_EQ(after["steps"]["teacher"]["outputs"], before["steps"]["teacher"]["outputs"]);
}

}  // namespace
}  // namespace character::lab
