// SpinLock and BuiltOnce across fork(): what another thread held or was
// building when the process forked is free in the child (issue 18: 1 % of
// children forked beside a sending thread spun for ever in close()).
#include "fork_safe.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <thread>

namespace {

using zctls::BuiltOnce;
using zctls::SpinLock;

// Runs `child` in a fork child with a 10 s alarm; its exit status, or -1
// if it died of a signal (the alarm: it hung).
template <typename Child>
int in_fork_child(Child child) {
  const pid_t pid = fork();
  if (pid == 0) {
    alarm(10);
    _exit(child());
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// A thread that holds `lock` until release() (or its destruction).
class Holder {
 public:
  explicit Holder(SpinLock& lock) {
    thread_ = std::thread([&] {
      lock.lock();
      held_.store(true);
      while (!release_.load()) std::this_thread::yield();
      lock.unlock();
    });
    while (!held_.load()) std::this_thread::yield();
  }
  ~Holder() {
    release_.store(true);
    thread_.join();
  }

 private:
  std::atomic<bool> held_{false}, release_{false};
  std::thread thread_;
};

TEST(SpinLock, HeldInThisProcessMeansHeld) {
  SpinLock lock;
  const Holder holder(lock);
  EXPECT_FALSE(lock.try_lock());
}

TEST(SpinLock, HeldByAnotherThreadAtForkIsFreeInTheChild) {
  SpinLock lock;
  const Holder holder(lock);
  EXPECT_EQ(in_fork_child([&] {
              zctls::note_fork_in_child();  // what the atfork handler does first
              lock.lock();
              lock.unlock();
              lock.lock();  // and it is an ordinary lock again
              return lock.try_lock() ? 1 : 0;
            }),
            0);
  // The child's take-over changed nothing here.
  EXPECT_FALSE(lock.try_lock());
}

// Without the handler (a raw clone(2)) the child cannot tell: the limit
// fork_safe.h states, and why the runtime registers the handler.
TEST(SpinLock, WithoutTheForkHandlerTheChildSeesItHeld) {
  SpinLock lock;
  const Holder holder(lock);
  EXPECT_EQ(in_fork_child([&] { return lock.try_lock() ? 1 : 0; }), 0);
}

TEST(SpinLock, GrandchildrenToo) {
  SpinLock lock;
  const Holder holder(lock);
  EXPECT_EQ(in_fork_child([&] {
              zctls::note_fork_in_child();
              lock.lock();  // held by the child now, at the fork below
              return in_fork_child([&] {
                zctls::note_fork_in_child();
                lock.lock();
                return 0;
              });
            }),
            0);
}

TEST(BuiltOnce, BuildsOnceAndKeepsIt) {
  BuiltOnce<int> once;
  static int value = 7;
  int builds = 0;
  EXPECT_EQ(once.get(), nullptr);
  EXPECT_EQ(once.get_or_build([&] { return ++builds, &value; }), &value);
  EXPECT_EQ(once.get_or_build([&] { return ++builds, &value; }), &value);
  EXPECT_EQ(builds, 1);
}

TEST(BuiltOnce, AFailedBuildIsTriedAgain) {
  BuiltOnce<int> once;
  static int value = 7;
  EXPECT_EQ(once.get_or_build([] { return static_cast<int*>(nullptr); }), nullptr);
  EXPECT_EQ(once.get_or_build([] { return &value; }), &value);
}

// A child forked while another thread was building builds its own.
TEST(BuiltOnce, ABuildUnderWayAtForkIsDoneAgainInTheChild) {
  BuiltOnce<int> once;
  static int parent_value = 1, child_value = 2;
  std::atomic<bool> building{false}, finish{false};
  std::thread builder([&] {
    once.get_or_build([&] {
      building.store(true);
      while (!finish.load()) std::this_thread::yield();
      return &parent_value;
    });
  });
  while (!building.load()) std::this_thread::yield();
  EXPECT_EQ(in_fork_child([&] {
              zctls::note_fork_in_child();
              return once.get_or_build([] { return &child_value; }) == &child_value ? 0 : 1;
            }),
            0);
  finish.store(true);
  builder.join();
  EXPECT_EQ(once.get(), &parent_value);
}

}  // namespace
