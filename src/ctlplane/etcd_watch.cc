// EtcdStore's watches: a thread per watch reading the gateway's streamed
// reply — one JSON object per line — and reconnecting, to the next member,
// from the revision after the last it delivered.
#include <httplib.h>

#include <condition_variable>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include "ctlplane/etcd_json.h"
#include "ctlplane/etcd_store.h"

namespace tessera::ctlplane {
namespace {

using nlohmann::json;

// What the watch's thread uses; shared with the handle, so that a handle
// destroyed from the callback (on that thread) leaves it valid.
struct WatchState {
  std::vector<std::string> endpoints;
  std::string prefix;
  std::function<void(WatchBatch)> callback;
  Revision next = 0;  // the first revision not delivered yet
  std::mutex mu;
  std::condition_variable cv;
  bool stopping = false;
  httplib::Client* client = nullptr;  // the stream being read, guarded by mu
};

// Hands `batch` to the callback unless the watch is being destroyed (maybe
// by the callback, a batch ago).
bool Deliver(WatchState& st, WatchBatch batch) {
  {
    std::lock_guard lk(st.mu);
    if (st.stopping) return false;
  }
  st.callback(std::move(batch));
  return true;
}

// What one reply line leaves the stream to do.
enum class Next { kRead, kReconnect, kEnd };

// Delivers the events of one reply line, a batch per revision. An error a
// member answers for a moment (no leader, shutting down, a cancel without a
// reason) means another try, from the same revision; a bad request or a
// compacted start revision ends the watch with that error.
Next OnLine(WatchState& st, const std::string& line) {
  json msg = json::parse(line, nullptr, false);
  if (msg.is_discarded()) {
    Deliver(st, {.error = ProtocolError("etcd watch sent " + line.substr(0, 200))});
    return Next::kEnd;
  }
  if (msg.contains("error")) {
    Status s = etcd::StatusOfError(msg["error"].is_object() ? msg["error"] : msg, "watch");
    if (s.code() != Code::kInvalidArgument) return Next::kReconnect;
    Deliver(st, {.error = s});
    return Next::kEnd;
  }
  const json& result = msg.value("result", json::object());
  if (etcd::Int(result, "compact_revision") != 0) {
    Deliver(st, {.error = InvalidArgument("watch: revision " + std::to_string(st.next) +
                                          " is compacted; the oldest kept is " +
                                          std::to_string(etcd::Int(result, "compact_revision")))});
    return Next::kEnd;
  }
  if (result.value("canceled", false)) return Next::kReconnect;
  WatchBatch batch;
  for (const json& e : result.value("events", json::array())) {
    Result<KeyValue> kv = etcd::KeyValueOf(e.value("kv", json::object()));
    if (!kv.ok()) {
      Deliver(st, {.error = kv.status()});
      return Next::kEnd;
    }
    if (!batch.events.empty() && batch.events.back().kv.mod_revision != kv->mod_revision) {
      if (!Deliver(st, std::move(batch))) return Next::kEnd;
      batch = {};
    }
    const bool deleted = e.value("type", std::string("PUT")) == "DELETE";
    batch.events.push_back({deleted ? WatchEvent::Type::kDelete : WatchEvent::Type::kPut, std::move(*kv)});
    st.next = batch.events.back().kv.mod_revision + 1;
  }
  return batch.events.empty() || Deliver(st, std::move(batch)) ? Next::kRead : Next::kEnd;
}

// Reads one stream from `endpoint` until it breaks or the watch stops. False
// when the watch has ended for good.
bool Stream(WatchState& st, const std::string& endpoint) {
  httplib::Client client("http://" + endpoint);
  client.set_connection_timeout(std::chrono::seconds(2));
  client.set_read_timeout(std::chrono::hours(24));  // a quiet prefix sends nothing
  {
    std::lock_guard lk(st.mu);
    if (st.stopping) return false;
    st.client = &client;
  }
  json create = {{"key", etcd::Base64(st.prefix)},
                 {"range_end", etcd::Base64(etcd::PrefixEnd(st.prefix))},
                 {"start_revision", std::to_string(st.next)}};
  httplib::Request req;
  req.method = "POST";
  req.path = "/v3/watch";
  req.body = json{{"create_request", create}}.dump();
  req.set_header("Content-Type", "application/json");
  std::string buffer;
  bool ended = false;
  req.content_receiver = [&](const char* data, size_t len, uint64_t, uint64_t) {
    buffer.append(data, len);
    for (size_t nl; (nl = buffer.find('\n')) != std::string::npos;) {
      std::string line = buffer.substr(0, nl);
      buffer.erase(0, nl + 1);
      if (line.empty()) continue;
      Next next = OnLine(st, line);
      if (next != Next::kRead) {
        ended = next == Next::kEnd;
        return false;
      }
    }
    std::lock_guard lk(st.mu);
    return !st.stopping;
  };
  httplib::Response res;
  httplib::Error error = httplib::Error::Success;
  client.send(req, res, error);
  if (!ended && buffer.find_first_not_of(" \r\n") != std::string::npos) ended = OnLine(st, buffer) == Next::kEnd;
  std::lock_guard lk(st.mu);
  st.client = nullptr;
  return !ended && !st.stopping;
}

void Run(const std::shared_ptr<WatchState>& st) {
  for (size_t i = 0;; ++i) {
    if (!Stream(*st, st->endpoints[i % st->endpoints.size()])) return;
    // The stream broke (its member went away): the next member, shortly.
    std::unique_lock lk(st->mu);
    if (st->cv.wait_for(lk, std::chrono::milliseconds(100), [&] { return st->stopping; })) return;
  }
}

class EtcdWatch final : public Watch {
 public:
  explicit EtcdWatch(std::shared_ptr<WatchState> st) : st_(std::move(st)), thread_([st = st_] { Run(st); }) {}
  ~EtcdWatch() override {
    {
      std::lock_guard lk(st_->mu);
      st_->stopping = true;
      if (st_->client != nullptr) st_->client->stop();
    }
    st_->cv.notify_all();
    if (std::this_thread::get_id() == thread_.get_id()) {
      thread_.detach();  // from the callback: the thread ends when it returns
    } else {
      thread_.join();
    }
  }

 private:
  std::shared_ptr<WatchState> st_;
  std::thread thread_;
};

}  // namespace

Result<std::unique_ptr<Watch>> EtcdStore::WatchPrefix(const std::string& prefix, Revision start_revision,
                                                      std::function<void(WatchBatch)> callback) {
  auto st = std::make_shared<WatchState>();
  st->endpoints = options_.endpoints;
  st->prefix = prefix;
  st->callback = std::move(callback);
  st->next = start_revision;
  // "From now" is the store's revision now, not when the stream starts: a
  // change made right after this returns is seen.
  if (start_revision == 0) {
    TS_ASSIGN_OR_RETURN(RangeResult now, Get(prefix));
    st->next = now.revision + 1;
  }
  return std::unique_ptr<Watch>(new EtcdWatch(std::move(st)));
}

}  // namespace tessera::ctlplane
