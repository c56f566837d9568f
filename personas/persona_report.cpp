// Persona summaries for the CLI: counts only, so the output stays short however
// long the constitution is; warnings are listed in full.
#include "personas/persona_report.h"

#include <sstream>

namespace character::personas {

namespace {

nlohmann::json term_counts(const TermSet& set) {
  return {{"keywords", set.keywords.size()},
          {"phrases", set.phrases.size()},
          {"regexes", set.regexes.size()},
          {"classes", set.classes}};
}

std::string term_line(const nlohmann::json& counts) {
  std::ostringstream out;
  out << counts["keywords"].get<int>() << " keywords, " << counts["phrases"].get<int>() << " phrases, "
      << counts["regexes"].get<int>() << " regexes";
  for (const auto& c : counts["classes"]) out << ", class " << c.get<std::string>();
  return out.str();
}

}  // namespace

nlohmann::json persona_summary(const Persona& persona) {
  std::size_t in_character = 0;
  if (!persona.examples.empty()) {
    const SignalMatcher matcher(persona.signals);
    for (const auto& example : persona.examples) {
      const SignalCounts c = matcher.count(example.response);
      in_character += c.signal_hits > c.anti_signal_hits;
    }
  }
  return {{"name", persona.name},
          {"display_name", persona.display_name},
          {"source", persona.source},
          {"description", persona.description},
          {"constitution_lines", persona.constitution.size()},
          {"signals", term_counts(persona.signals.signals)},
          {"anti_signals", term_counts(persona.signals.anti_signals)},
          {"cues", persona.cues.size()},
          {"examples", persona.examples.size()},
          {"examples_in_character", in_character},
          {"probes", persona.probes.size()},
          {"warnings", persona.warnings}};
}

std::string format_summary(const nlohmann::json& s) {
  std::ostringstream out;
  out << s["name"].get<std::string>() << " (" << s["display_name"].get<std::string>() << ") from "
      << s["source"].get<std::string>() << "\n";
  out << "  constitution   " << s["constitution_lines"].get<int>() << " lines\n";
  out << "  signals        " << term_line(s["signals"]) << "\n";
  out << "  anti-signals   " << term_line(s["anti_signals"]) << "\n";
  out << "  cues           " << s["cues"].get<int>() << "\n";
  out << "  examples       " << s["examples"].get<int>() << " (" << s["examples_in_character"].get<int>()
      << " score in character)\n";
  out << "  probes         " << s["probes"].get<int>() << "\n";
  for (const auto& w : s["warnings"]) out << "warning: " << w.get<std::string>() << "\n";
  return out.str();
}

}  // namespace character::personas
