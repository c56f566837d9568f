// One process at a time in a directory that a run writes (a pipeline run, generate-data's
// --out, a training run): two resumes of the same run would both pay for every teacher
// request and interleave their ledgers. An advisory lock (flock) on DIR/.lock, held while
// the object lives; the kernel drops it when the process dies, SIGKILL included, so a
// killed run never leaves a stale lock behind.
#pragma once

#include <filesystem>
#include <string>

namespace character {

class DirLock {
 public:
  // Takes the lock on dir/.lock (creating dir and the file); ConfigError naming `what`, the
  // directory and the holder's process id when another process holds it.
  DirLock(const std::filesystem::path& dir, const std::string& what);
  ~DirLock();
  DirLock(const DirLock&) = delete;
  DirLock& operator=(const DirLock&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace character
