// `character serve MODEL_DIR [--adapter DIR] [--host H] [--port P] [--model-id NAME]
// [--device cpu|cuda]`: the engine behind the OpenAI-compatible server
// (pipeline/local_server.h, the code the pipeline serves the lab teacher with).
// Prints the base URL, serves until SIGINT or SIGTERM, then finishes the requests
// in progress and exits 0.
#include <CLI/CLI.hpp>

#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <iostream>
#include <thread>

#include "base/error.h"
#include "base/log.h"
#include "pipeline/commands.h"
#include "pipeline/local_server.h"

namespace character::pipeline {

namespace {

struct ServeArgs {
  std::string model_dir;
  EngineBackendOptions engine;
  std::string adapter;
  remote::ServerOptions server;
};

bool is_loopback(const std::string& host) {
  return host == "127.0.0.1" || host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

// SIGINT and SIGTERM are blocked in every thread (run_serve blocks them before the
// engine and the server start their threads, which inherit the mask) and taken by
// this one thread with sigwait, which stops the server: no work happens in a
// signal handler.
class StopOnSignal {
 public:
  StopOnSignal(LocalServer& server, const sigset_t& signals) : set_(signals) {
    waiter_ = std::thread([this, &server] {
      int signal = 0;
      sigwait(&set_, &signal);
      if (!done_) log::info(std::string("serve: ") + (signal == SIGINT ? "SIGINT" : "SIGTERM") + ", stopping");
      server.stop();
    });
  }
  ~StopOnSignal() {
    done_ = true;
    pthread_kill(waiter_.native_handle(), SIGTERM);  // wakes sigwait when no signal came
    waiter_.join();
  }

 private:
  sigset_t set_;
  std::atomic<bool> done_{false};
  std::thread waiter_;
};

int run_serve(ServeArgs args) {
  if (args.server.port < 0 || args.server.port > 65535) {
    throw ConfigError("serve: --port " + std::to_string(args.server.port) + ", expected 0 to 65535");
  }
  if (!is_loopback(args.server.host)) {
    log::warn("serve: listening on " + args.server.host +
              ", not loopback: anyone who can reach this address can use the model (there is no authentication)");
  }
  args.engine.adapter_dir = args.adapter;
  // Blocked before the engine loads, so that no thread torch starts takes the signals.
  sigset_t set, old;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, &old);
  struct Restore {
    sigset_t mask;
    ~Restore() { pthread_sigmask(SIG_SETMASK, &mask, nullptr); }
  } restore{old};

  log::info("serve: loading " + args.model_dir + (args.adapter.empty() ? "" : " with adapter " + args.adapter));
  LocalServer server(args.model_dir, args.engine, args.server);
  {
    StopOnSignal stop_on_signal(server, set);
    std::cout << "character serve: " << server.base_url() << " (model \"" << server.model_id() << "\")"
              << std::endl;
    server.run();
  }
  log::info("serve: stopped");
  return 0;
}

}  // namespace

void add_serve_command(CLI::App& app) {
  auto args = std::make_shared<ServeArgs>();
  CLI::App* sub = app.add_subcommand("serve", "Serve a model over an OpenAI-compatible HTTP API");
  sub->add_option("model_dir", args->model_dir, "Model directory")->required()->check(CLI::ExistingDirectory);
  sub->add_option("--adapter", args->adapter, "LoRA adapter directory (or a training checkpoint holding adapter/)")
      ->check(CLI::ExistingDirectory);
  sub->add_option("--host", args->server.host, "Address to listen on (default 127.0.0.1: this machine only)");
  sub->add_option("--port", args->server.port, "Port (default 8000; 0 = any free port)");
  sub->add_option("--model-id", args->engine.model_id, "Model name in answers and /v1/models (default: the directory name)");
  sub->add_option("--device", args->engine.device, "cpu or cuda");
  sub->add_option("--dtype", args->engine.dtype, "float32, bfloat16 or float16 (default: the device's)");
  sub->add_option("--max-batch", args->engine.max_batch_rows, "Choices generated per engine batch (default 16)")
      ->check(CLI::PositiveNumber);
  sub->add_option("--seed", args->engine.seed, "Seed of requests that give none (default 0)");
  add_chat_flags(*sub, args->engine.chat);
  set_command_action(*sub, [args] { return run_serve(*args); });
}

}  // namespace character::pipeline
