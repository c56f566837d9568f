// LocalServer: the engine loaded once, the HTTP server bound at construction so
// that the URL is known before serving starts.
#include "pipeline/local_server.h"

namespace character::pipeline {

LocalServer::LocalServer(const std::filesystem::path& model_dir, EngineBackendOptions engine,
                         remote::ServerOptions server)
    : backend_(std::make_unique<EngineBackend>(model_dir, std::move(engine))),
      server_(std::make_unique<remote::Server>(*backend_, std::move(server))) {
  server_->bind();
}

LocalServer::~LocalServer() {
  server_->stop();
  server_.reset();  // joins the serving thread before the backend goes
}

void LocalServer::run() { server_->run(); }
void LocalServer::start() { server_->start(); }
void LocalServer::stop() { server_->stop(); }
std::string LocalServer::base_url() const { return server_->base_url(); }
std::string LocalServer::model_id() const { return backend_->model_id(); }

}  // namespace character::pipeline
