// Client::run: the batch engine behind every request. One thread drives up to
// max_in_flight transfers through libcurl's multi interface. We chose the multi
// interface over a pool of threads with easy handles because waiting (for bytes,
// and for backoff timers) then costs no threads, results, cache writes and usage
// accounting all happen on the caller's thread without locks, and connections are
// reused across the whole batch from one pool.
#include "remote/client.h"

#include <curl/curl.h>

#include <algorithm>
#include <memory>
#include <queue>
#include <random>
#include <unordered_map>

#include "base/error.h"
#include "base/json_read.h"
#include "base/log.h"

namespace character::remote {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::size_t kExcerptBytes = 200;

// A request of the batch on its way through attempts.
struct Job {
  std::size_t index = 0;
  int attempts = 0;
  Clock::time_point ready_at;
  Clock::time_point first_sent;
  std::uint64_t order = 0;  // FIFO among jobs ready at the same time
};

struct LaterFirst {
  bool operator()(const Job* a, const Job* b) const {
    return a->ready_at != b->ready_at ? a->ready_at > b->ready_at : a->order > b->order;
  }
};

// One easy handle and the buffers of the attempt it carries.
struct Transfer {
  CURL* easy = nullptr;
  Job* job = nullptr;
  std::string received;
  std::size_t max_bytes = 0;  // ClientConfig::max_response_bytes
  bool too_large = false;     // the body went past max_bytes; the transfer was stopped
  char error[CURL_ERROR_SIZE] = {};
};

// Appends what arrived; past max_bytes it stops the transfer (returning less than it was
// given makes curl abort), so a hostile or broken server cannot fill the memory.
std::size_t on_bytes(char* data, std::size_t size, std::size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const std::size_t n = size * count;
  if (t->received.size() + n > t->max_bytes) {
    t->too_large = true;
    return 0;
  }
  t->received.append(data, n);
  return n;
}

std::string excerpt(std::string_view body) { return log::redacted_excerpt(body, kExcerptBytes); }

// RAII over the multi handle, the easy-handle pool and the header list.
struct CurlBatch {
  CURLM* multi = nullptr;
  curl_slist* headers = nullptr;
  std::vector<std::unique_ptr<Transfer>> pool;
  ~CurlBatch() {
    for (auto& t : pool) {
      if (t->easy) {
        curl_multi_remove_handle(multi, t->easy);
        curl_easy_cleanup(t->easy);
      }
    }
    if (multi) curl_multi_cleanup(multi);
    curl_slist_free_all(headers);
  }
};

// What one finished attempt amounts to.
struct Verdict {
  AttemptOutcome outcome = AttemptOutcome::kRetryable;
  std::string reason;
  long status = 0;
  std::optional<std::chrono::milliseconds> retry_after;
  nlohmann::json answer;
  std::optional<ParsedAnswer> parsed;
};

Verdict judge(Endpoint endpoint, int n, CURLcode code, Transfer& t, std::chrono::milliseconds timeout) {
  Verdict v;
  curl_easy_getinfo(t.easy, CURLINFO_RESPONSE_CODE, &v.status);
  if (t.too_large || code == CURLE_FILESIZE_EXCEEDED) {
    v.outcome = AttemptOutcome::kNotRetryable;
    v.reason = "the response is larger than " + std::to_string(t.max_bytes) + " bytes (max_response_bytes)";
    return v;
  }
  if (code != CURLE_OK) {
    // Transport failures are transient except a URL curl cannot use at all.
    v.outcome = (code == CURLE_URL_MALFORMAT || code == CURLE_UNSUPPORTED_PROTOCOL)
                    ? AttemptOutcome::kNotRetryable
                    : AttemptOutcome::kRetryable;
    v.reason = code == CURLE_OPERATION_TIMEDOUT
                   ? "timeout after " + std::to_string(timeout.count()) + " ms"
                   : std::string("connection error: ") + curl_easy_strerror(code) +
                         (t.error[0] ? std::string(" (") + t.error + ")" : std::string());
    return v;
  }
  v.outcome = classify_status(v.status);
  if (v.outcome != AttemptOutcome::kSuccess) {
    v.reason = "HTTP " + std::to_string(v.status) + ": " + excerpt(t.received);
    curl_header* header = nullptr;
    if (curl_easy_header(t.easy, "Retry-After", 0, CURLH_HEADER, -1, &header) == CURLHE_OK) {
      v.retry_after = parse_retry_after(header->value, std::chrono::system_clock::now());
    }
    return v;
  }
  auto answer = try_parse_json(t.received);  // bounded depth: a hostile reply cannot overflow the stack
  if (!answer) {
    v.outcome = AttemptOutcome::kRetryable;
    v.reason = "malformed JSON (" + std::to_string(t.received.size()) + " bytes): " + excerpt(t.received);
    return v;
  }
  v.answer = std::move(*answer);
  v.parsed = parse_answer(endpoint, v.answer, n, &v.reason);
  if (!v.parsed) v.outcome = AttemptOutcome::kRetryable;
  return v;
}

}  // namespace

