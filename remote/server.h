// An OpenAI-compatible HTTP server (cpp-httplib) in front of a CompletionBackend:
// GET /v1/models, POST /v1/chat/completions and /v1/completions, with and without
// "stream": true (server-sent events ending in "data: [DONE]"), OpenAI-shaped
// error bodies. `character serve` puts the engine behind it; tests use it as a
// real teacher on loopback.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "remote/completion.h"
#include "remote/server_protocol.h"

namespace character::remote {

struct ServerOptions {
  std::string host = "127.0.0.1";  // loopback: other machines cannot reach it
  int port = 8000;                 // 0: an ephemeral port (see Server::port())
  RequestLimits limits;
  std::size_t max_body_bytes = 16u << 20;
  int keep_alive_s = 2;  // idle keep-alive connections are closed after this
};

// Requests are served one at a time: the backend call of each runs under one
// lock, in arrival order, while HTTP reading and writing stay concurrent. The
// engine is one model on one device, and a request's n choices already run as one
// batch; callers that want throughput over many prompts batch in-process through
// CompletionBackend::complete_chat_batch instead of over HTTP.
class Server {
 public:
  // `backend` must outlive the server.
  Server(CompletionBackend& backend, ServerOptions options);
  ~Server();  // stop() and join
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds host:port (port 0: any free port); IoError naming the address when it
  // cannot. Afterwards port() is the bound port.
  void bind();
  // Serves until stop(); bind() first. Returns when stopped.
  void run();
  // bind() (if not yet bound), then run() on a background thread; returns once
  // the socket accepts connections.
  void start();
  // Stops accepting and returns at once; requests in progress finish. Any thread.
  void stop();

  int port() const;
  // "http://HOST:PORT/v1": what a client's base_url is.
  std::string base_url() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace character::remote
