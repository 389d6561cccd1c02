// The TCP transport end to end on loopback: an echo handler, concurrent
// callers, hostile bytes, and peers that vanish.
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <optional>
#include <random>
#include <thread>

#include <gtest/gtest.h>

#include "common/clock.h"
#include "net/socket.h"
#include "net/transport.h"
#include "proto/c2ctl.h"

namespace tessera::net {
namespace {

using proto::Bytes;
using proto::ByteSpan;

// Replies to CreateRegion with a RegionInfo naming the requested region, so
// a reply proves which request it answers. Requests named "later" are
// deferred, and answered when one named "release" comes, whose id says how
// many were deferred (high 32 bits) and how many found their connection.
class EchoHandler : public Handler {
 public:
  void Handle(const proto::FrameHeader& req, ByteSpan body, Bytes* out) override {
    Result<proto::c2ctl::CreateRegion> m = proto::c2ctl::CreateRegion::Decode(body);
    if (!m.ok()) return proto::AppendErrorReply(req, m.status(), out);
    if (m->name == "later") {
      deferred_.push_back({server->Defer(req), m->size_bytes});
      return;
    }
    uint64_t id = m->size_bytes;
    if (m->name == "release") {
      id = uint64_t{deferred_.size()} << 32;
      for (auto& [d, later_id] : deferred_) {
        Bytes frame;
        proto::AppendReply(d.req, Info("later", later_id), &frame);
        id += server->SendDeferred(d, frame);
      }
      deferred_.clear();
    }
    proto::AppendReply(req, Info(m->name, id), out);
  }
  Server* server = nullptr;

 private:
  static proto::c2ctl::RegionInfo Info(const std::string& name, uint64_t id) {
    return {.id = id, .name = name, .page_size = 4096, .num_pages = 1, .pages_per_stripe = 1,
            .nodes = {{1, "x:1"}}, .fragment_nodes = {0},
            .fragment_states = {proto::c2ctl::FragmentState::kReady}};
  }
  std::vector<std::pair<Deferred, uint64_t>> deferred_;  // server thread only
};

class TransportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Result<std::unique_ptr<Server>> s = ListenTcp({}, &handler_);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    server_ = std::move(*s);
    handler_.server = server_.get();
    thread_ = std::thread([this] { CHECK_OK(server_->Run()); });
    auto t = NewTcpClientTransport({});
    ASSERT_TRUE(t.ok());
    client_ = std::move(*t);
  }
  void TearDown() override {
    client_.reset();
    server_->Stop();
    thread_.join();
  }

  // One synchronous call; returns the echoed id.
  Result<uint64_t> Call(Connection& c, const std::string& name, uint64_t id) {
    Bytes body;
    proto::Writer w(&body);
    proto::c2ctl::CreateRegion{.name = name, .size_bytes = id, .page_size = 4096}.Encode(w);
    std::atomic<bool> done{false};
    Result<uint64_t> out = Internal("no reply");
    Status sent = c.Send(proto::Op::kC2ctlCreateRegion, body,
                         [&](const Status& s, const proto::FrameHeader& h, ByteSpan b) {
                           if (!s.ok()) {
                             out = s;
                           } else {
                             auto r = proto::DecodeReply<proto::c2ctl::RegionInfo>(h, b);
                             out = r.ok() ? Result<uint64_t>(r->id) : Result<uint64_t>(r.status());
                             if (r.ok() && r->name != name) out = Internal("reply for another call");
                           }
                           done = true;
                         });
    TS_RETURN_IF_ERROR(sent);
    TS_RETURN_IF_ERROR(client_->WaitUntil([&] { return done.load(); }, NowNanos() + 5'000'000'000));
    return out;
  }

  EchoHandler handler_;
  std::unique_ptr<Server> server_;
  std::thread thread_;
  std::unique_ptr<ClientTransport> client_;
};

TEST_F(TransportTest, RequestAndReply) {
  auto c = client_->Connect(server_->address());
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  Result<uint64_t> r = Call(**c, "a", 42);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, 42u);
}

// A deferred request is answered later, after requests that came behind it
// on its connection; one whose connection has gone is dropped.
TEST_F(TransportTest, ADeferredRequestIsAnsweredLaterOnItsConnection) {
  auto c = client_->Connect(server_->address());
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  std::optional<Result<uint64_t>> later;
  std::thread waiter([&] { later = Call(**c, "later", 7); });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // let it arrive first (order only)
  Result<uint64_t> released = Call(**c, "release", 0);
  waiter.join();
  ASSERT_TRUE(released.ok()) << released.status().ToString();
  EXPECT_EQ(*released, (1ull << 32) + 1) << "one deferred reply, and it found its connection";
  ASSERT_TRUE(later->ok()) << later->status().ToString();
  EXPECT_EQ(**later, 7u);

  // A caller that goes away: once the server has seen its connection close
  // (which may take it a moment), the reply is dropped, not sent.
  bool dropped = false;
  for (int attempt = 0; attempt < 100 && !dropped; ++attempt) {
    auto gone = client_->Connect(server_->address());
    ASSERT_TRUE(gone.ok());
    std::thread abandoned([&] { EXPECT_FALSE(Call(**gone, "later", 8).ok()); });
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    (*gone)->Abort(Cancelled("the caller went away"));
    abandoned.join();
    gone->reset();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    released = Call(**c, "release", 0);
    ASSERT_TRUE(released.ok()) << released.status().ToString();
    dropped = *released == 1ull << 32;  // one deferred (it had arrived), none sent
  }
  EXPECT_TRUE(dropped) << "a reply to a closed connection found nowhere to go";
}

// A watched descriptor wakes waiters each time new data arrives on it, from
// whichever thread receives, and not again for data left unread.
TEST_F(TransportTest, AWatchedDescriptorFiresOnEachArrival) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  std::atomic<bool> fired{false};
  ASSERT_TRUE(client_->WatchFd(fds[0], &fired).ok());
  auto wait = [&](uint64_t ms) {
    return client_->WaitUntil([&] { return fired.load(); }, NowNanos() + ms * 1'000'000);
  };
  EXPECT_EQ(wait(50).code(), Code::kTimedOut) << "nothing arrived yet";
  ASSERT_EQ(write(fds[1], "x", 1), 1);
  EXPECT_TRUE(wait(5000).ok());
  fired.store(false);
  EXPECT_EQ(wait(50).code(), Code::kTimedOut) << "the byte left unread is no new arrival";
  std::thread writer([&] { ASSERT_EQ(write(fds[1], "y", 1), 1); });
  EXPECT_TRUE(wait(5000).ok());
  writer.join();
  client_->UnwatchFd(fds[0]);
  fired.store(false);
  ASSERT_EQ(write(fds[1], "z", 1), 1);
  EXPECT_EQ(wait(50).code(), Code::kTimedOut) << "unwatched";
  close(fds[0]);
  close(fds[1]);
}

