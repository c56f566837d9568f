// A fault-injecting OpenAI-compatible server on 127.0.0.1 (ephemeral port) for the
// teacher client tests. Each request takes the next scripted step (per prompt, then
// global), else a well-formed answer echoing the prompt. The server counts requests,
// the most in flight at once, and keeps the Authorization headers it saw.
#pragma once

#include <httplib.h>
#include <sys/socket.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <stdexcept>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace character::remote::testing {

using Step = std::function<void(const httplib::Request&, httplib::Response&)>;

// The text a well-formed answer carries: "echo: <last user content or prompt>".
inline std::string prompt_of(const nlohmann::json& body) {
  if (body.contains("prompt")) return body["prompt"].get<std::string>();
  return body["messages"].back()["content"].get<std::string>();
}

inline nlohmann::json answer_json(const nlohmann::json& body, int prompt_tokens = 11,
                                  int completion_tokens = 7) {
  const bool chat = body.contains("messages");
  const int n = body.value("n", 1);
  nlohmann::json choices = nlohmann::json::array();
  for (int i = n - 1; i >= 0; --i) {  // reversed, to prove the client orders by "index"
    const std::string text = "echo: " + prompt_of(body) + (n > 1 ? " #" + std::to_string(i) : "");
    nlohmann::json c = {{"index", i}, {"finish_reason", "stop"}};
    if (chat) {
      c["message"] = {{"role", "assistant"}, {"content", text}};
    } else {
      c["text"] = text;
    }
    choices.push_back(c);
  }
  return {{"id", "x"},
          {"object", chat ? "chat.completion" : "text_completion"},
          {"choices", choices},
          {"usage", {{"prompt_tokens", prompt_tokens}, {"completion_tokens", completion_tokens}}}};
}

// --- scripted steps ---------------------------------------------------------

inline Step ok() {
  return [](const httplib::Request& req, httplib::Response& res) {
    res.set_content(answer_json(nlohmann::json::parse(req.body)).dump(), "application/json");
  };
}

inline Step status(int code, std::string body = R"({"error":{"message":"scripted"}})",
                   std::string retry_after = "") {
  return [=](const httplib::Request&, httplib::Response& res) {
    res.status = code;
    if (!retry_after.empty()) res.set_header("Retry-After", retry_after);
    res.set_content(body, "application/json");
  };
}

// Sleeps, then answers well: past the client's timeout this is a timeout.
inline Step sleep_then_ok(std::chrono::milliseconds delay) {
  return [=](const httplib::Request& req, httplib::Response& res) {
    std::this_thread::sleep_for(delay);
    ok()(req, res);
  };
}

// A 200 whose JSON stops half-way (complete HTTP message, broken JSON).
inline Step truncated_json() {
  return [](const httplib::Request& req, httplib::Response& res) {
    const std::string full = answer_json(nlohmann::json::parse(req.body)).dump();
    res.set_content(full.substr(0, full.size() / 2), "application/json");
  };
}

inline Step malformed_json() {
  return [](const httplib::Request&, httplib::Response& res) {
    res.set_content("<html>Bad gateway? {not json", "application/json");
  };
}

// Well-formed JSON without "choices".
inline Step no_choices() {
  return [](const httplib::Request&, httplib::Response& res) {
    res.set_content(R"({"id":"x","object":"chat.completion","usage":{"prompt_tokens":1}})", "application/json");
  };
}

// Announces a 4096-byte body, sends 20 bytes, closes the connection.
inline Step drop_connection() {
  return [](const httplib::Request&, httplib::Response& res) {
    res.set_content_provider(
        4096, "application/json",
        [](std::size_t offset, std::size_t, httplib::DataSink& sink) {
          if (offset == 0) sink.write(R"({"choices":[{"index")", 20);
          return false;  // httplib closes the socket mid-body
        });
  };
}

// The answer in `pieces` chunks, `gap` apart (chunked transfer encoding).
inline Step slow_stream(int pieces, std::chrono::milliseconds gap) {
  return [=](const httplib::Request& req, httplib::Response& res) {
    const std::string full = answer_json(nlohmann::json::parse(req.body)).dump();
    res.set_chunked_content_provider("application/json", [=](std::size_t offset, httplib::DataSink& sink) {
      const std::size_t piece = full.size() / pieces + 1;
      if (offset >= full.size()) {
        sink.done();
        return true;
      }
      std::this_thread::sleep_for(gap);
      sink.write(full.data() + offset, std::min(piece, full.size() - offset));
      return true;
    });
  };
}

