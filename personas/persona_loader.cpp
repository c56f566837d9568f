// Persona YAML → Persona. Every field is validated where it is read, so each error
// names the file, line, column and field path; unknown keys are errors (a typo such
// as "anti_signal" would otherwise silently drop a whole list). Problems that do not
// make the persona unusable (a constitution line not in the first person, an example
// that does not score as in character) are collected as warnings.
#include "personas/persona.h"

#include <algorithm>
#include <cctype>

#include "base/atomic_file.h"
#include "base/error.h"
#include "base/yaml_check.h"
#include "personas/yaml_fields.h"

namespace character::personas {

namespace {

bool is_slug(const std::string& s) {
  if (s.empty() || s.size() > 64 || !std::islower(static_cast<unsigned char>(s[0]))) return false;
  return std::all_of(s.begin(), s.end(), [](unsigned char c) {
    return std::islower(c) || std::isdigit(c) || c == '-' || c == '_';
  });
}

// Lower-cased, whitespace-collapsed: to find the same term listed twice.
std::string term_key(const std::string& term) {
  std::string out;
  for (unsigned char c : term) {
    if (std::isspace(c)) {
      if (!out.empty() && out.back() != ' ') out += ' ';
    } else {
      out += static_cast<char>(std::tolower(c));
    }
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

// Where each term was written, to point warnings and conflicts at it.
struct TermSite {
  TermKind kind;
  std::string key;
  YAML::Mark mark;
  std::string path;
};

class PersonaReader {
 public:
  PersonaReader(const std::string& source) : r_(source) {}

  Persona read(const YAML::Node& root) {
    r_.index_empty_values(root);
    r_.check_map(root, "",
                 {"name", "display_name", "description", "constitution", "signals", "cues", "examples", "probes"});
    Persona p;
    const YAML::Node name = r_.require(root, "", "name");
    p.name = r_.string(name, "name");
    if (!is_slug(p.name))
      r_.fail(name, "name", "\"" + p.name + "\" is not a slug; expected lowercase letters, digits, '-' or '_', "
                            "starting with a letter, at most 64 characters");
    p.display_name = root["display_name"].IsDefined() ? r_.string(root["display_name"], "display_name") : p.name;
    p.description = r_.string(r_.require(root, "", "description"), "description");
    read_constitution(r_.require(root, "", "constitution"), p);
    read_signals(r_.require(root, "", "signals"), p.signals);
    p.cues = r_.strings(root["cues"], "cues");
    if (root["examples"].IsDefined()) read_examples(root["examples"], p);
    if (root["probes"].IsDefined()) read_probes(root["probes"], p);
    check_examples(p);
    p.warnings = std::move(warnings_);
    return p;
  }

 private:
  void warn(const YAML::Mark& mark, const std::string& path, const std::string& message) {
    warnings_.push_back(r_.where(mark, path) + ": " + message);
  }

  void read_constitution(const YAML::Node& node, Persona& p) {
    p.constitution = r_.strings(node, "constitution");
    if (p.constitution.empty()) r_.fail(node, "constitution", "is empty; expected at least one first-person line");
    // The paper writes constitutions as the model's own voice ("I speak ..."); a line
    // in the second or third person reads to the teacher as an instruction about
    // someone else. A warning, since "Honesty comes first." can be meant as is.
    static const SignalMatcher first_person(SignalProfile{
        {{"I", "I'm", "I'd", "I'll", "I've", "me", "my", "mine", "myself", "we", "us", "our", "ours", "ourselves"},
         {}, {}, {}},
        {}});
    for (std::size_t i = 0; i < p.constitution.size(); ++i)
      if (first_person.count(p.constitution[i]).signal_hits == 0)
        warn(r_.mark(node[i]), FieldReader::item("constitution", i),
             "not in the first person (no I, me, my, we ...); constitutions are written in the persona's own voice");
  }

  void read_signals(const YAML::Node& node, SignalProfile& profile) {
    r_.check_map(node, "signals", {"keywords", "phrases", "regexes", "classes", "anti_signals"});
    read_terms(node, "signals", profile.signals);
    if (profile.signals.empty())
      r_.fail(node, "signals", "no signal terms; expected at least one keyword, phrase, regex or class to score by");
    const std::vector<TermSite> signal_sites = std::move(sites_);
    sites_.clear();
    if (const YAML::Node anti = node["anti_signals"]; anti.IsDefined()) {
      r_.check_map(anti, "signals.anti_signals", {"keywords", "phrases", "regexes", "classes"});
      read_terms(anti, "signals.anti_signals", profile.anti_signals);
    }
    // A term on both sides would cancel itself out in every score.
    for (const auto& a : sites_)
      for (const auto& s : signal_sites)
        if (a.kind == s.kind && a.key == s.key)
          r_.fail(a.mark, a.path, "\"" + a.key + "\" is also a signal (" + s.path + "); a term cannot count both ways");
  }

  void read_terms(const YAML::Node& node, const std::string& path, TermSet& set) {
    read_kind(node, path, "keywords", TermKind::kKeyword, set.keywords);
    read_kind(node, path, "phrases", TermKind::kPhrase, set.phrases);
    read_kind(node, path, "regexes", TermKind::kRegex, set.regexes);
    read_kind(node, path, "classes", TermKind::kClass, set.classes);
  }

  void read_kind(const YAML::Node& map, const std::string& parent, const char* key, TermKind kind,
                 std::vector<std::string>& out) {
    const std::string path = FieldReader::child(parent, key);
    const YAML::Node list = map[key];
    out = r_.strings(list, path);
    for (std::size_t i = 0; i < out.size(); ++i) {
      const std::string at = FieldReader::item(path, i);
      const YAML::Mark mark = r_.mark(list[i]);
      if (auto problem = check_term(kind, out[i])) r_.fail(mark, at, "\"" + out[i] + "\" " + *problem);
      const std::string k = kind == TermKind::kRegex ? out[i] : term_key(out[i]);
      for (const auto& site : sites_)
        if (site.kind == kind && site.key == k) warn(mark, at, "\"" + out[i] + "\" repeats " + site.path);
      if (kind == TermKind::kPhrase && k.find(' ') == std::string::npos)
        warn(mark, at, "\"" + out[i] + "\" is a single word; it matches like a keyword");
      sites_.push_back({kind, k, mark, at});
    }
  }

  void read_examples(const YAML::Node& node, Persona& p) {
    r_.check_list(node, "examples");
    for (std::size_t i = 0; i < node.size(); ++i) {
      const std::string path = FieldReader::item("examples", i);
      r_.check_map(node[i], path, {"prompt", "response"});
      p.examples.push_back({r_.string(r_.require(node[i], path, "prompt"), FieldReader::child(path, "prompt")),
                            r_.string(r_.require(node[i], path, "response"), FieldReader::child(path, "response"))});
      example_marks_.push_back(r_.mark(node[i]["response"]));
    }
  }

  void read_probes(const YAML::Node& node, Persona& p) {
    r_.check_list(node, "probes");
    for (std::size_t i = 0; i < node.size(); ++i) {
      const std::string path = FieldReader::item("probes", i);
      r_.check_map(node[i], path, {"category", "prompt"});
      const YAML::Node category = r_.require(node[i], path, "category");
      Probe probe{r_.string(category, FieldReader::child(path, "category")),
                  r_.string(r_.require(node[i], path, "prompt"), FieldReader::child(path, "prompt"))};
      const auto& known = probe_categories();
      if (std::find(known.begin(), known.end(), probe.category) == known.end()) {
        std::string list;
        for (const auto& c : known) list += (list.empty() ? "" : ", ") + c;
        r_.fail(category, FieldReader::child(path, "category"),
                "unknown category \"" + probe.category + "\"; expected one of: " + list);
      }
      p.probes.push_back(std::move(probe));
    }
  }

  // An example is meant to show the persona in character: say so when its own
  // signal profile would not score it that way.
  void check_examples(const Persona& p) {
    if (p.examples.empty()) return;
    const SignalMatcher matcher(p.signals);
    for (std::size_t i = 0; i < p.examples.size(); ++i) {
      const SignalCounts c = matcher.count(p.examples[i].response);
      if (c.signal_hits <= c.anti_signal_hits)
        warn(example_marks_[i], FieldReader::child(FieldReader::item("examples", i), "response"),
             std::to_string(c.signal_hits) + " signal hits vs " + std::to_string(c.anti_signal_hits) +
                 " anti-signal hits; an example should score as in character");
    }
  }

  FieldReader r_;
  std::vector<std::string> warnings_;
  std::vector<TermSite> sites_;
  std::vector<YAML::Mark> example_marks_;
};

}  // namespace

const std::vector<std::string>& probe_categories() {
  static const std::vector<std::string> categories = {"identity", "continuation", "factual", "creative",
                                                      "instruction", "opinion", "meta", "short"};
  return categories;
}

Persona parse_persona(const std::string& yaml_text, const std::string& source) {
  const FieldReader r(source);
  YAML::Node root;
  try {
    check_yaml(yaml_text);  // no aliases, bounded depth (base/yaml_check.h)
    root = YAML::Load(yaml_text);
  } catch (const YamlRefused& e) {
    r.fail(e.mark, "", e.msg);
  } catch (const YAML::ParserException& e) {
    r.fail(e.mark, "", "invalid YAML: " + e.msg);
  }
  if (!root.IsDefined() || root.IsNull())
    throw FormatError(source + ": the file is empty; expected a map with name, description, constitution and signals");
  Persona persona = PersonaReader(source).read(root);
  persona.source = source;
  persona.source_text = yaml_text;
  return persona;
}

Persona load_persona(const std::filesystem::path& path) {
  Persona persona = parse_persona(read_file(path), path.string());
  if (path.stem().string() != persona.name)
    persona.warnings.push_back(path.string() + ": name: \"" + persona.name + "\" differs from the file name \"" +
                               path.filename().string() + "\"; runs are named after \"" + persona.name + "\"");
  return persona;
}

}  // namespace character::personas