std::vector<Result> Client::run(Endpoint endpoint, const std::vector<Prepared>& requests,
                                const BatchOptions& options) {
  const std::string url = config_.base_url + std::string(endpoint_path(endpoint));
  std::vector<Result> results(requests.size());
  Progress progress;
  progress.total = requests.size();
  auto deliver = [&](Result result) {
    const std::size_t index = result.index;
    usage_.record(options.stage, result);
    progress.done += 1;
    if (!result.ok()) progress.failed += 1;
    if (result.ok() && result.response->from_cache) progress.cache_hits += 1;
    results[index] = std::move(result);
    if (options.on_result) options.on_result(results[index]);
    if (options.on_progress) options.on_progress(progress);
  };

  // With a cache, identical requests of one batch are sent once: the copies get the
  // first one's outcome, marked from_cache (a failure is shared with 0 attempts).
  std::unordered_map<std::string, std::size_t> leader_of;
  std::vector<std::vector<std::size_t>> followers(requests.size());
  auto deliver_all = [&](Result result) {
    const std::size_t leader = result.index;
    deliver(std::move(result));
    for (std::size_t f : followers[leader]) {
      Result copy = results[leader];
      copy.index = f;
      if (copy.ok()) {
        copy.response->from_cache = true;
        copy.response->attempts = 0;
        copy.response->latency = std::chrono::milliseconds(0);
      } else {
        copy.failure->attempts = 0;
      }
      deliver(std::move(copy));
    }
  };

  // Answers already in the cache never reach the network.
  std::vector<Job> jobs(requests.size());
  std::priority_queue<Job*, std::vector<Job*>, LaterFirst> waiting;
  const auto start = Clock::now();
  std::uint64_t order = 0;
  for (std::size_t i = 0; i < requests.size(); ++i) {
    if (cache_) {
      if (const auto it = leader_of.find(requests[i].cache_key); it != leader_of.end()) {
        followers[it->second].push_back(i);
        continue;
      }
      if (auto answer = cache_->lookup(requests[i].cache_key)) {
        std::string error;
        auto parsed = parse_answer(endpoint, *answer, requests[i].n, &error);
        if (!parsed) {
          throw FormatError(cache_->path_for(requests[i].cache_key).string() + ": cached " + error +
                            "; delete the entry to refetch");
        }
        Result r;
        r.index = i;
        r.response = Response{std::move(parsed->choices), parsed->usage, /*from_cache=*/true,
                              /*attempts=*/0, std::chrono::milliseconds(0)};
        deliver(std::move(r));
        continue;
      }
      leader_of.emplace(requests[i].cache_key, i);
    }
    jobs[i].index = i;
    jobs[i].ready_at = start;
    jobs[i].order = order++;
    waiting.push(&jobs[i]);
  }
  if (waiting.empty()) return results;

  CurlBatch batch;
  batch.multi = curl_multi_init();
  if (!batch.multi) throw Error("libcurl: curl_multi_init failed");
  for (const char* h : {"Content-Type: application/json", "Accept: application/json", "Expect:"}) {
    batch.headers = curl_slist_append(batch.headers, h);
  }
  if (!api_key_.empty()) {
    batch.headers = curl_slist_append(batch.headers, ("Authorization: Bearer " + api_key_).c_str());
  }
  for (const auto& [name, value] : config_.headers) {
    batch.headers = curl_slist_append(batch.headers, (name + ": " + value).c_str());
  }
  std::vector<std::string> bodies(requests.size());
  std::vector<Transfer*> idle;
  const std::size_t slots = std::min<std::size_t>(config_.max_in_flight, waiting.size());
  for (std::size_t i = 0; i < slots; ++i) {
    auto t = std::make_unique<Transfer>();
    t->easy = curl_easy_init();
    if (!t->easy) throw Error("libcurl: curl_easy_init failed");
    idle.push_back(t.get());
    batch.pool.push_back(std::move(t));
  }
  std::mt19937_64 rng(config_.jitter_seed ? config_.jitter_seed + batches_++ : std::random_device{}());
  std::size_t active = 0;

  auto launch = [&](Job* job) {
    Transfer* t = idle.back();
    idle.pop_back();
    t->job = job;
    t->received.clear();
    t->too_large = false;
    t->max_bytes = config_.max_response_bytes;
    t->error[0] = '\0';
    std::string& body = bodies[job->index];
    if (body.empty()) body = requests[job->index].body.dump();
    if (job->attempts == 0) job->first_sent = Clock::now();
    job->attempts += 1;
    CURL* e = t->easy;
    curl_easy_reset(e);  // keeps the connection cache; clears the previous attempt's options
    curl_easy_setopt(e, CURLOPT_URL, url.c_str());
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, batch.headers);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_bytes);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
    // A declared Content-Length over the limit is refused before the body comes.
    curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(config_.max_response_bytes));
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->error);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, static_cast<long>(config_.timeout.count()));
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                     static_cast<long>(std::min(config_.timeout, config_.connect_timeout).count()));
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(e, CURLOPT_PRIVATE, t);
    if (curl_multi_add_handle(batch.multi, e) != CURLM_OK) throw Error("libcurl: curl_multi_add_handle failed");
    active += 1;
  };

  auto finish = [&](Transfer* t, CURLcode code) {
    curl_multi_remove_handle(batch.multi, t->easy);
    active -= 1;
    Job* job = t->job;
    Verdict v = judge(endpoint, requests[job->index].n, code, *t, config_.timeout);
    idle.push_back(t);
    const auto now = Clock::now();
    if (v.outcome == AttemptOutcome::kSuccess) {
      if (cache_) cache_->store(requests[job->index].cache_key, requests[job->index].body, v.answer);
      Result r;
      r.index = job->index;
      r.response = Response{std::move(v.parsed->choices), v.parsed->usage, /*from_cache=*/false,
                            job->attempts,
                            std::chrono::duration_cast<std::chrono::milliseconds>(now - job->first_sent)};
      deliver_all(std::move(r));
      return;
    }
    v.reason = log::redact(v.reason);
    const std::string what = "teacher request " + std::to_string(job->index) + " (stage " + options.stage +
                             ") attempt " + std::to_string(job->attempts) + ": " + v.reason;
    if (v.outcome == AttemptOutcome::kRetryable && job->attempts <= config_.retry.max_retries) {
      const auto delay = next_delay(config_.retry, job->attempts, v.retry_after, rng);
      log::warn(what + "; retrying in " + std::to_string(delay.count()) + " ms");
      job->ready_at = now + delay;
      job->order = order++;
      waiting.push(job);
      return;
    }
    log::warn(what + "; giving up");
    Result r;
    r.index = job->index;
    r.failure = Failure{v.reason, v.status, job->attempts};
    deliver_all(std::move(r));
  };

  while (!waiting.empty() || active > 0) {
    const auto now = Clock::now();
    while (!idle.empty() && !waiting.empty() && waiting.top()->ready_at <= now) {
      Job* job = waiting.top();
      waiting.pop();
      launch(job);
    }
    int running = 0;
    if (const CURLMcode mc = curl_multi_perform(batch.multi, &running); mc != CURLM_OK) {
      throw Error(std::string("libcurl: curl_multi_perform failed: ") + curl_multi_strerror(mc));
    }
    int queued = 0;
    while (CURLMsg* msg = curl_multi_info_read(batch.multi, &queued)) {
      if (msg->msg != CURLMSG_DONE) continue;
      Transfer* t = nullptr;
      curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &t);
      finish(t, msg->data.result);
    }
    if (waiting.empty() && active == 0) break;
    // Sleep until a socket is ready, or until the next backoff timer if a slot is free.
    long wait_ms = 1000;
    if (!waiting.empty() && !idle.empty()) {
      const auto until = waiting.top()->ready_at - Clock::now();
      wait_ms = std::clamp<long>(
          static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(until).count()), 0, 1000);
    }
    if (const CURLMcode mc = curl_multi_poll(batch.multi, nullptr, 0, static_cast<int>(wait_ms), nullptr);
        mc != CURLM_OK) {
      throw Error(std::string("libcurl: curl_multi_poll failed: ") + curl_multi_strerror(mc));
    }
  }
  return results;
}

}  // namespace character::remote
