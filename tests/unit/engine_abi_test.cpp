// The table between libzctls.so and libzctls-engine.so.N (engine_abi.h)
// crosses versions: a server started before an upgrade keeps its hook
// library and loads the engine file of its ABI from disk.  Its shape is
// pinned here; changing it means bumping ZCTLS_ENGINE_ABI on purpose.
#include "engine_abi.h"

#include <gtest/gtest.h>

#include <cstddef>

namespace {

TEST(EngineAbi, TheAbiNumberAndEntryAreWhatShippedBuildsUse) {
  EXPECT_EQ(ZCTLS_ENGINE_ABI, 1u);
  EXPECT_STREQ(ZCTLS_ENGINE_ENTRY, "zctls_engine_attach");
  EXPECT_EQ(ZCTLS_TICKET_BYTES, 256u);
  EXPECT_EQ(ZCTLS_NO_EPOCH, 0xffffffffu);
  EXPECT_EQ(ZCTLS_ENV_COUNT, 6);
  EXPECT_EQ(ZCTLS_ENV_JOURNAL_STREAM, 5);
}

TEST(EngineAbi, TheHookSideKeepsItsLayout) {
  EXPECT_EQ(offsetof(zctls_hook_side, abi), 0u);
  EXPECT_EQ(offsetof(zctls_hook_side, ticket_bytes), 4u);
  EXPECT_EQ(offsetof(zctls_hook_side, real_setsockopt), 8u);
  EXPECT_EQ(offsetof(zctls_hook_side, real_getsockopt), 16u);
  EXPECT_EQ(offsetof(zctls_hook_side, real_close), 24u);
  EXPECT_EQ(offsetof(zctls_hook_side, env), 32u);
  EXPECT_EQ(sizeof(zctls_hook_side), 32u + 6 * sizeof(void*));
}

TEST(EngineAbi, TheEngineOpsKeepTheirLayout) {
  constexpr std::size_t p = sizeof(void*);
  EXPECT_EQ(offsetof(zctls_engine_ops, abi), 0u);
  EXPECT_EQ(offsetof(zctls_engine_ops, known_plain), 1 * p);
  EXPECT_EQ(offsetof(zctls_engine_ops, before_send), 2 * p);
  EXPECT_EQ(offsetof(zctls_engine_ops, after_send), 3 * p);
  EXPECT_EQ(offsetof(zctls_engine_ops, after_setsockopt), 4 * p);
  EXPECT_EQ(offsetof(zctls_engine_ops, before_close), 5 * p);
  EXPECT_EQ(offsetof(zctls_engine_ops, after_close), 6 * p);
  EXPECT_EQ(offsetof(zctls_engine_ops, after_close_range), 7 * p);
  EXPECT_EQ(offsetof(zctls_engine_ops, after_dup), 8 * p);
  EXPECT_EQ(offsetof(zctls_engine_ops, forget), 9 * p);
  EXPECT_EQ(offsetof(zctls_engine_ops, before_other_send), 10 * p);
  EXPECT_EQ(offsetof(zctls_engine_ops, child_after_fork), 11 * p);
  EXPECT_EQ(sizeof(zctls_engine_ops), 12 * p);
}

}  // namespace
