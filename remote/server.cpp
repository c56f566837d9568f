// Server: the HTTP routes over cpp-httplib. Each route parses its body
// (server_protocol.h), takes the backend lock, and answers JSON or a stream of
// server-sent events. Errors become OpenAI error bodies: InvalidRequest its own
// status, another ConfigError 400 (the backend refused a value), any other error 500.
#include "remote/server.h"

#include <httplib.h>
#include <sys/socket.h>

#include <chrono>
#include <condition_variable>
#include <ctime>
#include <mutex>
#include <thread>
#include <type_traits>

#include "base/error.h"
#include "base/json_read.h"
#include "base/log.h"

namespace character::remote {
namespace {

using nlohmann::json;

// Thrown from a stream callback when the client has gone: ends the generation.
struct ClientGone {};

std::string dump(const json& value) { return value.dump(-1, ' ', false, json::error_handler_t::replace); }

void send_json(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(dump(body), "application/json");
}

void send_error(httplib::Response& res, int status, const std::string& message, const std::string& param = "",
                const std::string& code = "") {
  send_json(res, status, error_json(status, message, param, code));
}

// Runs `body`, turning the errors it throws into error answers.
template <class F>
void answering_errors(httplib::Response& res, const std::string& route, F&& body) {
  try {
    body();
  } catch (const InvalidRequest& e) {
    send_error(res, e.status(), e.what(), e.param(), e.code());
  } catch (const ConfigError& e) {
    send_error(res, 400, e.what());
  } catch (const Error& e) {
    log::error(route + ": " + e.what());
    send_error(res, 500, e.what());
  }
}

// Bounded in depth (base/json_read.h): one deeply nested body must not take the server down.
json parse_body(const httplib::Request& req) {
  std::string why;
  auto body = try_parse_json(req.body, &why);
  if (!body) throw InvalidRequest("the request body: " + why, "");
  return std::move(*body);
}

std::int64_t now_s() { return static_cast<std::int64_t>(std::time(nullptr)); }

}  // namespace

struct Server::Impl {
  CompletionBackend& backend;
  ServerOptions options;
  httplib::Server http;
  std::mutex backend_lock;  // one backend call at a time (see server.h)
  std::thread thread;  // start()'s run()
  int port = -1;
  std::mutex state_lock;
  std::condition_variable state_changed;
  bool stop_requested = false;
  bool listener_done = false;
  std::int64_t created = now_s();

  Impl(CompletionBackend& b, ServerOptions o) : backend(b), options(std::move(o)) { routes(); }

  void routes();
  void models(httplib::Response& res);
  void chat(const httplib::Request& req, httplib::Response& res);
  void completions(const httplib::Request& req, httplib::Response& res);
  template <class Request>
  void stream(httplib::Response& res, std::shared_ptr<Request> request, bool chat, bool include_usage);
};

void Server::Impl::routes() {
  // SO_REUSEADDR only: httplib's default adds SO_REUSEPORT, with which a second
  // server on the same port binds too and the kernel splits the requests.
  http.set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, reinterpret_cast<const void*>(&yes), sizeof(yes));
  });
  http.set_payload_max_length(options.max_body_bytes);
  http.set_keep_alive_timeout(options.keep_alive_s);
  http.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) { models(res); });
  http.Get(R"(/v1/models/(.+))", [this](const httplib::Request& req, httplib::Response& res) {
    const std::string id = req.matches[1];
    if (id != backend.model_id()) {
      send_error(res, 404, "The model `" + id + "` does not exist", "model", "model_not_found");
      return;
    }
    send_json(res, 200, {{"id", id}, {"object", "model"}, {"created", created}, {"owned_by", "character"}});
  });
  http.Get("/health", [](const httplib::Request&, httplib::Response& res) { res.set_content("ok", "text/plain"); });
  http.Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) { chat(req, res); });
  http.Post("/v1/completions",
            [this](const httplib::Request& req, httplib::Response& res) { completions(req, res); });
  // Unknown routes, bodies over the limit and other errors httplib answers
  // without a body: give them an OpenAI error body too.
  http.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    if (res.status == 404) {
      send_error(res, 404, "Unknown request URL: " + req.method + " " + req.path);
    } else if (res.status == 413) {
      send_error(res, 413, "the request body is larger than the server's limit");
    } else {
      send_error(res, res.status, "HTTP " + std::to_string(res.status));
    }
  });
  http.set_exception_handler([](const httplib::Request& req, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "unknown exception";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    // Only the first line: libtorch's messages carry a C++ backtrace with load addresses,
    // which neither the client nor the log needs. The client learns nothing internal.
    log::error(req.method + " " + req.path + ": " + what.substr(0, what.find('\n')));
    send_error(res, 500, "internal server error (the server's log has the details)");
  });
}

void Server::Impl::models(httplib::Response& res) {
  json model = {{"id", backend.model_id()}, {"object", "model"}, {"created", created}, {"owned_by", "character"}};
  send_json(res, 200, {{"object", "list"}, {"data", json::array({model})}});
}

void Server::Impl::chat(const httplib::Request& req, httplib::Response& res) {
  answering_errors(res, "POST /v1/chat/completions", [&] {
    ParsedChat parsed = parse_chat_body(parse_body(req), backend.model_id(), options.limits);
    if (parsed.stream) {
      {
        std::lock_guard lock(backend_lock);
        backend.check(parsed.request);  // refuse now, while the status can still be 400
      }
      stream(res, std::make_shared<ChatRequest>(std::move(parsed.request)), true, parsed.include_usage);
      return;
    }
    AnswerMeta meta{new_completion_id("chatcmpl-"), now_s(), backend.model_id()};
    Response response;
    {
      std::lock_guard lock(backend_lock);
      response = backend.complete_chat(parsed.request);
    }
    send_json(res, 200, chat_answer_json(meta, response));
  });
}

