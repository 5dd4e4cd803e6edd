//! `purview datastore`: PostgreSQL as the system of record for many `purview serve` nodes.

use super::error::{CliResult, Exit};
use super::store::storage_error;
use clap::{Args, Subcommand};
use purview::storage::postgres;

#[derive(Args, Debug)]
pub(super) struct DatastoreArgs {
    #[command(subcommand)]
    command: DatastoreCommand,
}

#[derive(Subcommand, Debug)]
enum DatastoreCommand {
    /// Create or upgrade Purview's tables in a PostgreSQL database. Versioned and idempotent:
    /// safe to run twice, or from several nodes at once (they take turns).
    ///
    /// `purview datastore migrate postgres://purview@127.0.0.1:5432/purview`
    Migrate {
        /// The database (`postgres://user[:password]@host[:port]/dbname`, or libpq's
        /// `key=value` form). `PGPASSWORD` is not read: put the password in the URL or use
        /// trust/peer authentication.
        #[arg(value_name = "URL")]
        url: String,
    },
}

pub(super) fn run(args: DatastoreArgs) -> CliResult<Exit> {
    match args.command {
        DatastoreCommand::Migrate { url } => {
            let m = postgres::migrate(&url).map_err(storage_error)?;
            if m.applied.is_empty() {
                println!("the tables are at version {}: nothing to do", m.after);
            } else {
                for a in &m.applied {
                    println!("applied migration {a}");
                }
                println!("the tables are at version {} (were {})", m.after, m.before);
            }
            Ok(Exit::Success)
        }
    }
}
