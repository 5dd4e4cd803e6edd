//! The durable store: reopen, history, concurrency, schema changes, bulk loads, faults.

pub mod basics;
mod crash;
mod faults;
mod props;