void Server::Impl::completions(const httplib::Request& req, httplib::Response& res) {
  answering_errors(res, "POST /v1/completions", [&] {
    ParsedCompletion parsed = parse_completion_body(parse_body(req), backend.model_id(), options.limits);
    if (parsed.stream) {
      {
        std::lock_guard lock(backend_lock);
        backend.check(parsed.request);
      }
      stream(res, std::make_shared<CompletionRequest>(std::move(parsed.request)), false, parsed.include_usage);
      return;
    }
    AnswerMeta meta{new_completion_id("cmpl-"), now_s(), backend.model_id()};
    Response response;
    {
      std::lock_guard lock(backend_lock);
      response = backend.complete_text(parsed.request);
    }
    send_json(res, 200, completion_answer_json(meta, response));
  });
}

// The answer goes out as events while the backend generates: for chat, a role
// chunk per choice, then one chunk per text piece, then a finish chunk per choice;
// the usage chunk when asked; then [DONE]. An error after the 200 went out is sent
// as an event holding the OpenAI error object, followed by [DONE].
template <class Request>
void Server::Impl::stream(httplib::Response& res, std::shared_ptr<Request> request, bool chat, bool include_usage) {
  AnswerMeta meta{new_completion_id(chat ? "chatcmpl-" : "cmpl-"), now_s(), backend.model_id()};
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider("text/event-stream", [this, request, chat, include_usage, meta](
                                                              std::size_t, httplib::DataSink& sink) {
    auto send = [&](const std::string& event) {
      if (!sink.write(event.data(), event.size())) throw ClientGone{};
    };
    try {
      if (chat) {
        for (int i = 0; i < request->sampling.n; ++i) send(sse_event(chat_role_chunk(meta, i)));
      }
      CallOptions call;
      call.on_delta = [&](int index, std::string_view piece) {
        if (piece.empty()) return;
        const std::string text(piece);
        send(sse_event(chat ? chat_delta_chunk(meta, index, text) : completion_delta_chunk(meta, index, text)));
      };
      Response response;
      {
        std::lock_guard lock(backend_lock);
        if constexpr (std::is_same_v<Request, ChatRequest>) {
          response = backend.complete_chat(*request, call);
        } else {
          response = backend.complete_text(*request, call);
        }
      }
      for (std::size_t i = 0; i < response.choices.size(); ++i) {
        const auto& reason = response.choices[i].finish_reason;
        const int index = static_cast<int>(i);
        send(sse_event(chat ? chat_finish_chunk(meta, index, reason) : completion_finish_chunk(meta, index, reason)));
      }
      if (include_usage) send(sse_event(usage_chunk(meta, chat, response.usage)));
      send(sse_done());
    } catch (const ClientGone&) {
      return false;  // the client closed the connection: drop it
    } catch (const std::exception& e) {
      const bool refused = dynamic_cast<const ConfigError*>(&e) != nullptr;
      if (!refused) log::error(std::string(chat ? "chat" : "completion") + " stream: " + e.what());
      const std::string event = "data: " + dump(error_json(refused ? 400 : 500, e.what())) + "\n\n" + sse_done();
      sink.write(event.data(), event.size());
    }
    sink.done();
    return true;
  });
}

Server::Server(CompletionBackend& backend, ServerOptions options)
    : impl_(std::make_unique<Impl>(backend, std::move(options))) {}

Server::~Server() {
  stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

void Server::bind() {
  const auto& o = impl_->options;
  const std::string address = o.host + ":" + std::to_string(o.port);
  if (o.port == 0) {
    impl_->port = impl_->http.bind_to_any_port(o.host);
    if (impl_->port < 0) throw IoError("serve: cannot bind " + address + " (any free port), expected a local address");
  } else {
    if (!impl_->http.bind_to_port(o.host, o.port)) {
      throw IoError("serve: cannot bind " + address + ": the port is in use or the host is not a local address");
    }
    impl_->port = o.port;
  }
}

// stop() only raises a flag: httplib's own stop() is lost when it comes before
// listen_after_bind() has started, so run() repeats it until the listener is done.
void Server::run() {
  if (impl_->port < 0) throw ConfigError("serve: run() before bind()");
  Impl& s = *impl_;
  std::thread listener([&s] {
    s.http.listen_after_bind();
    std::lock_guard lock(s.state_lock);
    s.listener_done = true;
    s.state_changed.notify_all();
  });
  std::unique_lock lock(s.state_lock);
  s.state_changed.wait(lock, [&s] { return s.stop_requested || s.listener_done; });
  while (!s.listener_done) {
    lock.unlock();
    s.http.stop();
    lock.lock();
    s.state_changed.wait_for(lock, std::chrono::milliseconds(5), [&s] { return s.listener_done; });
  }
  lock.unlock();
  listener.join();
}

void Server::start() {
  if (impl_->port < 0) bind();
  impl_->thread = std::thread([this] { run(); });
  // The socket is bound and listening already, so connections made before the
  // listener accepts are queued; wait anyway so that callers see a running server.
  while (!impl_->http.is_running()) {
    {
      std::lock_guard lock(impl_->state_lock);
      if (impl_->listener_done) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

void Server::stop() {
  std::lock_guard lock(impl_->state_lock);
  impl_->stop_requested = true;
  impl_->state_changed.notify_all();
}

int Server::port() const { return impl_->port; }

std::string Server::base_url() const {
  const std::string& host = impl_->options.host;
  const std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return "http://" + h + ":" + std::to_string(impl_->port) + "/v1";
}

}  // namespace character::remote
