#include "lora/export.h"

#include "base/error.h"

namespace character::lora {

ExportFormat parse_export_format(const std::string& value, const std::string& field) {
  if (value == "tinker") return ExportFormat::kTinker;
  if (value == "peft") return ExportFormat::kPeft;
  if (value == "merged") return ExportFormat::kMerged;
  throw ConfigError(field + ": '" + value + "', expected one of tinker, peft, merged");
}

std::string to_string(ExportFormat format) {
  switch (format) {
    case ExportFormat::kTinker: return "tinker";
    case ExportFormat::kPeft: return "peft";
    case ExportFormat::kMerged: return "merged";
  }
  return "?";
}

ExportResult export_adapter(const AdapterFile& adapter, const std::filesystem::path& out, const ExportOptions& options) {
  switch (options.format) {
    case ExportFormat::kTinker: return export_tinker(adapter, out, options);
    case ExportFormat::kPeft: return export_peft(adapter, out, options);
    case ExportFormat::kMerged: return export_merged(adapter, out, options);
  }
  throw ConfigError("export: unknown format");
}

}  // namespace character::lora