// Puts the Authorization header it received into the error body, as some real
// servers do ("Incorrect API key provided: ...").
inline Step echo_authorization(int code) {
  return [=](const httplib::Request& req, httplib::Response& res) {
    res.status = code;
    res.set_content(R"({"error":{"message":"Incorrect API key provided: )" +
                        req.get_header_value("Authorization") + R"("}})",
                    "application/json");
  };
}

// --- the server -------------------------------------------------------------

class FaultServer {
 public:
  FaultServer() {
    server_.new_task_queue = [] { return new httplib::ThreadPool(24); };
    server_.set_keep_alive_timeout(1);
    server_.set_tcp_nodelay(true);
    auto handler = [this](const httplib::Request& req, httplib::Response& res) { handle(req, res); };
    server_.Post("/v1/chat/completions", handler);
    server_.Post("/v1/completions", handler);
    // httplib 0.11 listens with a backlog of 5: a burst of 8 connections overflows
    // it and the dropped SYNs are retransmitted a second later. Keep the socket and
    // raise the backlog once httplib has called listen().
    int listener = -1;
    server_.set_socket_options([&listener](socket_t sock) {
      int yes = 1;
      ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
      listener = sock;
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    if (port_ <= 0 || listener < 0 || ::listen(listener, 128) != 0) {
      throw std::runtime_error("fault server: cannot listen on 127.0.0.1");
    }
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    // bind_to_any_port already listens: connections queue until the accept loop runs.
  }
  ~FaultServer() {
    server_.stop();
    thread_.join();
  }
  FaultServer(const FaultServer&) = delete;
  FaultServer& operator=(const FaultServer&) = delete;

  std::string base_url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/v1"; }

  // Steps for any request, in arrival order.
  void script(std::vector<Step> steps) {
    std::lock_guard lock(mutex_);
    for (auto& s : steps) global_.push_back(std::move(s));
  }
  // Steps for the requests whose prompt (last user message) is `prompt`.
  void script_for(const std::string& prompt, std::vector<Step> steps) {
    std::lock_guard lock(mutex_);
    for (auto& s : steps) by_prompt_[prompt].push_back(std::move(s));
  }
  // Delay of the default (unscripted) answer, to make requests overlap.
  void set_default_delay(std::chrono::milliseconds delay) { default_delay_ = delay; }

  int requests() const { return requests_; }
  int max_in_flight() const { return max_in_flight_; }
  int requests_for(const std::string& prompt) const {
    std::lock_guard lock(mutex_);
    const auto it = per_prompt_.find(prompt);
    return it == per_prompt_.end() ? 0 : it->second;
  }
  std::vector<std::string> authorizations() const {
    std::lock_guard lock(mutex_);
    return authorizations_;
  }
  std::vector<nlohmann::json> bodies() const {
    std::lock_guard lock(mutex_);
    return bodies_;
  }

 private:
  void handle(const httplib::Request& req, httplib::Response& res) {
    const int now = ++in_flight_;
    for (int seen = max_in_flight_; now > seen && !max_in_flight_.compare_exchange_weak(seen, now);) {
    }
    ++requests_;
    Step step;
    {
      std::lock_guard lock(mutex_);
      const auto body = nlohmann::json::parse(req.body);
      const std::string prompt = prompt_of(body);
      bodies_.push_back(body);
      authorizations_.push_back(req.get_header_value("Authorization"));
      per_prompt_[prompt] += 1;
      if (auto it = by_prompt_.find(prompt); it != by_prompt_.end() && !it->second.empty()) {
        step = std::move(it->second.front());
        it->second.pop_front();
      } else if (!global_.empty()) {
        step = std::move(global_.front());
        global_.pop_front();
      }
    }
    if (!step) step = sleep_then_ok(default_delay_.load());
    step(req, res);
    --in_flight_;
  }

  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  mutable std::mutex mutex_;
  std::deque<Step> global_;
  std::map<std::string, std::deque<Step>> by_prompt_;
  std::map<std::string, int> per_prompt_;
  std::vector<std::string> authorizations_;
  std::vector<nlohmann::json> bodies_;
  std::atomic<std::chrono::milliseconds> default_delay_{std::chrono::milliseconds(0)};
  std::atomic<int> requests_{0};
  std::atomic<int> in_flight_{0};
  std::atomic<int> max_in_flight_{0};
};

}  // namespace character::remote::testing
