// The lab tokenizer: trained with the SentencePiece trainer on a small lab corpus,
// its tokenizer.json (vocab + merges derived from the pieces) gives the same ids as
// the SentencePiece library on tokenizer.model, round-trips every corpus text,
// renders ChatML, and the corpus JSONL loads through lora::load_sft_jsonl.
// CHARACTER_LAB_KEEP_TOKENIZER=DIR keeps the trained directory (and DIR/corpus.txt)
// for tests/lab/check_lab_tokenizer.py.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <string>

#include "base/atomic_file.h"
#include "base/error.h"
#include "lab/corpus.h"
#include "lab/tokenizer_train.h"
#include "lora/train_data.h"
#include "model/text/chat.h"
#include "model/text/tokenizer.h"
#include "personas/persona.h"
#include "../test_support.h"

namespace character::lab {
namespace {

namespace fs = std::filesystem;

class LabTokenizer : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir();
    CorpusOptions o;
    o.seed = 5;
    o.generic_conversations = 400;
    o.persona_conversations = 60;
    for (const auto& name : personas::shipped_personas()) o.personas.push_back(personas::find_persona(name));
    corpus_ = new LabCorpus(synthesize_corpus(o));
    write_tokenizer_text(*corpus_, *dir_ / "text.txt");
    train_lab_tokenizer({.text_file = *dir_ / "text.txt", .out_dir = *dir_ / "tok", .vocab_size = 700, .seed = 1,
                         .threads = 1});
    if (const char* keep = std::getenv("CHARACTER_LAB_KEEP_TOKENIZER"); keep && *keep) {
      fs::remove_all(keep);
      fs::copy(*dir_ / "tok", keep, fs::copy_options::recursive);
      write_tokenizer_text(*corpus_, fs::path(keep) / "corpus.txt");
    }
  }
  static void TearDownTestSuite() {
    delete corpus_;
    delete dir_;
  }

  static fs::path tok_dir() { return *dir_ / "tok"; }
  // Every message of the corpus (with its newlines) and a few harder strings.
  static std::vector<std::string> texts() {
    std::vector<std::string> out;
    for (const auto* part : {&corpus_->generic, &corpus_->persona}) {
      for (const auto& c : *part) {
        for (const auto& m : c.messages) out.push_back(m.content);
      }
    }
    for (const char* s : {"  two leading spaces", "trailing spaces  ", "tab\there", "\n\nnew lines\n",
                          "emoji 😊🙂✨ and 🦜 (unseen)", "中文 ünïcødé", "<unk> <0x0A> <|im_end|>", "a  b   c",
                          "x", ""}) {
      out.emplace_back(s);
    }
    return out;
  }

  static testing::TempDir* dir_;
  static LabCorpus* corpus_;
};

testing::TempDir* LabTokenizer::dir_ = nullptr;
LabCorpus* LabTokenizer::corpus_ = nullptr;

