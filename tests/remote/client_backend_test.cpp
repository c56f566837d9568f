// ClientBackend: the teacher client behind the completion interface answers as
// the client does (same texts, usage under the caller's stage), hands each
// choice's text to on_delta once, and a batch records a refused request as a
// Failure while the others succeed. Runs against the FaultServer on loopback.
#include <gtest/gtest.h>

#include <map>

#include "remote/client_backend.h"
#include "tests/remote/client_support.h"

namespace character::remote {
namespace {

using testing::FaultServer;
namespace ft = character::remote::testing;

TEST(ClientBackend, SingleRequestsStreamWholeChoices) {
  FaultServer server;
  Client client(ft::config_for(server));
  ClientBackend backend(client);
  EXPECT_EQ(backend.model_id(), "teacher-test");

  ChatRequest request = ft::chat("ahoy");
  request.sampling.n = 2;
  std::map<int, std::string> deltas;
  CallOptions call;
  call.stage = "rejected";
  call.on_delta = [&](int choice, std::string_view text) { deltas[choice] += std::string(text); };
  const Response r = backend.complete_chat(request, call);
  ASSERT_EQ(r.choices.size(), 2u);
  EXPECT_EQ(r.choices[0].text, "echo: ahoy #0");
  EXPECT_EQ(r.choices[1].text, "echo: ahoy #1");
  EXPECT_EQ(deltas, (std::map<int, std::string>{{0, "echo: ahoy #0"}, {1, "echo: ahoy #1"}}));
  EXPECT_EQ(client.usage().stage("rejected").requests, 1);

  CompletionRequest text;
  text.prompt = "Once";
  EXPECT_EQ(backend.complete_text(text).choices.at(0).text, "echo: Once");
  EXPECT_EQ(server.requests(), 2);
}

TEST(ClientBackend, BatchRecordsFailuresAndKeepsOrder) {
  FaultServer server;
  server.script_for("p1", {ft::status(400)});  // not retryable: fails at once
  Client client(ft::config_for(server));
  ClientBackend backend(client);
  std::vector<ChatRequest> requests;
  for (int i = 0; i < 3; ++i) requests.push_back(ft::chat(ft::numbered("p", i)));
  const auto results = backend.complete_chat_batch(requests, ft::in_stage("chosen"));
  ASSERT_EQ(results.size(), 3u);
  EXPECT_TRUE(results[0].ok());
  ASSERT_FALSE(results[1].ok());
  EXPECT_EQ(results[1].failure->http_status, 400);
  ASSERT_TRUE(results[2].ok());
  EXPECT_EQ(results[2].response->choices.at(0).text, "echo: p2");
  EXPECT_EQ(client.usage().stage("chosen").failures, 1);
}

}  // namespace
}  // namespace character::remote
