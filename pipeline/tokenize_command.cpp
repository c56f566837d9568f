// `character tokenize MODEL_DIR (--text T | --file F) [--chat] [--no-special]`:
// prints the token ids of a text (or of a rendered conversation) as a JSON list,
// the same ids `tokenizer(text)` / `apply_chat_template(..., tokenize=True)` give.
#include <CLI/CLI.hpp>

#include <iostream>
#include <nlohmann/json.hpp>

#include "base/atomic_file.h"
#include "base/error.h"
#include "model/text/tokenizer.h"
#include "pipeline/chat_input.h"
#include "pipeline/commands.h"

namespace character::pipeline {

namespace {

struct TokenizeArgs {
  std::string model_dir;
  std::string text;
  std::string file;
  bool chat = false;
  bool no_special = false;
  ChatFlags chat_flags;
};

int run_tokenize(const TokenizeArgs& args) {
  const std::string input = args.file.empty() ? args.text : read_file(args.file);
  const auto tokenizer = model::load_tokenizer(args.model_dir);
  std::vector<model::TokenId> ids;
  if (args.chat) {
    const auto messages = parse_conversation(input, args.file.empty() ? "--text" : args.file);
    ids = render_prompt(args.model_dir, *tokenizer, messages, args.chat_flags).ids;
  } else {
    ids = tokenizer->encode(input, /*add_special_tokens=*/!args.no_special);
  }
  std::cout << nlohmann::json(ids).dump() << "\n";
  return 0;
}

}  // namespace

void add_tokenize_command(CLI::App& app) {
  auto args = std::make_shared<TokenizeArgs>();
  CLI::App* sub = app.add_subcommand("tokenize", "Print the token ids of a text or a conversation as JSON");
  sub->add_option("model_dir", args->model_dir, "Model directory (tokenizer files)")->required()->check(CLI::ExistingDirectory);
  auto* text = sub->add_option("--text", args->text, "Text to tokenize");
  auto* file = sub->add_option("--file", args->file, "File whose content to tokenize")->check(CLI::ExistingFile);
  text->excludes(file);
  sub->add_flag("--chat", args->chat, "Input is a JSON conversation; render it with the chat template first");
  add_chat_flags(*sub, args->chat_flags);
  sub->add_flag("--no-special", args->no_special, "Do not add the tokenizer's special tokens (BOS)");
  set_command_action(*sub, [args, text, file] {
    if (text->count() == 0 && file->count() == 0) throw ConfigError("tokenize: give --text or --file");
    return run_tokenize(*args);
  });
}

}  // namespace character::pipeline
