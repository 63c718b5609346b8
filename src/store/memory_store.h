// The in-memory backend of store.h: the same semantics as the RocksDB backend (seqs,
// de-duplication, all-or-nothing appends, kConflict), without durability. For tests and
// for running the server without a disk; everything is lost with the object.
//
// MessageQueue::Write runs inline: the callback runs on the caller's thread before Write
// returns, after the store's lock is released, so it may call back into the store.
// Subscriptions are told of new entries before that, on the same thread (or, while
// another thread's Write is telling them, on that thread: they still come in seq order).
//
// Thread-safety: thread-safe (one mutex per interface).
#pragma once

#include <memory>

#include "store/store.h"

namespace sotto::store {

// A new, empty store. `clock` judges de-duplication expiry in Write; empty = the
// system clock.
std::unique_ptr<Store> NewMemoryStore(WallClock clock = {});

}  // namespace sotto::store
