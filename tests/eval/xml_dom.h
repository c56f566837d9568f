// A small XML tree for tests, parsed with expat: enough to read JUnit XML and
// the inline SVG charts back and check their structure (elements, attributes,
// text). Parsing fails loudly (with expat's line and message) on malformed XML.
#pragma once

#include <expat.h>
#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace character::testing {

struct XmlNode {
  std::string name;
  std::map<std::string, std::string> attributes;
  std::string text;  // concatenated character data directly inside this element
  std::vector<std::unique_ptr<XmlNode>> children;

  std::string attr(const std::string& key) const {
    auto it = attributes.find(key);
    return it == attributes.end() ? std::string() : it->second;
  }
  // Every descendant (and this node) named `tag`, in document order.
  void collect(const std::string& tag, std::vector<const XmlNode*>& out) const {
    if (name == tag) out.push_back(this);
    for (const auto& c : children) c->collect(tag, out);
  }
  std::vector<const XmlNode*> all(const std::string& tag) const {
    std::vector<const XmlNode*> out;
    collect(tag, out);
    return out;
  }
};

// Parses `xml`; on malformed input returns null and records a test failure with
// expat's message and position.
inline std::unique_ptr<XmlNode> parse_xml(const std::string& xml) {
  struct State {
    std::unique_ptr<XmlNode> root;
    std::vector<XmlNode*> stack;
  } state;
  XML_Parser parser = XML_ParserCreate("UTF-8");
  XML_SetUserData(parser, &state);
  XML_SetElementHandler(
      parser,
      [](void* data, const XML_Char* name, const XML_Char** attrs) {
        auto* s = static_cast<State*>(data);
        auto node = std::make_unique<XmlNode>();
        node->name = name;
        for (int i = 0; attrs[i]; i += 2) node->attributes[attrs[i]] = attrs[i + 1];
        XmlNode* raw = node.get();
        if (s->stack.empty()) s->root = std::move(node);
        else s->stack.back()->children.push_back(std::move(node));
        s->stack.push_back(raw);
      },
      [](void* data, const XML_Char*) { static_cast<State*>(data)->stack.pop_back(); });
  XML_SetCharacterDataHandler(parser, [](void* data, const XML_Char* text, int len) {
    auto* s = static_cast<State*>(data);
    if (!s->stack.empty()) s->stack.back()->text.append(text, static_cast<std::size_t>(len));
  });
  const bool ok = XML_Parse(parser, xml.data(), static_cast<int>(xml.size()), /*isFinal=*/1) == XML_STATUS_OK;
  if (!ok) {
    ADD_FAILURE() << "malformed XML at line " << XML_GetCurrentLineNumber(parser) << ", column "
                  << XML_GetCurrentColumnNumber(parser) << ": " << XML_ErrorString(XML_GetErrorCode(parser));
    state.root.reset();
  }
  XML_ParserFree(parser);
  return std::move(state.root);
}

}  // namespace character::testing
