// Coverage-guided prompt augmentation (router_train/coverage_augment.h): route
// footprints from a batched prefill with router capture, the seed's phrasing
// variations, and a lazy greedy weighted cover.
#include "router_train/coverage_augment.h"

#include <torch/torch.h>

#include <algorithm>
#include <cctype>
#include <numeric>
#include <queue>
#include <unordered_set>

#include "base/error.h"

namespace character::router_train {

namespace {

// splitmix64: the same sequence on every platform (std distributions promise none).
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  std::size_t below(std::size_t n) { return static_cast<std::size_t>(next() % n); }

 private:
  uint64_t state_;
};

std::vector<std::size_t> permutation(std::size_t n, uint64_t seed) {
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), std::size_t{0});
  Rng rng(seed);
  for (std::size_t i = n; i > 1; --i) std::swap(order[i - 1], order[rng.below(i)]);
  return order;
}

uint64_t fnv1a(const std::string& text) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (const unsigned char c : text) h = (h ^ c) * 0x100000001b3ULL;
  return h;
}

void check_shape(const RouteFootprint& f, const RouteFootprint& reference, const std::string& what) {
  const auto expected = static_cast<std::size_t>(reference.num_experts) * reference.layers.size();
  if (f.layers != reference.layers || f.num_experts != reference.num_experts || f.counts.size() != expected) {
    throw ConfigError("coverage augment: " + what + " has " + std::to_string(f.layers.size()) + " MoE layers, " +
                      std::to_string(f.num_experts) + " experts and " + std::to_string(f.counts.size()) +
                      " counts, expected " + std::to_string(reference.layers.size()) + " layers, " +
                      std::to_string(reference.num_experts) + " experts and " + std::to_string(expected) + " counts");
  }
}

// --- phrasing ---------------------------------------------------------------

bool is_end_punct(char c) { return c == '.' || c == '!' || c == '?'; }

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\n");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\n") - b + 1);
}

std::string strip_end_punct(std::string s) {
  while (!s.empty() && is_end_punct(s.back())) s.pop_back();
  return s;
}

// "Tell me more." → "tell me more." unless it starts with "I " or an acronym.
std::string lower_first(std::string s) {
  if (s.size() > 1 && (std::isupper(static_cast<unsigned char>(s[1])) || (s[0] == 'I' && s[1] == ' '))) return s;
  if (!s.empty()) s[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(s[0])));
  return s;
}

bool has_please(const std::string& s) {
  std::string lower = s;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return lower.find("please") != std::string::npos;
}

// Wording changes (they change the words, so the normalised text too).
std::vector<std::string> wordings(const std::string& p) {
  const std::string body = strip_end_punct(p);
  const std::string end = p.size() > body.size() ? p.substr(body.size()) : ".";
  std::vector<std::string> out;
  if (!has_please(p)) {
    out.push_back(body + " please" + end);                      // the seed's flip: "Tell me more please."
    out.push_back("Please, " + lower_first(p));
    out.push_back("Could you help me with this? " + p);
  }
  out.push_back("Hey, " + lower_first(p));                      // short preambles
  out.push_back("Quick question: " + lower_first(p));
  out.push_back("I have been wondering about something. " + p);
  out.push_back("Sorry to bother you, but " + lower_first(p));
  out.push_back(p + " Thanks!");                                // follow-ups
  out.push_back(p + " Keep it short.");
  out.push_back(p + " Take your time and explain it properly.");
  out.push_back(p + " I'm curious what you think.");
  return out;
}

// Surface changes (case, punctuation, whitespace), index 0 = none.
constexpr int kSurfaces = 7;
std::string surface(const std::string& p, int kind) {
  std::string s = p;
  switch (kind) {
    case 1:
      std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      break;
    case 2: s = strip_end_punct(s); break;
    case 3: s = strip_end_punct(s) + "!"; break;
    case 4: s = strip_end_punct(s) + "?"; break;
    case 5: s = strip_end_punct(s) + "..."; break;
    case 6:
      if (const auto space = s.find(' '); space != std::string::npos) s.insert(space, " ");  // a doubled space
      break;
    default: break;
  }
  return s;
}

}  // namespace

// --- footprints -------------------------------------------------------------

