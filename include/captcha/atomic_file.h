// Writing a file whole or not at all: the bytes go to PATH.tmp, which is synced to the disk and
// then renamed to PATH, and the folder synced, so that after a crash of the machine PATH holds
// either its previous content or the new one, whole.
#pragma once

#include <string>

namespace captcha {

// Throws Error naming `path` when the file cannot be written, synced or moved into place.
void write_file_atomically(const std::string& path, const std::string& bytes);

// fsync of the file `path`; false where it cannot be opened or synced.
bool sync_to_disk(const std::string& path);
// fsync of the folder holding `path`, so that a rename into it lasts (best effort).
void sync_folder_of(const std::string& path);

// An exclusive lock on `folder` (an advisory lock on its file ".lock"), held while the object
// lives and released by the system if the process dies: two trainers never write one run folder.
class FolderLock {
 public:
  // Throws Error naming `folder` where another process (or another lock of this one) holds it,
  // or the lock file cannot be made.
  explicit FolderLock(const std::string& folder);
  ~FolderLock();
  FolderLock(const FolderLock&) = delete;
  FolderLock& operator=(const FolderLock&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace captcha
