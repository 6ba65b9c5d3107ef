#include "session_registry.h"

#include "errors.h"

namespace weir {

SessionRegistry& SessionRegistry::Instance() {
  // Never destroyed: worker threads may still hold sessions while the process exits.
  static auto* registry = new SessionRegistry();
  return *registry;
}

std::shared_ptr<ModelSession> SessionRegistry::AddReference(Entry& entry, const std::string& key,
                                                            const std::string& model_path) {
  if (entry.model_path != model_path) {
    throw CodedError("WEIR_SESSION_CONFLICT", "session '" + key + "' is already loaded from " + entry.model_path +
                                                  ", not " + model_path + "; release it before loading another file");
  }
  entry.references += 1;
  return entry.session;
}

std::shared_ptr<ModelSession> SessionRegistry::Load(const std::string& key, const std::string& model_path,
                                                    const SessionConfig& config) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = entries_.find(key);
    if (it != entries_.end()) return AddReference(it->second, key, model_path);
  }
  // Built without the lock: loading a large model takes long, and other
  // versions must stay usable meanwhile.
  auto session = std::make_shared<ModelSession>(model_path, config);

  std::lock_guard<std::mutex> lock(mutex_);
  auto it = entries_.find(key);
  if (it != entries_.end()) return AddReference(it->second, key, model_path);  // a concurrent Load won
  entries_.emplace(key, Entry{session, model_path, 1});
  return session;
}

int SessionRegistry::Release(const std::string& key) {
  std::shared_ptr<ModelSession> last;  // destroyed after the lock is released
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = entries_.find(key);
  if (it == entries_.end()) {
    throw CodedError("WEIR_SESSION_NOT_LOADED", "no session is loaded under '" + key + "'");
  }
  const int left = --it->second.references;
  if (left == 0) {
    last = std::move(it->second.session);
    entries_.erase(it);
  }
  return left;
}

std::shared_ptr<ModelSession> SessionRegistry::Find(const std::string& key) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = entries_.find(key);
  if (it == entries_.end()) {
    throw CodedError("WEIR_SESSION_NOT_LOADED", "no session is loaded under '" + key + "'");
  }
  return it->second.session;
}

std::vector<RegistryEntryInfo> SessionRegistry::List() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<RegistryEntryInfo> list;
  for (const auto& [key, entry] : entries_) list.push_back({key, entry.model_path, entry.references});
  return list;
}

}  // namespace weir
