#include "base/yaml_check.h"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <sstream>

namespace character {
namespace {

// Sees the events of the first document (YAML::Load reads only that one) without building
// nodes, so nothing is expanded or shared while checking.
class Check : public YAML::EventHandler {
 public:
  explicit Check(int max_depth) : max_depth_(max_depth) {}

  void OnDocumentStart(const YAML::Mark&) override {}
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t) override {
    throw YamlRefused(mark, "an alias (*name): aliases are not accepted in this file, write the value out");
  }
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t, const std::string&) override {}
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {
    enter(mark);
  }
  void OnSequenceEnd() override { --depth_; }
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {
    enter(mark);
  }
  void OnMapEnd() override { --depth_; }

 private:
  void enter(const YAML::Mark& mark) {
    if (++depth_ > max_depth_) {
      throw YamlRefused(mark, "nested deeper than " + std::to_string(max_depth_) + " levels");
    }
  }

  int max_depth_;
  int depth_ = 0;
};

}  // namespace

void check_yaml(const std::string& text, int max_depth) {
  std::istringstream in(text);
  YAML::Parser parser(in);
  Check check(max_depth);
  parser.HandleNextDocument(check);
}

}  // namespace character
