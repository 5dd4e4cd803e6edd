//! PostgreSQL as the system of record: a throwaway PostgreSQL 15 cluster per test (initdb in a
//! temp dir, loopback on an ephemeral port; as root, run as the `postgres` user), `purview
//! datastore migrate`, several `purview serve --datastore` nodes, and faults: kill -9 a node,
//! restart PostgreSQL under load.
//!
//! A machine without PostgreSQL's server binaries fails these tests saying what to install.

mod cluster;
mod migrate;
mod nodes;
mod props;
mod python;

pub use cluster::*;
