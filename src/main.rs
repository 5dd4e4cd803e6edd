//! The `purview` binary: see [`cli`].

mod cli;

/// A long-running server allocates from many threads: under the load generator's mixed run,
/// glibc's per-thread arenas took the resident size from 689 to 775 MB in 50 s; with mimalloc it
/// is 414 → 456 MB (samples between 415 and 474), at the same throughput.
#[cfg(feature = "server")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    cli::main()
}
