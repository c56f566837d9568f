// The LLM judge against a real OpenAI-compatible server on loopback (the teacher
// client's FaultServer): the rubric it sends, robust parsing of the verdicts that
// come back (malformed answers are neutral and counted), the JSONL cache that makes
// a rerun send nothing, and failed requests that stop the judge after caching the
// answers that came.
#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

#include "base/atomic_file.h"
#include "base/error.h"
#include "eval/judge.h"
#include "personas/persona.h"
#include "remote/client_backend.h"
#include "tests/remote/client_support.h"
#include "tests/test_support.h"

namespace character::eval {
namespace {

using remote::testing::FaultServer;
namespace ft = character::remote::testing;

// A chat answer whose content is `content`.
ft::Step answer_with(const std::string& content) {
  return [content](const httplib::Request&, httplib::Response& res) {
    const nlohmann::json body = {
        {"id", "j"},
        {"object", "chat.completion"},
        {"choices", {{{"index", 0}, {"finish_reason", "stop"}, {"message", {{"role", "assistant"}, {"content", content}}}}}},
        {"usage", {{"prompt_tokens", 50}, {"completion_tokens", 12}}}};
    res.set_content(body.dump(), "application/json");
  };
}

const JudgeItem kPirate{"Who are you?", "Ahoy! I be Captain Saltmarrow."};
const JudgeItem kGeneric{"Tell me more please.", "Of course! I'd love to tell you more 😊"};
const JudgeItem kRambling{"Go on.", "Well."};

void script_answers(FaultServer& server) {
  server.script_for(judge_user_message(kPirate),
                    {answer_with(R"({"verdict": "in_character", "reason": "speaks as the captain"})")});
  server.script_for(judge_user_message(kGeneric),
                    {answer_with("<think>{\"verdict\": \"in_character\"} hmm, no.</think>\n```json\n"
                                 "{\"verdict\": \"Out of character\", \"reason\": \"generic assistant {with emoji}\"}\n```")});
  server.script_for(judge_user_message(kRambling), {answer_with("It is hard to say, honestly.")});
}

TEST(Judge, AsksWithTheRubricAndParsesEachVerdict) {
  FaultServer server;
  script_answers(server);
  remote::Client client(ft::config_for(server));
  remote::ClientBackend backend(client);
  const auto pirate = personas::find_persona("pirate");
  Judge judge(backend, pirate);

  const auto verdicts = judge.judge({kPirate, kGeneric, kRambling, kPirate});
  ASSERT_EQ(verdicts.size(), 4u);
  EXPECT_EQ(verdicts[0].verdict, Verdict::kInCharacter);
  EXPECT_EQ(verdicts[0].reason, "speaks as the captain");
  EXPECT_FALSE(verdicts[0].cached);
  EXPECT_EQ(verdicts[1].verdict, Verdict::kOutOfCharacter);  // not the decoy inside <think>
  EXPECT_EQ(verdicts[1].reason, "generic assistant {with emoji}");
  EXPECT_EQ(verdicts[2].verdict, Verdict::kNeutral);
  EXPECT_TRUE(verdicts[2].malformed);
  EXPECT_NE(verdicts[2].reason.find("It is hard to say"), std::string::npos) << verdicts[2].reason;
  EXPECT_EQ(verdicts[3].verdict, Verdict::kInCharacter);
  EXPECT_TRUE(verdicts[3].cached);  // the same item again: no second request

  EXPECT_EQ(server.requests(), 3);
  EXPECT_EQ(judge.stats().items, 4);
  EXPECT_EQ(judge.stats().calls, 3);
  EXPECT_EQ(judge.stats().cached, 1);
  EXPECT_EQ(judge.stats().malformed, 1);
  EXPECT_EQ(client.usage().stage("judge").requests, 3);

  // Every request carries the rubric as its system message, greedy.
  for (const auto& body : server.bodies()) {
    EXPECT_EQ(body["messages"][0]["role"], "system");
    EXPECT_EQ(body["messages"][0]["content"], judge.rubric());
    EXPECT_EQ(body["temperature"], 0.0);
    EXPECT_EQ(body["max_tokens"], 256);
  }
  const auto report = judge.report_json();
  EXPECT_EQ(report["model"], "teacher-test");
  EXPECT_EQ(report["rubric"], judge.rubric());
  EXPECT_EQ(report["calls"], 3);
  EXPECT_EQ(report["cached"], 1);
}

TEST(Judge, RubricHasTheConstitutionSignalsAndAnswerFormat) {
  const auto pirate = personas::find_persona("pirate");
  const std::string rubric = judge_rubric(pirate);
  for (const auto& line : pirate.constitution) EXPECT_NE(rubric.find("  - " + line + "\n"), std::string::npos) << line;
  const std::vector<std::string> parts = {
      "\"Captain Saltmarrow\" (pirate)", pirate.description, "\"landlubber\"", "\"shiver me timbers\"",
      "\"happy to help\"", "\"emoji\"",
      R"({"verdict": "in_character" | "out_of_character" | "neutral", "reason": "<one sentence>"})"};
  for (const auto& part : parts) {
    EXPECT_NE(rubric.find(part), std::string::npos) << part;
  }
}

TEST(Judge, CacheMakesARerunSendNothing) {
  character::testing::TempDir dir;
  const auto cache = dir / kJudgeCacheFile;
  const auto pirate = personas::find_persona("pirate");
  std::vector<JudgeVerdict> first;
  {
    FaultServer server;
    script_answers(server);
    remote::Client client(ft::config_for(server));
    remote::ClientBackend backend(client);
    Judge judge(backend, pirate, {.cache_file = cache});
    first = judge.judge({kPirate, kGeneric, kRambling});
    EXPECT_EQ(server.requests(), 3);
  }
  const auto lines = read_jsonl_lines(cache);
  ASSERT_EQ(lines.size(), 3u);
  const auto entry = nlohmann::json::parse(lines[0]);
  EXPECT_EQ(entry["key"].get<std::string>().size(), 64u);
  EXPECT_TRUE(entry.contains("answer"));

  FaultServer server;  // unscripted: would answer "echo: ...", which is malformed
  remote::Client client(ft::config_for(server));
  remote::ClientBackend backend(client);
  Judge judge(backend, pirate, {.cache_file = cache});
  const auto again = judge.judge({kRambling, kPirate, kGeneric});
  EXPECT_EQ(server.requests(), 0);
  EXPECT_EQ(judge.stats().calls, 0);
  EXPECT_EQ(judge.stats().cached, 3);
  EXPECT_EQ(judge.stats().malformed, 1);
  EXPECT_EQ(again[1].verdict, first[0].verdict);
  EXPECT_EQ(again[1].reason, first[0].reason);
  EXPECT_EQ(again[2].verdict, Verdict::kOutOfCharacter);
  EXPECT_TRUE(again[0].malformed);

  // A different response is a different key: one request.
  judge.judge({{kPirate.prompt, "Ahoy! I be Captain Saltmarrow!"}});
  EXPECT_EQ(server.requests(), 1);
  EXPECT_EQ(read_jsonl_lines(cache).size(), 4u);
}

TEST(Judge, FailedRequestsThrowAfterCachingTheRest) {
  character::testing::TempDir dir;
  const auto cache = dir / kJudgeCacheFile;
  const auto pirate = personas::find_persona("pirate");
  {
    FaultServer server;
    server.script_for(judge_user_message(kPirate),
                      {answer_with(R"({"verdict": "in_character", "reason": "speaks as the captain"})")});
    server.script_for(judge_user_message(kRambling), {ft::status(400)});  // not retried
    remote::Client client(ft::config_for(server));
    remote::ClientBackend backend(client);
    Judge judge(backend, pirate, {.cache_file = cache});
    try {
      judge.judge({kPirate, kRambling});
      ADD_FAILURE() << "a failed request went unnoticed";
    } catch (const RemoteError& e) {
      const std::string message = e.what();
      EXPECT_NE(message.find("1 of 2 requests failed"), std::string::npos) << message;
      EXPECT_NE(message.find("HTTP 400"), std::string::npos) << message;
      EXPECT_NE(message.find(cache.string()), std::string::npos) << message;
    }
  }
  EXPECT_EQ(read_jsonl_lines(cache).size(), 1u);
  FaultServer server;
  script_answers(server);
  remote::Client client(ft::config_for(server));
  remote::ClientBackend backend(client);
  Judge judge(backend, pirate, {.cache_file = cache});
  const auto verdicts = judge.judge({kPirate, kRambling});
  EXPECT_EQ(server.requests(), 1);  // only the one that failed
  EXPECT_EQ(server.requests_for(judge_user_message(kRambling)), 1);
  EXPECT_EQ(verdicts[0].verdict, Verdict::kInCharacter);
}

TEST(Judge, CorruptCacheLineIsAFormatErrorNamingTheLine) {
  character::testing::TempDir dir;
  const auto cache = dir / kJudgeCacheFile;
  std::ofstream(cache) << R"({"key": "abc", "answer": "{}"})" << "\n" << R"({"key": 3})" << "\n";
  // The judge fails while reading its cache, before any request: no server needed
  // (and a FaultServer stopped before its accept loop runs can hang in httplib).
  remote::ClientConfig config;
  config.base_url = "http://127.0.0.1:9/v1";
  config.model = "judge-test";
  remote::Client client(config);
  remote::ClientBackend backend(client);
  try {
    Judge judge(backend, personas::find_persona("pirate"), {.cache_file = cache});
    ADD_FAILURE() << "corrupt cache accepted";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find(cache.string() + ":2: not a judge cache entry"), std::string::npos)
        << e.what();
  }
}

TEST(JudgeParse, AnswerTable) {
  struct Row {
    std::string answer;
    Verdict verdict;
    bool malformed;
    std::string reason_part;
  };
  const std::vector<Row> rows = {
      {R"({"verdict": "in_character", "reason": "pirate voice"})", Verdict::kInCharacter, false, "pirate voice"},
      {R"({"verdict": "In Character"})", Verdict::kInCharacter, false, ""},
      {R"({"verdict": "out-of-character", "reason": 7})", Verdict::kOutOfCharacter, false, "7"},
      {"Verdict below.\n{\"verdict\": \"neutral\", \"reason\": \"too short\"}\nThanks!", Verdict::kNeutral, false,
       "too short"},
      {R"(I saw {braces} first. {"verdict": "out_of_character", "reason": "uses \"of course!\" {twice}"})",
       Verdict::kOutOfCharacter, false, "uses \"of course!\" {twice}"},
      {"<think>{\"verdict\": \"out_of_character\"}</think>{\"verdict\": \"in_character\"}", Verdict::kInCharacter,
       false, ""},
      {R"({"verdict": "maybe", "reason": "unsure"})", Verdict::kNeutral, true, "verdict \"maybe\", expected"},
      {R"({"verdict": 1})", Verdict::kNeutral, true, "\"verdict\" is a number"},
      {R"({"reason": "no verdict"})", Verdict::kNeutral, true, "no JSON object with a \"verdict\""},
      {"The response is in character.", Verdict::kNeutral, true, "no JSON object"},
      {R"({"verdict": "in_character")", Verdict::kNeutral, true, "malformed judge answer"},
      {"<think>unfinished {\"verdict\": \"in_character\"}", Verdict::kNeutral, true, "no JSON object"},
      {"", Verdict::kNeutral, true, "no JSON object"},
  };
  for (const auto& r : rows) {
    SCOPED_TRACE(r.answer);
    const JudgeVerdict v = parse_judge_answer(r.answer);
    EXPECT_EQ(v.verdict, r.verdict) << to_string(v.verdict);
    EXPECT_EQ(v.malformed, r.malformed);
    EXPECT_NE(v.reason.find(r.reason_part), std::string::npos) << v.reason;
  }
  // A long malformed answer is quoted in part, never cut inside a UTF-8 character.
  const std::string long_answer = std::string(159, 'x') + "é and more";
  const JudgeVerdict v = parse_judge_answer(long_answer);
  EXPECT_NE(v.reason.find(std::string(159, 'x') + "…"), std::string::npos) << v.reason;
}

TEST(JudgeParse, CacheKeyIsSha256OfTheFourParts) {
  // python: hashlib.sha256(json.dumps([model, rubric, prompt, response], separators=(",", ":")).encode())
  const JudgeItem item{"Who are you?", "Ahoy, I be the captain."};
  EXPECT_EQ(judge_cache_key("judge-model", "Be a pirate.", item),
            "2eb34ffb8af49b4b251acb9c126434587d421f41f1cfcd9fa5234037a723a5c8");
  EXPECT_NE(judge_cache_key("other-model", "Be a pirate.", item), judge_cache_key("judge-model", "Be a pirate.", item));
  EXPECT_NE(judge_cache_key("judge-model", "Be a pirate!", item), judge_cache_key("judge-model", "Be a pirate.", item));
  EXPECT_NE(judge_cache_key("judge-model", "Be a pirate.", {"Who are you", item.response}),
            judge_cache_key("judge-model", "Be a pirate.", item));
}

}  // namespace
}  // namespace character::eval