std::vector<RouteFootprint> route_footprints(const model::CausalLM& model, const model::Tokenizer& tokenizer,
                                             const model::ChatRenderer& renderer,
                                             const std::vector<std::string>& prompts, int64_t batch_size,
                                             const model::ChatOptions& chat) {
  const auto& config = model->config();
  if (!config.is_moe()) {
    throw ConfigError("coverage augment: model_type " + config.model_type + " has no MoE layers, expected an MoE student");
  }
  if (batch_size < 1) throw ConfigError("coverage augment: batch_size " + std::to_string(batch_size) + ", expected ≥ 1");
  const int64_t E = config.num_experts;

  std::vector<std::vector<int64_t>> ids(prompts.size());
  for (std::size_t i = 0; i < prompts.size(); ++i) {
    const auto tokens = tokenizer.encode(renderer.render({{"user", prompts[i]}}, chat).text, /*add_special_tokens=*/false);
    if (tokens.empty()) throw ConfigError("coverage augment: prompt " + std::to_string(i) + " renders to no tokens");
    ids[i].assign(tokens.begin(), tokens.end());
  }
  // Batches of similar length (stable sort: the result does not depend on the order).
  std::vector<std::size_t> order(prompts.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return ids[a].size() < ids[b].size(); });

  std::vector<RouteFootprint> out(prompts.size());
  torch::NoGradGuard no_grad;
  const torch::Device device = model->parameters().front().device();
  for (std::size_t begin = 0; begin < order.size(); begin += static_cast<std::size_t>(batch_size)) {
    const std::size_t end = std::min(order.size(), begin + static_cast<std::size_t>(batch_size));
    const auto B = static_cast<int64_t>(end - begin);
    int64_t T = 0;
    for (std::size_t i = begin; i < end; ++i) T = std::max<int64_t>(T, static_cast<int64_t>(ids[order[i]].size()));
    // Left padding as generation does: positions come from the mask (cumsum − 1),
    // so a padded row routes as it does alone.
    at::Tensor input = torch::zeros({B, T}, torch::kLong);  // [B, T]
    at::Tensor mask = torch::zeros({B, T}, torch::kLong);   // [B, T]
    for (int64_t b = 0; b < B; ++b) {
      const auto& row = ids[order[begin + static_cast<std::size_t>(b)]];
      const auto n = static_cast<int64_t>(row.size());
      input[b].narrow(0, T - n, n).copy_(torch::tensor(row, torch::kLong));
      mask[b].narrow(0, T - n, n).fill_(1);
    }
    model::ForwardInput in;
    in.input_ids = input.to(device);
    in.attention_mask = mask.to(device);
    in.capture.router = true;
    in.skip_logits = true;
    const auto output = model->forward(in);
    if (output.routing.empty()) throw ConfigError("coverage augment: the forward captured no MoE layer's routing");
    std::vector<int64_t> moe_layers;
    for (const auto& r : output.routing) moe_layers.push_back(r.layer);
    for (int64_t b = 0; b < B; ++b) {
      RouteFootprint& f = out[order[begin + static_cast<std::size_t>(b)]];
      f.layers = moe_layers;
      f.num_experts = E;
      f.counts.assign(moe_layers.size() * static_cast<std::size_t>(E), 0);
    }
    for (std::size_t l = 0; l < output.routing.size(); ++l) {
      const at::Tensor top = output.routing[l].topk_ids.to(torch::kCPU, torch::kLong).contiguous();  // [B·T, K]
      const int64_t K = top.size(1);
      const int64_t* id = top.data_ptr<int64_t>();
      for (int64_t b = 0; b < B; ++b) {
        const std::size_t index = order[begin + static_cast<std::size_t>(b)];
        int64_t* counts = out[index].counts.data() + l * static_cast<std::size_t>(E);
        for (int64_t t = T - static_cast<int64_t>(ids[index].size()); t < T; ++t)  // real positions only
          for (int64_t k = 0; k < K; ++k) ++counts[id[(b * T + t) * K + k]];
      }
    }
  }
  return out;
}

// --- variants ---------------------------------------------------------------

std::vector<std::string> phrasing_variants(const std::string& prompt, uint64_t seed, int count) {
  const std::string p = trim(prompt);
  std::vector<std::string> pool;
  if (!p.empty()) {
    // Every wording with every surface change, and the surface changes alone.
    for (const auto& w : wordings(p))
      for (int s = 0; s < kSurfaces; ++s) pool.push_back(surface(w, s));
    for (int s = 1; s < kSurfaces; ++s) pool.push_back(surface(p, s));
  }
  std::vector<std::string> out;
  std::unordered_set<std::string> seen = {prompt, p};
  for (const std::size_t i : permutation(pool.size(), seed ^ fnv1a(prompt))) {
    if (static_cast<int>(out.size()) >= count) break;
    std::string v = pool[i];
    if (trim(v).empty() || !seen.insert(v).second) continue;
    out.push_back(std::move(v));
  }
  return out;
}

// --- selection --------------------------------------------------------------