TEST_F(LabTokenizer, WritesAHuggingFaceDirectory) {
  for (const char* f : {"tokenizer.model", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"}) {
    EXPECT_TRUE(fs::is_regular_file(tok_dir() / f)) << f;
  }
  EXPECT_FALSE(fs::exists(tok_dir().string() + ".tmp"));
  const auto tok = model::load_tokenizer(tok_dir());
  EXPECT_EQ(tok->kind, "sentencepiece_bpe");
  EXPECT_EQ(tok->vocab_size(), 700);
  EXPECT_EQ(tok->eos_id, tok->token_to_id("<|im_end|>"));
  EXPECT_EQ(tok->pad_id, tok->token_to_id("<|endoftext|>"));
  EXPECT_FALSE(tok->bos_id.has_value());
  for (const char* special : {"<|endoftext|>", "<|im_start|>", "<|im_end|>"}) {
    const auto id = tok->token_to_id(special);
    ASSERT_TRUE(id.has_value()) << special;
    EXPECT_TRUE(tok->is_special(*id)) << special;
    EXPECT_EQ(tok->encode(special), std::vector<model::TokenId>{*id}) << special;
  }
}

TEST_F(LabTokenizer, RoundTripsEveryCorpusText) {
  const auto tok = model::load_tokenizer(tok_dir());
  const auto all = texts();
  const auto ids = model::encode_batch(*tok, all);
  int64_t tokens = 0, bytes = 0;
  for (std::size_t i = 0; i < all.size(); ++i) {
    ASSERT_EQ(tok->decode(ids[i]), all[i]) << "text " << i;
    tokens += static_cast<int64_t>(ids[i].size());
    bytes += static_cast<int64_t>(all[i].size());
  }
  // A trained vocabulary compresses its own corpus well below one token per 2 bytes.
  EXPECT_LT(static_cast<double>(tokens) / static_cast<double>(bytes), 0.5);
}

// tokenizer.json (vocab + derived merges, read by the engine's BPE) and tokenizer.model
// (read by the SentencePiece library) must give the same ids.
TEST_F(LabTokenizer, JsonMatchesTheSentencePieceModel) {
  const testing::TempDir model_only;
  fs::copy_file(tok_dir() / "tokenizer.model", model_only / "tokenizer.model");
  write_file_atomic(model_only / "tokenizer_config.json", R"({"add_bos_token": false, "add_eos_token": false})");
  const auto json_tok = model::load_tokenizer(tok_dir());
  const auto sp_tok = model::load_tokenizer(model_only.path());
  EXPECT_EQ(sp_tok->kind, "sentencepiece_model");
  const auto all = texts();
  const auto a = model::encode_batch(*json_tok, all);
  const auto b = model::encode_batch(*sp_tok, all);
  for (std::size_t i = 0; i < all.size(); ++i) ASSERT_EQ(a[i], b[i]) << "text " << i << ": " << all[i];
}

TEST_F(LabTokenizer, RendersChatml) {
  EXPECT_EQ(model::detect_chat_family(tok_dir()), "chatml");
  const auto renderer = model::make_chat_renderer(model::detect_chat_family(tok_dir()));
  const auto& conv = corpus_->persona.front();
  const auto rendered = renderer->render(conv.messages, {.add_generation_prompt = false});
  const auto tok = model::load_tokenizer(tok_dir());
  const auto ids = tok->encode(rendered.text);
  const auto start = *tok->token_to_id("<|im_start|>"), end = *tok->token_to_id("<|im_end|>");
  EXPECT_EQ(std::count(ids.begin(), ids.end(), start), 3);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), end), 3);
  EXPECT_EQ(ids.front(), start);
  EXPECT_EQ(tok->decode(ids), rendered.text);
}

TEST_F(LabTokenizer, CorpusJsonlLoadsAsSftRows) {
  const testing::TempDir out;
  std::vector<LabConversation> rows(corpus_->generic.begin(), corpus_->generic.begin() + 50);
  rows.insert(rows.end(), corpus_->persona.begin(), corpus_->persona.begin() + 50);
  write_conversations_jsonl(rows, out / "rows.jsonl");
  const auto tok = model::load_tokenizer(tok_dir());
  const auto renderer = model::make_chat_renderer("chatml");
  const auto data = lora::load_sft_jsonl(out / "rows.jsonl", *tok, *renderer, {});
  ASSERT_EQ(data.rows.size(), rows.size());
  EXPECT_EQ(data.skipped, 0);
  for (const auto& r : data.rows) {
    EXPECT_GT(std::count(r.loss_mask.begin(), r.loss_mask.end(), 1), 3);
  }
}

TEST_F(LabTokenizer, TrainingIsDeterministic) {
  const testing::TempDir again;
  train_lab_tokenizer({.text_file = *dir_ / "text.txt", .out_dir = again / "tok", .vocab_size = 700, .seed = 1,
                       .threads = 1});
  for (const char* f : {"tokenizer.model", "tokenizer.json", "tokenizer_config.json"}) {
    EXPECT_EQ(read_file(tok_dir() / f), read_file(again / "tok" / f)) << f;
  }
}

TEST_F(LabTokenizer, RejectsBadOptions) {
  const testing::TempDir out;
  EXPECT_THROW(train_lab_tokenizer({.text_file = *dir_ / "text.txt", .out_dir = out / "t", .vocab_size = 100}),
               ConfigError);
  EXPECT_THROW(train_lab_tokenizer({.text_file = out / "missing.txt", .out_dir = out / "t"}), IoError);
  EXPECT_FALSE(fs::exists(out / "t"));
}

}  // namespace
}  // namespace character::lab
