// The pipeline's embedded default (pipeline/lab_default.h): the lab's defaults
// are a preset beneath the YAML file and the flags, applied only when the lab
// stands in for the student or the teacher; --print-config shows the resolved
// values and the lab directory; a run with its own student and teacher leaves
// the lab alone. The lab itself runs in tests/lab/check_lab_pipeline.py.
#include "pipeline/lab_default.h"

#include <gtest/gtest.h>

#include <cstdlib>

#include "base/atomic_file.h"
#include "tests/pipeline/cli_support.h"
#include "tests/test_support.h"

namespace character::pipeline {
namespace {

using character::testing::TempDir;
using nlohmann::json;

TEST(LabDefault, PresetDependsOnWhatTheLabStandsInFor) {
  RunConfig both = default_run_config();
  apply_lab_defaults(both, /*lab_student=*/true, /*lab_teacher=*/true);
  EXPECT_EQ(both.constitution_share, 0.0);
  EXPECT_EQ(both.max_tokens, 96);
  EXPECT_EQ(both.introspection_max_tokens, 96);
  EXPECT_EQ(both.training.learning_rate, 2e-3);
  EXPECT_EQ(both.probe.max_new_tokens, 64);
  // Gates are never part of the preset.
  EXPECT_EQ(to_json(both)["gates"], to_json(default_run_config())["gates"]);

  RunConfig student_only = default_run_config();  // a real teacher: it writes constitution questions
  apply_lab_defaults(student_only, true, false);
  EXPECT_EQ(student_only.constitution_share, 0.5);
  EXPECT_EQ(student_only.training.learning_rate, 2e-3);

  RunConfig teacher_only = default_run_config();  // a real student keeps Tinker's rate
  apply_lab_defaults(teacher_only, false, true);
  EXPECT_EQ(teacher_only.constitution_share, 0.0);
  EXPECT_FALSE(teacher_only.training.learning_rate.has_value());

  RunConfig none = default_run_config();
  apply_lab_defaults(none, false, false);
  EXPECT_EQ(to_json(none), to_json(default_run_config()));
}

TEST(LabDefault, DefaultsInEffectOmitWhatWasChanged) {
  RunConfig c = default_run_config();
  apply_lab_defaults(c, true, true);
  c.max_tokens = 200;
  const std::vector<std::string> lines = lab_defaults_in_effect(c);
  auto has = [&](const std::string& s) { return std::find(lines.begin(), lines.end(), s) != lines.end(); };
  EXPECT_TRUE(has("constitution_share 0")) << ::testing::PrintToString(lines);
  EXPECT_TRUE(has("training.learning_rate 0.002")) << ::testing::PrintToString(lines);
  EXPECT_TRUE(has("introspection_max_tokens 96"));
  for (const auto& line : lines) EXPECT_EQ(line.rfind("max_tokens", 0), std::string::npos) << line;
}

class LabDefaultCli : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* old = std::getenv("CHARACTER_LAB_DIR");
    if (old) old_ = old;
    had_ = old != nullptr;
    setenv("CHARACTER_LAB_DIR", (tmp_ / "labs").c_str(), 1);
  }
  void TearDown() override {
    if (had_) setenv("CHARACTER_LAB_DIR", old_.c_str(), 1);
    else unsetenv("CHARACTER_LAB_DIR");
  }
  json print_config(std::vector<std::string> args) {
    args.insert(args.begin(), {"pipeline", "pirate", "--print-config"});
    return json::parse(character::testing::run_cli(args));
  }
  TempDir tmp_;
  std::string old_;
  bool had_ = false;
};

TEST_F(LabDefaultCli, PrintConfigShowsTheLabPresetBeneathFileAndFlags) {
  const json lab = print_config({"--lab-size", "tiny", "--lab-seed", "2"});
  EXPECT_EQ(lab["student"], "");
  EXPECT_EQ(lab["teacher"]["url"], "");  // never a port: a resumed run serves the teacher again
  EXPECT_EQ(lab["constitution_share"], 0.0);
  EXPECT_EQ(lab["max_tokens"], 96);
  EXPECT_EQ(lab["training"]["learning_rate"], 2e-3);
  EXPECT_EQ(lab["lab"]["size"], "tiny");
  EXPECT_EQ(lab["lab"]["seed"], 2);
  // The directory as it resolved, recorded so that --resume finds the same lab.
  EXPECT_EQ(lab["lab"]["dir"], (tmp_ / "labs" / "tiny-seed2").string());

  const auto yaml = tmp_ / "run.yaml";
  write_file_atomic(yaml, "max_tokens: 200\ntraining:\n  learning_rate: 0.01\n");
  const json over = print_config({"--config", yaml.string(), "--constitution-share", "0.3", "--lab-dir",
                                  (tmp_ / "mine").string(), "--coverage-augment", "--coverage-pool-factor", "2"});
  EXPECT_EQ(over["max_tokens"], 200);
  EXPECT_EQ(over["training"]["learning_rate"], 0.01);
  EXPECT_EQ(over["constitution_share"], 0.3);
  EXPECT_EQ(over["introspection_max_tokens"], 96);  // not overridden: still the lab's
  EXPECT_EQ(over["lab"]["dir"], (tmp_ / "mine").string());
  EXPECT_EQ(over["coverage_augment"], true);
  EXPECT_EQ(over["coverage_pool_factor"], 2.0);

  // --paper-scale is a request: its rate wins over the lab's.
  EXPECT_EQ(print_config({"--paper-scale"})["training"]["learning_rate"], 5e-5);
}

TEST_F(LabDefaultCli, OwnStudentAndTeacherLeaveTheLabOut) {
  const json c = print_config({"--student", "/models/s", "--teacher-url", "http://t/v1", "--teacher-model", "t"});
  EXPECT_EQ(c["constitution_share"], 0.5);
  EXPECT_EQ(c["max_tokens"], 512);
  EXPECT_TRUE(c["training"]["learning_rate"].is_null());
  EXPECT_EQ(c["lab"]["dir"], "");
}

TEST(LabDefault, RuntimeWithoutTheLabPassesStagesThrough) {
  RunConfig c = default_run_config();
  c.persona = "pirate";
  c.student = "/models/s";
  c.teacher.url = "http://t/v1";
  c.teacher.model = "t";
  LabRuntime lab(c, {});
  EXPECT_TRUE(lab.record().is_null());
  EXPECT_EQ(lab.config().teacher.url, "http://t/v1");
  const auto check = lab.wrap("check", [](const StageContext& ctx) {
    StageResult r;
    r.summary = ctx.config.teacher.url;
    return r;
  });
  const StageContext ctx{c, "/tmp/run"};
  EXPECT_EQ(check(ctx).summary, "http://t/v1");
  EXPECT_EQ(teacher_stage_names(), (std::vector<std::string>{"check", "generate-dpo", "introspect"}));
}

}  // namespace
}  // namespace character::pipeline