TEST_F(TransportTest, ErrorRepliesCarryTheStatus) {
  auto c = client_->Connect(server_->address());
  ASSERT_TRUE(c.ok());
  std::atomic<bool> done{false};
  Status got;
  Bytes garbage = {1, 2, 3};
  ASSERT_TRUE((*c)->Send(proto::Op::kC2ctlCreateRegion, garbage,
                         [&](const Status& s, const proto::FrameHeader& h, ByteSpan b) {
                           got = s.ok() ? proto::ReplyStatus(h, b) : s;
                           done = true;
                         }).ok());
  ASSERT_TRUE(client_->WaitUntil([&] { return done.load(); }, NowNanos() + 5'000'000'000).ok());
  EXPECT_EQ(got.code(), Code::kProtocol);
  EXPECT_TRUE(Call(**c, "after", 7).ok()) << "the connection survives a bad body";
}

TEST_F(TransportTest, ManyThreadsShareOneConnection) {
  auto c = client_->Connect(server_->address());
  ASSERT_TRUE(c.ok());
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 300; ++i) {
        uint64_t id = static_cast<uint64_t>(t) * 1000 + i;
        Result<uint64_t> r = Call(**c, "t" + std::to_string(t) + "-" + std::to_string(i), id);
        if (!r.ok() || *r != id) ++wrong;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
}

TEST_F(TransportTest, ServerSurvivesHostileBytes) {
  std::mt19937 rng(1);
  auto send_raw = [&](const Bytes& bytes) {
    Result<UniqueFd> fd = Connect(server_->address(), 1000);
    ASSERT_TRUE(fd.ok());
    ::send(fd->get(), bytes.data(), bytes.size(), MSG_NOSIGNAL);
  };
  Bytes random(4096);
  for (auto& b : random) b = static_cast<uint8_t>(rng());
  send_raw(random);
  Bytes huge;
  proto::AppendHeader({.opcode = static_cast<uint8_t>(proto::Op::kC2mReadPages), .body_len = 0xFFFFFFFF}, &huge);
  send_raw(huge);
  Bytes truncated;
  proto::AppendHeader({.opcode = static_cast<uint8_t>(proto::Op::kC2mReadPages), .body_len = 100}, &truncated);
  truncated.resize(30);
  send_raw(truncated);
  auto c = client_->Connect(server_->address());
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(Call(**c, "still here", 1).ok());
}

TEST_F(TransportTest, ServerGoingAwayFailsOutstandingCalls) {
  auto c = client_->Connect(server_->address());
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(Call(**c, "x", 1).ok());
  server_->Stop();
  thread_.join();
  server_.reset();  // closes every connection
  Result<uint64_t> r = Call(**c, "y", 2);
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(r.status().code() == Code::kUnavailable) << r.status().ToString();
  // Keep TearDown's Stop/join valid.
  auto s = ListenTcp({}, &handler_);
  ASSERT_TRUE(s.ok());
  server_ = std::move(*s);
  thread_ = std::thread([this] { CHECK_OK(server_->Run()); });
}

}  // namespace
}  // namespace tessera::net