RouteFootprint sum_footprints(const std::vector<RouteFootprint>& footprints) {
  if (footprints.empty()) throw ConfigError("coverage augment: no footprints to sum");
  RouteFootprint sum = footprints.front();
  check_shape(sum, sum, "footprint 0");
  for (std::size_t i = 1; i < footprints.size(); ++i) {
    check_shape(footprints[i], sum, "footprint " + std::to_string(i));
    for (std::size_t j = 0; j < sum.counts.size(); ++j) sum.counts[j] += footprints[i].counts[j];
  }
  return sum;
}

AugmentSelection select_covering_prompts(const std::vector<RouteFootprint>& candidates, const RouteFootprint& target,
                                         const AugmentOptions& options) {
  check_shape(target, target, "the target footprint");
  for (std::size_t i = 0; i < candidates.size(); ++i) check_shape(candidates[i], target, "candidate " + std::to_string(i));
  if (options.budget > candidates.size()) {
    throw ConfigError("coverage augment: budget " + std::to_string(options.budget) + ", expected at most the " +
                      std::to_string(candidates.size()) + " candidates");
  }
  if (options.min_count < 1) throw ConfigError("coverage augment: min_count " + std::to_string(options.min_count) + ", expected ≥ 1");

  // The target's pairs (index into counts) and their weights.
  std::vector<std::size_t> pairs;
  for (std::size_t j = 0; j < target.counts.size(); ++j)
    if (target.counts[j] > 0) pairs.push_back(j);
  AugmentSelection result;
  result.target_pairs = static_cast<int64_t>(pairs.size());
  const int64_t need = options.min_count;
  const auto covered = [&](const std::vector<std::size_t>& picked) {
    std::vector<int64_t> have(target.counts.size(), 0);
    for (const auto i : picked)
      for (const auto j : pairs) have[j] += candidates[i].counts[j];
    return static_cast<int64_t>(std::count_if(pairs.begin(), pairs.end(), [&](std::size_t j) { return have[j] >= need; }));
  };

  // Each candidate's target pairs, sparse: a real model has L·E in the thousands.
  std::vector<std::vector<std::pair<std::size_t, int64_t>>> sparse(candidates.size());
  for (std::size_t i = 0; i < candidates.size(); ++i)
    for (const auto j : pairs)
      if (candidates[i].counts[j] > 0) sparse[i].emplace_back(j, candidates[i].counts[j]);
  std::vector<int64_t> have(target.counts.size(), 0);
  const auto gain = [&](std::size_t i) {
    int64_t g = 0;
    for (const auto& [j, c] : sparse[i])
      if (have[j] < need) g += target.counts[j] * std::min(c, need - have[j]);
    return g;
  };

  // Lazy greedy: a candidate's gain never grows as `have` grows, so a popped entry
  // whose gain is fresh for this round beats every stale upper bound below it.
  // Ties: the earlier candidate in a seeded order (rank).
  const auto tie_order = permutation(candidates.size(), options.seed ^ 0x7135ULL);
  std::vector<std::size_t> rank(candidates.size());
  for (std::size_t r = 0; r < tie_order.size(); ++r) rank[tie_order[r]] = r;
  struct Entry {
    int64_t gain;
    std::size_t rank, index, round;
  };
  const auto worse = [](const Entry& a, const Entry& b) { return a.gain != b.gain ? a.gain < b.gain : a.rank > b.rank; };
  std::priority_queue<Entry, std::vector<Entry>, decltype(worse)> queue(worse);
  for (std::size_t i = 0; i < candidates.size(); ++i) queue.push({gain(i), rank[i], i, 0});
  std::vector<char> taken(candidates.size(), 0);
  std::size_t round = 0;
  while (result.picked.size() < options.budget && !queue.empty()) {
    Entry top = queue.top();
    queue.pop();
    if (top.round != round) {
      top.gain = gain(top.index);
      top.round = round;
      queue.push(top);
      continue;
    }
    if (top.gain <= 0) break;  // every target pair covered, or nothing adds more
    result.picked.push_back(top.index);
    taken[top.index] = 1;
    for (const auto& [j, c] : sparse[top.index]) have[j] += c;
    ++round;
  }
  // The rest of the budget: a seeded random sample of what is left.
  for (const auto i : permutation(candidates.size(), options.seed ^ 0xf111ULL)) {
    if (result.picked.size() >= options.budget) break;
    if (!taken[i]) {
      taken[i] = 1;
      result.picked.push_back(i);
    }
  }
  result.covered_after = covered(result.picked);
  // The baseline: what a seeded random pick of the same budget covers.
  auto random_pick = permutation(candidates.size(), options.seed ^ 0xba5eULL);
  random_pick.resize(options.budget);
  result.covered_before = covered(random_pick);
  return result;
}

}  // namespace character::router_train
