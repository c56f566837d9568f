// The lab's tokenizer: SentencePiece (BPE, byte fallback) trained on the corpus
// text with the SentencePiece trainer library, then written as a Hugging Face
// tokenizer directory: tokenizer.model, a tokenizer.json that HF tokenizers, our
// engine (model/text) and transformers load with the same ids as the
// SentencePiece library gives, tokenizer_config.json with the ChatML chat
// template (<|im_start|>/<|im_end|>, no default system prompt) and the special
// tokens (eos <|im_end|>, pad <|endoftext|>).
#pragma once

#include <cstdint>
#include <filesystem>

namespace character::lab {

struct TokenizerTrainOptions {
  std::filesystem::path text_file;   // one training sentence per line (write_tokenizer_text)
  std::filesystem::path out_dir;     // created; written whole (OUT.tmp, then renamed)
  int vocab_size = 2048;
  uint64_t seed = 0;                 // the trainer's sampling (it is deterministic for one thread)
  int threads = 0;                   // 0: hardware threads
};

// Trains and writes the directory. ConfigError for a bad vocab size, IoError for
// files, FormatError when the trainer refuses the input.
void train_lab_tokenizer(const TokenizerTrainOptions& options);

}  // namespace character::lab
