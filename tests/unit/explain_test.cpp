// `zctls explain` says what the shim decides, names included.
#include "explain.h"

#include <gtest/gtest.h>

namespace {

zctls::Config config() {
  auto r = zctls::parse_config(
      "[[rule]]\npath = \"/www/up/**\"\nzerocopy = false\n"
      "[[rule]]\npath = \"/www/**\"\nzerocopy = true\n",
      "z.toml");
  return std::move(*r.config);
}

TEST(Explain, ByTheRulesAlone) {
  const auto c = config();
  EXPECT_EQ(zctls::cli::explain_path(c, "/www/a.js"),
            "/www/a.js: zerocopy by rule 2 (z.toml:4:1, path \"/www/**\")\n");
  EXPECT_EQ(zctls::cli::explain_path(c, "/etc/x"), "/etc/x: copy by default (no rule matches)\n");
}

TEST(Explain, HardLinksAndOtherMountsAsTheShimSeesThem) {
  const auto c = config();
  zctls::cli::FileNames plain{true, 1, {}};
  EXPECT_EQ(zctls::cli::explain_file(c, "/www/a.js", plain),
            zctls::cli::explain_path(c, "/www/a.js"));
  zctls::cli::FileNames linked{true, 3, {}};
  EXPECT_EQ(zctls::cli::explain_file(c, "/www/a.js", linked)
                .rfind("/www/a.js: copy: it has 3 hard links", 0),
            0U);
  zctls::cli::FileNames mounted{true, 1, {"/srv/www/a.js", "/www/up/mirror/a.js"}};
  EXPECT_EQ(zctls::cli::explain_file(c, "/www/a.js", mounted),
            "/www/a.js: copy: it is also /srv/www/a.js (another mount of its filesystem), copy by "
            "default (no rule matches)\n");
  // by_path: the opened name decides.
  auto by_path = config();
  by_path.integrity.hard_links = zctls::HardLinks::by_path;
  EXPECT_EQ(zctls::cli::explain_file(by_path, "/www/a.js", linked),
            zctls::cli::explain_path(c, "/www/a.js"));
  // Copy by the rules: nothing more to say.
  EXPECT_EQ(zctls::cli::explain_file(c, "/www/up/x", linked),
            zctls::cli::explain_path(c, "/www/up/x"));
}

}  // namespace
