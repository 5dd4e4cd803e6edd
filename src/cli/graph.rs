//! `purview graph`: the schema as a picture (DOT, SVG or Mermaid), over [`purview::picture`].

use super::error::{CliError, CliResult, Exit};
use super::{load, schema_format_parser};
use clap::{Args, ValueEnum};
use purview::picture::{picture, split_focus, Format, PictureError};
use purview::syntax::SchemaFormat;
use std::io::Write as _;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub(super) struct GraphArgs {
    /// The schema file: Purview (`.pv`), SpiceDB (`.zed`) or OpenFGA (`.fga`, `.json`).
    #[arg(long, short, value_name = "FILE")]
    schema: PathBuf,
    /// The language of the schema (default: by extension, then content).
    #[arg(long, value_name = "FORMAT", value_parser = schema_format_parser())]
    schema_format: Option<SchemaFormat>,
    /// The language of the picture.
    #[arg(long, value_enum, default_value_t = GraphFormat::Dot)]
    format: GraphFormat,
    /// Draw only this permission (or relation) and what it depends on: `document#view`.
    #[arg(long, value_name = "TYPE#PERM")]
    permission: Option<String>,
}

/// `--format` of `purview graph`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum GraphFormat {
    /// Graphviz DOT (render with `dot -Tsvg`).
    Dot,
    /// An SVG image, laid out in pure Rust (no Graphviz needed).
    Svg,
    /// A Mermaid flowchart, for Markdown docs.
    Mermaid,
}

impl From<GraphFormat> for Format {
    fn from(f: GraphFormat) -> Self {
        match f {
            GraphFormat::Dot => Format::Dot,
            GraphFormat::Svg => Format::Svg,
            GraphFormat::Mermaid => Format::Mermaid,
        }
    }
}

pub(super) fn run(args: GraphArgs) -> CliResult<Exit> {
    let schema = load::schema_file(&args.schema, args.schema_format)?;
    let focus = match &args.permission {
        Some(p) => Some(split_focus(p).map_err(picture_error)?),
        None => None,
    };
    let text = picture(&schema, args.format.into(), focus).map_err(picture_error)?;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
    Ok(Exit::Success)
}

fn picture_error(e: PictureError) -> CliError {
    let help = e.help();
    let err = match e {
        // Not the input's fault: the layout could not be computed.
        PictureError::Layout | PictureError::TooLarge { .. } => {
            CliError::new(Exit::Evaluation, e.to_string())
        }
        _ => CliError::input(format!("invalid `--permission`: {e}")),
    };
    match help {
        Some(h) => err.with_help(h),
        None => err,
    }
}
