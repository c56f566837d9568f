// A model served over the OpenAI-compatible HTTP API from this process: the
// engine (pipeline/engine_backend.h) behind remote::Server. `character serve`
// runs it in the foreground until a signal; the pipeline's embedded default
// (pipeline/lab_default.h) runs the lab teacher with it on a background thread on
// 127.0.0.1, port 0, for the stages that call the teacher.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "pipeline/engine_backend.h"
#include "remote/server.h"

namespace character::pipeline {

class LocalServer {
 public:
  // Loads the model (and adapter, engine.adapter_dir) and binds host:port
  // (port 0: any free port): the loaders' errors, IoError when the address is taken.
  LocalServer(const std::filesystem::path& model_dir, EngineBackendOptions engine, remote::ServerOptions server);
  ~LocalServer();  // stop(); requests in progress finish, then the threads are joined
  LocalServer(const LocalServer&) = delete;
  LocalServer& operator=(const LocalServer&) = delete;

  // Serves on this thread until stop() (from another thread).
  void run();
  // Serves on a background thread; returns once the socket accepts connections.
  void start();
  // Stops accepting; returns at once. Any thread.
  void stop();

  std::string base_url() const;  // "http://127.0.0.1:PORT/v1"
  std::string model_id() const;

 private:
  // The server refers to the backend: declared first, destroyed last.
  std::unique_ptr<EngineBackend> backend_;
  std::unique_ptr<remote::Server> server_;
};

}  // namespace character::pipeline
