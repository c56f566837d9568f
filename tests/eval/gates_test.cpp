// Quality gates (eval/gates.h) on the hand-written sample reports
// tests/eval/data/report_{moe,dense}.json: each gate passes, fails and skips
// where it should, thresholds load from YAML/JSON with errors naming file and
// key, JUnit XML parses back with the right counts, and `character gate` exits
// 0 / 10 / an error code as docs/gates.md says.
#include "eval/gates.h"

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <fstream>

#include "base/atomic_file.h"
#include "base/error.h"
#include "tests/eval/xml_dom.h"
#include "tests/test_support.h"

namespace character::eval {
namespace {

using nlohmann::json;
using testing::TempDir;
namespace fs = std::filesystem;

json sample(const std::string& name) {
  const auto path = testing::source_dir() / "tests/eval/data" / name;
  return json::parse(read_file(path));
}

const GateResult& gate(const GateOutcome& outcome, const std::string& name) {
  for (const auto& g : outcome.gates)
    if (g.name == name) return g;
  throw std::runtime_error("no gate " + name);
}

// The message of the character::Error that `f` throws ("" when none).
template <typename E, typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected an exception";
  return "";
}

TEST(Gates, MoeSampleFailsFourGatesWithValuesAndNotes) {
  const GateOutcome outcome = evaluate_gates(sample("report_moe.json"), GateThresholds{}, "report_moe.json");
  ASSERT_EQ(outcome.gates.size(), 5u);  // no router gate unless untrained_router: fail
  EXPECT_FALSE(outcome.passed());

  const GateResult& rate = gate(outcome, "in_character_rate");
  EXPECT_EQ(rate.verdict, GateVerdict::kFail);
  EXPECT_DOUBLE_EQ(*rate.value, 0.7);
  EXPECT_DOUBLE_EQ(rate.threshold, 0.8);
  EXPECT_EQ(rate.comparison, ">=");
  EXPECT_EQ(rate.note, "574 of 820 responses in character");

  const GateResult& category = gate(outcome, "min_category_rate");
  EXPECT_EQ(category.verdict, GateVerdict::kFail);
  EXPECT_DOUBLE_EQ(*category.value, 0.4);
  EXPECT_EQ(category.note, "lowest category: continuation (48 of 120 responses)");

  const GateResult& flips = gate(outcome, "paraphrase_flip_rate");
  EXPECT_EQ(flips.verdict, GateVerdict::kFail);
  EXPECT_EQ(flips.comparison, "<=");
  EXPECT_DOUBLE_EQ(*flips.value, 0.189);
  EXPECT_EQ(flips.note, "31 of 164 pairs flip; most: please (0.293)");

  // Σ covered rates / k per layer at N=16: L0 (2 − 0.28)/2 = 0.86, L1 (2 − 0.05 − 0.12 − 0.005)/2 = 0.9125.
  const GateResult& coverage = gate(outcome, "probe_coverage");
  EXPECT_EQ(coverage.verdict, GateVerdict::kFail);
  EXPECT_DOUBLE_EQ(*coverage.value, 0.88625);
  EXPECT_EQ(coverage.note,
            "under-trained experts the probe reaches: L0 E5 (12 tokens, 28.0% of positions), L1 E5 (0 tokens, 12.0% of "
            "positions), L1 E1 (3 tokens, 5.0% of positions), L1 E7 (0 tokens, 0.5% of positions)");  // L0 E7: rate 0, not reached

  const GateResult& nan = gate(outcome, "no_nan");
  EXPECT_EQ(nan.verdict, GateVerdict::kPass);
  EXPECT_DOUBLE_EQ(*nan.value, 0.0);
}

TEST(Gates, DenseSamplePassesAndSkipsCoverage) {
  const GateOutcome outcome = evaluate_gates(sample("report_dense.json"), GateThresholds{}, "report_dense.json");
  EXPECT_TRUE(outcome.passed());
  EXPECT_EQ(gate(outcome, "in_character_rate").verdict, GateVerdict::kPass);
  EXPECT_EQ(gate(outcome, "min_category_rate").verdict, GateVerdict::kPass);
  EXPECT_DOUBLE_EQ(*gate(outcome, "min_category_rate").value, 0.7083);
  EXPECT_EQ(gate(outcome, "paraphrase_flip_rate").verdict, GateVerdict::kPass);
  const GateResult& coverage = gate(outcome, "probe_coverage");
  EXPECT_EQ(coverage.verdict, GateVerdict::kSkip);
  EXPECT_FALSE(coverage.value.has_value());
  EXPECT_EQ(coverage.note, "dense model: no experts to cover");
  EXPECT_TRUE(outcome.notes.empty());  // the router note is for MoE students only
}

TEST(Gates, ThresholdsAreInclusiveAtTheBoundary) {
  GateThresholds t;
  t.min_in_character_rate = 0.7;    // value 0.7
  t.min_category_rate = 0.4;        // value 0.4
  t.max_paraphrase_flip_rate = 0.189;
  t.min_probe_coverage = 0.88625;
  const GateOutcome outcome = evaluate_gates(sample("report_moe.json"), t, "moe");
  for (const auto& g : outcome.gates) EXPECT_EQ(g.verdict, GateVerdict::kPass) << g.name;
  EXPECT_TRUE(outcome.passed());
  t.min_category_rate = 0.4001;
  EXPECT_EQ(gate(evaluate_gates(sample("report_moe.json"), t, "moe"), "min_category_rate").verdict, GateVerdict::kFail);
}

TEST(Gates, CoverageIsRecomputedAtAnotherLossTokenThreshold) {
  GateThresholds t;
  const json report = sample("report_moe.json");
  // N=10: L0 E5 (12 tokens) becomes covered: L0 2/2 = 1, L1 0.9125 → 0.95625.
  t.coverage_min_loss_tokens = 10;
  const GateResult at10 = gate(evaluate_gates(report, t, "moe"), "probe_coverage");
  EXPECT_NEAR(*at10.value, 0.95625, 1e-12);
  EXPECT_EQ(at10.verdict, GateVerdict::kPass);
  EXPECT_NE(at10.note.find("recomputed at 10 loss tokens (report used 16)"), std::string::npos) << at10.note;
  EXPECT_EQ(at10.note.find("L0 E5"), std::string::npos) << at10.note;  // covered now
  // N=1000: only L1 E0 (1200 tokens, rate 0.5) is covered: (0 + 0.5/2)/2 = 0.125.
  t.coverage_min_loss_tokens = 1000;
  EXPECT_NEAR(*gate(evaluate_gates(report, t, "moe"), "probe_coverage").value, 0.125, 1e-12);
  // N=0: every expert is covered.
  t.coverage_min_loss_tokens = 0;
  EXPECT_NEAR(*gate(evaluate_gates(report, t, "moe"), "probe_coverage").value, 1.0, 1e-12);
}

TEST(Gates, CoverageSkipsWithoutCoverageData) {
  json report = sample("report_moe.json");
  report["routing"]["coverage"] = nullptr;
  const GateResult g = gate(evaluate_gates(report, GateThresholds{}, "moe"), "probe_coverage");
  EXPECT_EQ(g.verdict, GateVerdict::kSkip);
  EXPECT_NE(g.note.find("--coverage"), std::string::npos) << g.note;
  report["routing"] = nullptr;
  EXPECT_EQ(gate(evaluate_gates(report, GateThresholds{}, "moe"), "probe_coverage").verdict, GateVerdict::kSkip);
}

TEST(Gates, FlipRateSkipsWithoutVariants) {
  json report = sample("report_dense.json");
  report["settings"]["variants"] = json::array();
  report["probe"]["paraphrase"] = {{"pairs", 0}, {"flips", 0}, {"flip_rate", nullptr}};
  GateResult g = gate(evaluate_gates(report, GateThresholds{}, "dense"), "paraphrase_flip_rate");
  EXPECT_EQ(g.verdict, GateVerdict::kSkip);
  EXPECT_FALSE(g.value.has_value());
  EXPECT_EQ(g.note, "no paraphrase variants in this eval (settings.variants is empty)");
  report["probe"]["paraphrase"] = nullptr;
  EXPECT_EQ(gate(evaluate_gates(report, GateThresholds{}, "dense"), "paraphrase_flip_rate").verdict, GateVerdict::kSkip);
}

TEST(Gates, NanFailsNamingWhereAndCanBeDisabled) {
  json report = sample("report_dense.json");
  report["nan"] = {{"found", true}, {"where", {"probe.categories[2].rate", "routing.drift.per_layer[1]"}}};
  report["probe"]["overall"]["rate"] = nullptr;  // NaN is written as null
  const GateOutcome outcome = evaluate_gates(report, GateThresholds{}, "dense");
  const GateResult& nan = gate(outcome, "no_nan");
  EXPECT_EQ(nan.verdict, GateVerdict::kFail);
  EXPECT_DOUBLE_EQ(*nan.value, 2.0);
  EXPECT_EQ(nan.note, "NaN/Inf at: probe.categories[2].rate, routing.drift.per_layer[1]");
  const GateResult& rate = gate(outcome, "in_character_rate");
  EXPECT_EQ(rate.verdict, GateVerdict::kFail);  // a null rate never passes
  EXPECT_FALSE(rate.value.has_value());
  EXPECT_NE(rate.note.find("NaN"), std::string::npos);

  GateThresholds off;
  off.require_no_nan = false;
  EXPECT_EQ(gate(evaluate_gates(report, off, "dense"), "no_nan").verdict, GateVerdict::kSkip);
}

TEST(Gates, CategoriesWithoutResponsesAreNotTheLowest) {
  json report = sample("report_dense.json");
  report["probe"]["categories"].push_back({{"name", "short2"}, {"variants", 0}, {"responses", 0}, {"in_character", 0},
                                           {"rate", nullptr}, {"ci_low", nullptr}, {"ci_high", nullptr}});
  const GateResult g = gate(evaluate_gates(report, GateThresholds{}, "dense"), "min_category_rate");
  EXPECT_EQ(g.verdict, GateVerdict::kPass);
  EXPECT_EQ(g.note, "lowest category: continuation (17 of 24 responses)");
  report["probe"]["categories"][0]["rate"] = nullptr;  // NaN in a category that has responses
  EXPECT_EQ(gate(evaluate_gates(report, GateThresholds{}, "dense"), "min_category_rate").verdict, GateVerdict::kFail);
}

TEST(Gates, NoResponsesIsAFailureNotAPass) {
  json report = sample("report_dense.json");
  report["probe"]["overall"] = {{"responses", 0}, {"in_character", 0}, {"rate", 0.0}};
  const GateResult g = gate(evaluate_gates(report, GateThresholds{}, "dense"), "in_character_rate");
  EXPECT_EQ(g.verdict, GateVerdict::kFail);
  EXPECT_EQ(g.note, "no probe responses");
}

TEST(Gates, UntrainedRouterNoteNamesTheRemedyAndCanFail) {
  const json moe = sample("report_moe.json");
  GateOutcome outcome = evaluate_gates(moe, GateThresholds{}, "moe");
  ASSERT_EQ(outcome.notes.size(), 1u);
  EXPECT_NE(outcome.notes[0].find("--train-router lora"), std::string::npos);
  EXPECT_NE(outcome.notes[0].find("\"Tell me more please.\""), std::string::npos);

  GateThresholds strict;
  strict.untrained_router = "fail";
  outcome = evaluate_gates(moe, strict, "moe");
  ASSERT_EQ(outcome.gates.size(), 6u);
  EXPECT_EQ(gate(outcome, "router_trained").verdict, GateVerdict::kFail);
  EXPECT_NE(gate(outcome, "router_trained").note.find("--train-router lora"), std::string::npos);

  json trained = moe;
  trained["model"]["train_router"] = "lora";
  outcome = evaluate_gates(trained, strict, "moe");
  EXPECT_TRUE(outcome.notes.empty());
  EXPECT_EQ(gate(outcome, "router_trained").verdict, GateVerdict::kPass);

  json base = moe;  // no adapter: the base model's router is not "untrained"
  base["model"]["adapter"] = nullptr;
  base["model"]["train_router"] = nullptr;
  outcome = evaluate_gates(base, strict, "moe");
  EXPECT_TRUE(outcome.notes.empty());
  EXPECT_EQ(gate(outcome, "router_trained").verdict, GateVerdict::kSkip);

  outcome = evaluate_gates(sample("report_dense.json"), strict, "dense");  // train_router "none" on a dense model
  EXPECT_TRUE(outcome.notes.empty());
  EXPECT_EQ(gate(outcome, "router_trained").verdict, GateVerdict::kSkip);
  EXPECT_TRUE(outcome.passed());
}

TEST(Gates, ReportsMissingWhatAGateNeedsAreFormatErrors) {
  json report = sample("report_moe.json");
  report["probe"].erase("overall");
  std::string message = error_of<FormatError>([&] { evaluate_gates(report, GateThresholds{}, "runs/x/eval/report.json"); });
  EXPECT_NE(message.find("runs/x/eval/report.json: probe.overall is missing"), std::string::npos) << message;

  report = sample("report_moe.json");
  report["probe"]["categories"][1].erase("rate");
  message = error_of<FormatError>([&] { evaluate_gates(report, GateThresholds{}, "r.json"); });
  EXPECT_NE(message.find("r.json: does not match the report.json schema"), std::string::npos) << message;

  report = sample("report_moe.json");
  report["format"] = "something-else";
  message = error_of<FormatError>([&] { evaluate_gates(report, GateThresholds{}, "r.json"); });
  EXPECT_NE(message.find("expected \"character-eval-report\""), std::string::npos) << message;
}

TEST(GateThresholds, LoadFromRunConfigGatesMappingAndFromJson) {
  TempDir dir;
  write_file_atomic(dir / "run.yaml",
                    "persona: pirate\nscale: mini\ngates:\n  min_in_character_rate: 0.75\n  min_category_rate: 0.5\n"
                    "  coverage_min_loss_tokens: 32\n  require_no_nan: false\n  untrained_router: fail\n");
  GateThresholds t = load_gate_thresholds(dir / "run.yaml");
  EXPECT_DOUBLE_EQ(t.min_in_character_rate, 0.75);
  EXPECT_DOUBLE_EQ(t.min_category_rate, 0.5);
  EXPECT_DOUBLE_EQ(t.max_paraphrase_flip_rate, 0.15);  // default kept
  EXPECT_EQ(t.coverage_min_loss_tokens, 32);
  EXPECT_FALSE(t.require_no_nan);
  EXPECT_EQ(t.untrained_router, "fail");

  write_file_atomic(dir / "gates.json", R"({"max_paraphrase_flip_rate": 0.25, "min_probe_coverage": 1})");
  t = load_gate_thresholds(dir / "gates.json");
  EXPECT_DOUBLE_EQ(t.max_paraphrase_flip_rate, 0.25);
  EXPECT_DOUBLE_EQ(t.min_probe_coverage, 1.0);
  EXPECT_DOUBLE_EQ(t.min_in_character_rate, 0.80);

  write_file_atomic(dir / "empty.yaml", "");
  EXPECT_EQ(to_json(load_gate_thresholds(dir / "empty.yaml")), to_json(GateThresholds{}));

  // to_json and back is the identity.
  EXPECT_EQ(to_json(gate_thresholds_from_json(to_json(t), "x")), to_json(t));
}

TEST(GateThresholds, ErrorsNameTheFileTheKeyAndWhatWasExpected) {
  TempDir dir;
  const auto check = [&](const std::string& yaml, const std::vector<std::string>& parts) {
    write_file_atomic(dir / "bad.yaml", yaml);
    const std::string message = error_of<ConfigError>([&] { load_gate_thresholds(dir / "bad.yaml"); });
    EXPECT_NE(message.find((dir / "bad.yaml").string()), std::string::npos) << message;
    for (const auto& part : parts) EXPECT_NE(message.find(part), std::string::npos) << "'" << part << "' in: " << message;
  };
  check("gates:\n  min_rate: 0.5\n", {"unknown key 'min_rate'", "min_in_character_rate, min_category_rate"});
  check("min_rate: 0.5\n", {"unknown key 'min_rate'"});
  check("gates:\n  min_category_rate: high\n", {"gates.min_category_rate", "found \"high\" (string)", "expected a number in [0, 1]"});
  check("gates:\n  min_category_rate: \"0.5\"\n", {"gates.min_category_rate", "(string)"});  // quoted: a string
  check("gates:\n  max_paraphrase_flip_rate: 1.5\n", {"gates.max_paraphrase_flip_rate", "found 1.5"});
  check("gates:\n  coverage_min_loss_tokens: 2.5\n", {"gates.coverage_min_loss_tokens", "expected an integer >= 0"});
  check("gates:\n  coverage_min_loss_tokens: -1\n", {"gates.coverage_min_loss_tokens", "expected an integer >= 0"});
  check("gates:\n  require_no_nan: maybe\n", {"gates.require_no_nan", "expected true or false"});
  check("gates:\n  untrained_router: ignore\n", {"gates.untrained_router", "expected \"warn\" or \"fail\""});
  check("gates: [1, 2]\n", {"gates: found [1,2] (array)", "expected a mapping"});
  check("gates: {min_category_rate: 0.5\n", {"not valid YAML/JSON"});

  const std::string missing = error_of<IoError>([&] { load_gate_thresholds(dir / "nope.yaml"); });
  EXPECT_NE(missing.find("nope.yaml"), std::string::npos) << missing;
}

TEST(GateFiles, JunitXmlParsesBackWithOneTestcasePerGate) {
  const GateOutcome outcome = evaluate_gates(sample("report_moe.json"), GateThresholds{}, "moe");
  const auto root = testing::parse_xml(to_junit_xml(outcome));
  ASSERT_TRUE(root);
  EXPECT_EQ(root->name, "testsuites");
  const auto suites = root->all("testsuite");
  ASSERT_EQ(suites.size(), 1u);
  EXPECT_EQ(suites[0]->attr("name"), "character.gates");
  EXPECT_EQ(suites[0]->attr("tests"), "5");
  EXPECT_EQ(suites[0]->attr("failures"), "4");
  EXPECT_EQ(suites[0]->attr("skipped"), "0");
  EXPECT_EQ(suites[0]->attr("errors"), "0");
  const auto cases = suites[0]->all("testcase");
  ASSERT_EQ(cases.size(), 5u);
  for (std::size_t i = 0; i < cases.size(); ++i) EXPECT_EQ(cases[i]->attr("name"), outcome.gates[i].name);
  EXPECT_EQ(suites[0]->all("failure").size(), 4u);
  EXPECT_TRUE(cases[4]->all("failure").empty());  // no_nan passed
  const auto* failure = cases[0]->all("failure")[0];
  EXPECT_EQ(failure->attr("message"), "in_character_rate = 0.700, expected >= 0.800");
  EXPECT_NE(failure->text.find("574 of 820 responses in character"), std::string::npos);
  // The router note travels as a property.
  const auto properties = suites[0]->all("property");
  ASSERT_EQ(properties.size(), 1u);
  EXPECT_NE(properties[0]->attr("value").find("--train-router lora"), std::string::npos);

  const auto dense = testing::parse_xml(to_junit_xml(evaluate_gates(sample("report_dense.json"), GateThresholds{}, "d")));
  ASSERT_TRUE(dense);
  EXPECT_EQ(dense->all("testsuite")[0]->attr("failures"), "0");
  EXPECT_EQ(dense->all("testsuite")[0]->attr("skipped"), "1");
  const auto skipped = dense->all("skipped");
  ASSERT_EQ(skipped.size(), 1u);
  EXPECT_EQ(skipped[0]->attr("message"), "dense model: no experts to cover");
}

TEST(GateFiles, JunitEscapesHostileText) {
  GateOutcome outcome;
  const std::string hostile = "a<b & \"c\" 'd' ]]> </testcase>\x01 end";
  outcome.gates.push_back({"weird<name>", 0.5, 0.6, ">=", GateVerdict::kFail, hostile});
  outcome.gates.push_back({"skipper", std::nullopt, 0.1, "<=", GateVerdict::kSkip, hostile});
  outcome.notes.push_back(hostile);
  const auto root = testing::parse_xml(to_junit_xml(outcome, "suite&\"name\""));
  ASSERT_TRUE(root);
  const std::string expected = "a<b & \"c\" 'd' ]]> </testcase>\xEF\xBF\xBD end";  // control character → U+FFFD
  const auto cases = root->all("testcase");
  ASSERT_EQ(cases.size(), 2u);
  EXPECT_EQ(cases[0]->attr("name"), "weird<name>");
  EXPECT_EQ(root->all("testsuite")[0]->attr("name"), "suite&\"name\"");
  EXPECT_NE(cases[0]->all("failure")[0]->text.find(expected), std::string::npos);
  EXPECT_EQ(cases[1]->all("skipped")[0]->attr("message"), expected);
  EXPECT_EQ(root->all("property")[0]->attr("value"), expected);
}

TEST(GateFiles, WritesGatesJsonAndJunitAtomically) {
  TempDir dir;
  const GateThresholds t;
  const GateOutcome outcome = evaluate_gates(sample("report_moe.json"), t, "moe");
  write_gate_files(outcome, t, dir.path());
  const json gates = json::parse(read_file(dir / "gates.json"));
  EXPECT_EQ(gates["format"], "character-gates");
  EXPECT_EQ(gates["version"], 1);
  EXPECT_EQ(gates["passed"], false);
  EXPECT_EQ(gates["thresholds"], to_json(t));
  ASSERT_EQ(gates["gates"].size(), 5u);
  EXPECT_EQ(gates["gates"][3]["name"], "probe_coverage");
  EXPECT_EQ(gates["gates"][3]["verdict"], "fail");
  EXPECT_DOUBLE_EQ(gates["gates"][3]["value"].get<double>(), 0.88625);
  EXPECT_EQ(gates["notes"].size(), 1u);
  EXPECT_TRUE(testing::parse_xml(read_file(dir / "gates.junit.xml")));
  int files = 0;
  for (const auto& entry : fs::directory_iterator(dir.path())) files += entry.is_regular_file();
  EXPECT_EQ(files, 2);  // no temp files left behind
}

TEST(GateFiles, TableIsAlignedAndSaysFailed) {
  const std::string table = format_gate_table(evaluate_gates(sample("report_moe.json"), GateThresholds{}, "moe"));
  std::istringstream lines(table);
  std::string line;
  std::vector<std::string> rows;
  while (std::getline(lines, line)) rows.push_back(line);
  ASSERT_GE(rows.size(), 8u);
  const std::size_t column = rows[0].find("verdict");
  EXPECT_EQ(rows[1].substr(column, 4), "FAIL");  // in_character_rate
  EXPECT_EQ(rows[5].substr(column, 4), "pass");  // no_nan
  EXPECT_EQ(rows[1].substr(0, 17), "in_character_rate");
  EXPECT_NE(rows[1].find(">= 0.800"), std::string::npos);
  EXPECT_EQ(rows[6], "gates: FAILED");
  EXPECT_EQ(rows[7].rfind("note: ", 0), 0u);
}

// ---- `character gate` as a process -------------------------------------------

fs::path character_binary() {
  return fs::read_symlink("/proc/self/exe").parent_path().parent_path() / "character";
}

// Runs `character ARGS` with stdout+stderr to `log`; returns the exit code.
int run_character(const std::string& args, const fs::path& log) {
  const std::string command = "'" + character_binary().string() + "' " + args + " > '" + log.string() + "' 2>&1";
  const int status = std::system(command.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

fs::path eval_dir_with(const TempDir& dir, const std::string& name, const std::string& sample_name) {
  const fs::path eval = dir / name;
  fs::create_directories(eval);
  fs::copy_file(testing::source_dir() / "tests/eval/data" / sample_name, eval / "report.json");
  return eval;
}

TEST(GateCommand, ExitCodesZeroTenAndErrors) {
  ASSERT_TRUE(fs::exists(character_binary())) << character_binary() << " (build the `character` target)";
  TempDir dir;
  const fs::path log = dir / "log.txt";

  const fs::path dense = eval_dir_with(dir, "dense", "report_dense.json");
  EXPECT_EQ(run_character("gate '" + dense.string() + "'", log), 0) << read_file(log);
  EXPECT_NE(read_file(log).find("gates: passed"), std::string::npos) << read_file(log);
  EXPECT_EQ(json::parse(read_file(dense / "gates.json"))["passed"], true);
  EXPECT_TRUE(testing::parse_xml(read_file(dense / "gates.junit.xml")));

  const fs::path moe = eval_dir_with(dir, "moe", "report_moe.json");
  EXPECT_EQ(run_character("gate '" + moe.string() + "'", log), 10) << read_file(log);
  const std::string out = read_file(log);
  EXPECT_NE(out.find("gates: FAILED"), std::string::npos) << out;
  EXPECT_NE(out.find("quality gates failed: in_character_rate, min_category_rate, paraphrase_flip_rate, probe_coverage"),
            std::string::npos) << out;
  EXPECT_EQ(json::parse(read_file(moe / "gates.json"))["passed"], false);

  // A run directory: RUN/eval/report.json, thresholds from RUN/manifest.json's config.gates.
  const fs::path run = dir / "run";
  eval_dir_with(dir, "run/eval", "report_moe.json");
  write_file_atomic(run / "manifest.json",
                    R"({"config": {"gates": {"min_in_character_rate": 0.6, "min_category_rate": 0.3,
                        "max_paraphrase_flip_rate": 0.2, "min_probe_coverage": 0.8}}})");
  EXPECT_EQ(run_character("gate '" + (run / "eval").string() + "/' --json", log), 0) << read_file(log);
  const json printed = json::parse(read_file(log));
  EXPECT_EQ(printed["passed"], true);
  EXPECT_EQ(printed["thresholds"]["min_category_rate"], 0.3);
  EXPECT_TRUE(fs::exists(run / "eval" / "gates.junit.xml"));
  EXPECT_EQ(run_character("gate '" + run.string() + "'", log), 0) << read_file(log);  // RUN → RUN/eval

