// Ctrl-C during generation: while an InterruptGuard lives, the first SIGINT sets a flag that the
// Generator reads after each token (it then stops cleanly, flushing the text, and the command
// exits 130); a second SIGINT exits at once with 130. The previous handler comes back afterwards.
#pragma once

#include <signal.h>
#include <unistd.h>

#include <atomic>

namespace mk::cli {

inline constexpr int kExitInterrupted = 130;  // 128 + SIGINT, as shells report it

class InterruptGuard {
 public:
  InterruptGuard() {
    flag().store(false);
    struct sigaction sa {};
    sa.sa_handler = &on_sigint;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGINT, &sa, &previous_);
  }
  ~InterruptGuard() { sigaction(SIGINT, &previous_, nullptr); }
  InterruptGuard(const InterruptGuard&) = delete;
  InterruptGuard& operator=(const InterruptGuard&) = delete;

  static std::atomic<bool>& flag() {
    static std::atomic<bool> interrupted{false};
    return interrupted;
  }
  bool interrupted() const { return flag().load(); }

 private:
  static void on_sigint(int) {
    // Lock-free atomics and _exit are async-signal-safe.
    if (flag().exchange(true)) _exit(kExitInterrupted);
  }
  struct sigaction previous_ {};
};

}  // namespace mk::cli
