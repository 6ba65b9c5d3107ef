// The process-wide registry of loaded model versions, keyed by
// "<model>:<version>". Every thread looks sessions up here, so all workers
// run the same session (one copy of the weights). Each Load() of a key is
// balanced by one Release(); the registry drops the session when the count
// reaches zero, and the session itself is destroyed once the last run that
// still holds it returns.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "model_session.h"

namespace weir {

struct RegistryEntryInfo {
  std::string key;
  std::string model_path;
  int references;
};

class SessionRegistry {
 public:
  static SessionRegistry& Instance();

  // Loads the model, or adds a reference to the session already loaded under
  // `key` (which must come from the same file). Slow: call off the JS thread.
  std::shared_ptr<ModelSession> Load(const std::string& key, const std::string& model_path,
                                     const SessionConfig& config);

  // Drops one reference; returns the references left (0: unloaded).
  int Release(const std::string& key);

  // The session under `key`, held for the duration of a run.
  std::shared_ptr<ModelSession> Find(const std::string& key) const;

  std::vector<RegistryEntryInfo> List() const;

 private:
  struct Entry {
    std::shared_ptr<ModelSession> session;
    std::string model_path;
    int references;
  };

  // Adds a reference to an existing entry; the caller holds mutex_.
  std::shared_ptr<ModelSession> AddReference(Entry& entry, const std::string& key, const std::string& model_path);

  mutable std::mutex mutex_;
  std::unordered_map<std::string, Entry> entries_;
};

}  // namespace weir
