// The names config files use for enum settings, shared by the parser
// (config_parse.cpp) and to_string (config.cpp).
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>

#include "zctls/config.h"

namespace zctls::config_names {

template <typename Enum>
struct NamedValue {
  std::string_view name;
  Enum value;
};

inline constexpr NamedValue<OnChange> kOnChangeNames[] = {
    {"log", OnChange::log}, {"quarantine", OnChange::quarantine}, {"abort", OnChange::abort}};
inline constexpr NamedValue<KernelQuirks> kKernelQuirksNames[] = {
    {"auto", KernelQuirks::automatic}, {"on", KernelQuirks::on}, {"off", KernelQuirks::off}};
inline constexpr NamedValue<HardLinks> kHardLinksNames[] = {{"copy", HardLinks::copy},
                                                            {"by_path", HardLinks::by_path}};
inline constexpr NamedValue<AppFlag> kAppFlagNames[] = {{"respect", AppFlag::respect},
                                                        {"govern", AppFlag::govern}};
inline constexpr NamedValue<Offload> kOffloadNames[] = {{"auto", Offload::automatic},
                                                        {"assume", Offload::assume}};

template <typename Enum, std::size_t N>
std::optional<Enum> value_of(const NamedValue<Enum> (&names)[N], std::string_view name) noexcept {
  for (const auto& named : names)
    if (named.name == name) return named.value;
  return std::nullopt;
}

template <typename Enum, std::size_t N>
std::string_view name_of(const NamedValue<Enum> (&names)[N], Enum value) noexcept {
  for (const auto& named : names)
    if (named.value == value) return named.name;
  return "?";
}

}  // namespace zctls::config_names