  // --config wins over the manifest's thresholds.
  write_file_atomic(dir / "strict.yaml", "gates:\n  min_in_character_rate: 0.99\n");
  EXPECT_EQ(run_character("gate '" + run.string() + "' --config '" + (dir / "strict.yaml").string() + "'", log), 10);

  // Errors: bad thresholds 2, malformed report 3, missing report 5, missing argument 106.
  write_file_atomic(dir / "bad.yaml", "gates:\n  min_rate: 1\n");
  EXPECT_EQ(run_character("gate '" + dense.string() + "' --config '" + (dir / "bad.yaml").string() + "'", log), 2);
  EXPECT_NE(read_file(log).find("unknown key 'min_rate'"), std::string::npos) << read_file(log);
  const fs::path broken = dir / "broken";
  fs::create_directories(broken);
  write_file_atomic(broken / "report.json", "{\"format\": \"character-eval-report\", ");
  EXPECT_EQ(run_character("gate '" + broken.string() + "'", log), 3) << read_file(log);
  EXPECT_NE(read_file(log).find("report.json: not valid JSON"), std::string::npos) << read_file(log);
  const fs::path empty_run = dir / "empty_run";
  fs::create_directories(empty_run);
  write_file_atomic(empty_run / "manifest.json", "{}");
  EXPECT_EQ(run_character("gate '" + empty_run.string() + "'", log), 5) << read_file(log);
  EXPECT_NE(read_file(log).find("eval/report.json: missing"), std::string::npos) << read_file(log);
  EXPECT_EQ(run_character("gate '" + (dir / "nowhere").string() + "'", log), 5) << read_file(log);
  EXPECT_EQ(run_character("gate", log), 106) << read_file(log);
}

TEST(ReportCommand, RerendersMarkdownAndHtmlFromReportJson) {
  ASSERT_TRUE(fs::exists(character_binary())) << character_binary() << " (build the `character` target)";
  TempDir dir;
  const fs::path moe = eval_dir_with(dir, "moe", "report_moe.json");
  EXPECT_EQ(run_character("report '" + moe.string() + "' --markdown", dir / "log.txt"), 0) << read_file(dir / "log.txt");
  EXPECT_EQ(read_file(dir / "log.txt"), read_file(moe / "report.md"));
  EXPECT_NE(read_file(moe / "report.html").find("<svg"), std::string::npos);
  EXPECT_EQ(run_character("report '" + (dir / "nowhere").string() + "'", dir / "log.txt"), 5);
}

}  // namespace
}  // namespace character::eval
