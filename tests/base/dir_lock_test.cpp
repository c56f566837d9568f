// base/dir_lock.h: one process at a time in a run directory; the second is refused with
// the holder's pid, and the lock goes with its holder (a killed run leaves none behind).
#include <gtest/gtest.h>
#include <gmock/gmock.h>
#include <sys/wait.h>
#include <unistd.h>

#include <optional>

#include "base/dir_lock.h"
#include "base/error.h"
#include "tests/test_support.h"

namespace character {
namespace {

using ::testing::HasSubstr;

std::string second_lock_error(const std::filesystem::path& dir) {
  try {
    DirLock again(dir, "run");
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(DirLock, ASecondHolderIsRefusedUntilTheFirstLetsGo) {
  testing::TempDir tmp;
  const auto dir = tmp / "run";
  {
    DirLock lock(dir, "run");
    EXPECT_TRUE(std::filesystem::exists(dir / ".lock"));
    EXPECT_THAT(second_lock_error(dir),
                AllOf(HasSubstr("run " + dir.string() + " is in use by another process (pid " +
                                std::to_string(::getpid()) + ")"),
                      HasSubstr("wait for it to finish")));
  }
  EXPECT_EQ(second_lock_error(dir), "");  // released with its holder
}

TEST(DirLock, AKilledHolderLeavesNoLock) {
  testing::TempDir tmp;
  const auto dir = tmp / "run";
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    DirLock lock(dir, "run");
    (void)!::write(ready[1], "x", 1);
    ::pause();  // until killed
    ::_exit(0);
  }
  char c;
  ASSERT_EQ(::read(ready[0], &c, 1), 1);
  EXPECT_THAT(second_lock_error(dir), HasSubstr("pid " + std::to_string(child)));
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  EXPECT_EQ(second_lock_error(dir), "");
  ::close(ready[0]);
  ::close(ready[1]);
}

}  // namespace
}  // namespace character
