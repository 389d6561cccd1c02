#include "common/subprocess.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <thread>

#include "common/clock.h"

namespace tessera {

Result<pid_t> SpawnProcess(const std::vector<std::string>& args, const std::string& log_path) {
  if (args.empty()) return InvalidArgument("no program to spawn");
  // Everything the child needs is built before fork: no allocation after it.
  std::vector<std::string> copy = args;
  std::vector<char*> argv;
  for (auto& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) return Status::FromErrno(errno, "fork");
  if (pid == 0) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(1);  // the parent died before prctl
    // A group of its own: a terminal's Ctrl-C (or `timeout`) signals the
    // caller's group, and the caller, not the signal, decides when its
    // helpers stop (tessera run keeps its cluster until the program is done).
    setpgid(0, 0);
    if (!log_path.empty()) {
      int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
      if (fd >= 0) {
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
      }
    }
    execvp(argv[0], argv.data());
    _exit(127);
  }
  return pid;
}

void StopProcess(pid_t pid, int grace_ms) {
  if (pid <= 0) return;
  kill(pid, SIGTERM);
  uint64_t deadline = NowNanos() + static_cast<uint64_t>(grace_ms) * 1'000'000;
  int status;
  while (waitpid(pid, &status, WNOHANG) == 0) {
    if (NowNanos() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

}  // namespace tessera
