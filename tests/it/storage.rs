//! The durable store: reopen, history, concurrency, schema changes, bulk loads, faults.

mod basics;
