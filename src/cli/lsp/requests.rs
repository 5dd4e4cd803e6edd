//! The requests and notifications `purview lsp` answers, each a translation between
//! `lsp-types` and [`purview::analysis`]: positions become byte offsets on the way in and spans
//! become UTF-16 ranges on the way out.

use super::code;
use lsp_types as lsp;
use purview::analysis::lines::{LineIndex, Position};
use purview::analysis::{completions, Document, Symbol, SymbolKind, Symbols};
use purview::diag::Diagnostic;
use purview::syntax::ast::Span;
use purview::syntax::SchemaFormat;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// A JSON-RPC error: code and message.
pub(super) type RpcError = (i64, String);

/// An open document.
struct Open {
    uri: lsp::Uri,
    version: i32,
    doc: Document,
    lines: LineIndex,
    /// The symbols of the last version that parsed, for completion while typing.
    good: Symbols,
}

impl Open {
    /// Analyses a document; a SpiceDB schema's imports are read relative to the document's file,
    /// from the open documents first (their text as edited), else from disk.
    fn new(
        uri: lsp::Uri,
        version: i32,
        format: SchemaFormat,
        text: String,
        good: Symbols,
        others: &HashMap<String, Open>,
    ) -> Open {
        let lines = LineIndex::new(&text);
        let doc = match file_path(&uri) {
            Some(path) => {
                let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
                let read = |p: &Path| {
                    let open = others.values().find(|o| file_path(&o.uri).is_some_and(|q| q == p));
                    match open {
                        Some(o) => Ok(o.doc.text.clone()),
                        None => std::fs::read_to_string(p).map_err(|e| e.to_string()),
                    }
                };
                Document::analyze_with_imports(format, text, &dir, read)
            }
            // Not a file: there is nothing to read imports relative to.
            None => Document::analyze(format, text),
        };
        let good = if doc.ast.is_some() { doc.symbols.clone() } else { good };
        Open { uri, version, doc, lines, good }
    }

    fn range(&self, span: Span) -> lsp::Range {
        let text = &self.doc.text;
        lsp::Range {
            start: pos(self.lines.position(text, span.start)),
            end: pos(self.lines.position(text, span.end)),
        }
    }

    fn offset(&self, p: lsp::Position) -> usize {
        self.lines.offset(&self.doc.text, Position { line: p.line, character: p.character })
    }

    fn location(&self, span: Span) -> lsp::Location {
        lsp::Location { uri: self.uri.clone(), range: self.range(span) }
    }

    fn whole(&self) -> lsp::Range {
        self.range(Span::new(0, self.doc.text.len()))
    }
}

/// The path of a `file:` URI (`file:///a/b%20c.zed` is `/a/b c.zed`).
fn file_path(uri: &lsp::Uri) -> Option<PathBuf> {
    let rest = uri.as_str().strip_prefix("file://")?;
    let rest = rest.strip_prefix("localhost").unwrap_or(rest);
    let bytes = rest.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(h), Some(l)) => {
                out.push(u8::try_from(h * 16 + l).unwrap_or(b'?'));
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    Some(PathBuf::from(String::from_utf8(out).ok()?))
}

fn pos(p: Position) -> lsp::Position {
    lsp::Position { line: p.line, character: p.character }
}

#[derive(Default)]
pub(super) struct Server {
    initialized: bool,
    pub(super) shut_down: bool,
    pub(super) exited: bool,
    docs: HashMap<String, Open>,
}

fn params<P: DeserializeOwned>(value: Value) -> Result<P, RpcError> {
    serde_json::from_value(value).map_err(|e| (code::INVALID_PARAMS, format!("invalid params: {e}")))
}

fn to_value(v: impl serde::Serialize) -> Result<Value, RpcError> {
    serde_json::to_value(v).map_err(|e| (code::REQUEST_FAILED, e.to_string()))
}

impl Server {
    /// Answers a request.
    pub(super) fn request(&mut self, method: &str, p: Value) -> Result<Value, RpcError> {
        if self.shut_down {
            return Err((code::INVALID_REQUEST, format!("`{method}` after shutdown")));
        }
        if method == "initialize" {
            let _: lsp::InitializeParams = params(p)?;
            self.initialized = true;
            return to_value(initialize_result());
        }
        if !self.initialized {
            return Err((code::SERVER_NOT_INITIALIZED, format!("`{method}` before `initialize`")));
        }
        match method {
            "shutdown" => {
                self.shut_down = true;
                Ok(Value::Null)
            }
            "textDocument/hover" => {
                let p: lsp::HoverParams = params(p)?;
                let (open, at) = self.at(&p.text_document_position_params)?;
                let hover = open.doc.hover(at).map(|h| lsp::Hover {
                    contents: lsp::HoverContents::Markup(lsp::MarkupContent {
                        kind: lsp::MarkupKind::Markdown,
                        value: h.markdown,
                    }),
                    range: Some(open.range(h.span)),
                });
                to_value(hover)
            }
            "textDocument/definition" => {
                let p: lsp::GotoDefinitionParams = params(p)?;
                let (open, at) = self.at(&p.text_document_position_params)?;
                let found: Vec<lsp::Location> =
                    open.doc.definitions(at).iter().map(|s| open.location(s.name_span)).collect();
                to_value(found)
            }
            "textDocument/references" => {
                let p: lsp::ReferenceParams = params(p)?;
                let (open, at) = self.at(&p.text_document_position)?;
                let found: Vec<lsp::Location> = open
                    .doc
                    .references(at, p.context.include_declaration)
                    .into_iter()
                    .map(|s| open.location(s))
                    .collect();
                to_value(found)
            }
            "textDocument/completion" => {
                let p: lsp::CompletionParams = params(p)?;
                let (open, at) = self.at(&p.text_document_position)?;
                let items: Vec<lsp::CompletionItem> =
                    completions(&open.doc.text, at, &open.good).into_iter().map(completion_item).collect();
                to_value(items)
            }
            "textDocument/prepareRename" => {
                let p: lsp::TextDocumentPositionParams = params(p)?;
                let (open, at) = self.at(&p)?;
                let found = open.doc.prepare_rename(at).map(|(span, placeholder)| {
                    lsp::PrepareRenameResponse::RangeWithPlaceholder { range: open.range(span), placeholder }
                });
                to_value(found)
            }
            "textDocument/rename" => {
                let p: lsp::RenameParams = params(p)?;
                let (open, at) = self.at(&p.text_document_position)?;
                let edits =
                    open.doc.rename(at, &p.new_name).map_err(|e| (code::REQUEST_FAILED, e.to_string()))?;
                let edits: Vec<lsp::TextEdit> = edits
                    .into_iter()
                    .map(|(span, new_text)| lsp::TextEdit { range: open.range(span), new_text })
                    .collect();
                // A `WorkspaceEdit`, written as JSON: `lsp_types::Uri` cannot be a map key (clippy's
                // `mutable_key_type`).
                Ok(json!({"changes": {open.uri.as_str(): edits}}))
            }
            "textDocument/formatting" => {
                let p: lsp::DocumentFormattingParams = params(p)?;
                let open = self.open(&p.text_document.uri)?;
                let formatted = open.doc.formatted().map_err(|e| (code::REQUEST_FAILED, e.to_string()))?;
                let lost = super::super::files::lost_comments(&open.doc.text, &formatted);
                if open.doc.format == SchemaFormat::Purview && !lost.is_empty() {
                    return Err((
                        code::REQUEST_FAILED,
                        format!("formatting would drop the `//` comments on lines {lost:?}; this is a bug in Purview"),
                    ));
                }
                if formatted == open.doc.text {
                    return to_value(Vec::<lsp::TextEdit>::new());
                }
                to_value(vec![lsp::TextEdit { range: open.whole(), new_text: formatted }])
            }
            "textDocument/documentSymbol" => {
                let p: lsp::DocumentSymbolParams = params(p)?;
                let open = self.open(&p.text_document.uri)?;
                to_value(outline(open))
            }
            _ => Err((code::METHOD_NOT_FOUND, format!("unknown method `{method}`"))),
        }
    }

    /// Handles a notification; what it causes (diagnostics) goes to `out`. A notification
    /// cannot be answered, so bad parameters are reported on standard error.
    pub(super) fn notification(&mut self, method: &str, p: Value, out: &mut Vec<Value>) {
        if let Err((_, message)) = self.notify(method, p, out) {
            eprintln!("purview lsp: {method}: {message}");
        }
    }

    fn notify(&mut self, method: &str, p: Value, out: &mut Vec<Value>) -> Result<(), RpcError> {
        match method {
            "exit" => self.exited = true,
            "textDocument/didOpen" => {
                let p: lsp::DidOpenTextDocumentParams = params(p)?;
                let d = p.text_document;
                let format = format_of(&d.language_id, &d.uri, &d.text);
                let open =
                    Open::new(d.uri.clone(), d.version, format, d.text, Symbols::default(), &self.docs);
                out.push(publish(&open));
                self.docs.insert(d.uri.as_str().to_string(), open);
            }
            "textDocument/didChange" => {
                let p: lsp::DidChangeTextDocumentParams = params(p)?;
                let key = p.text_document.uri.as_str().to_string();
                let Some(old) = self.docs.remove(&key) else {
                    return Err((code::INVALID_PARAMS, format!("`{key}` is not open")));
                };
                let mut text = old.doc.text;
                for change in p.content_changes {
                    text = match change.range {
                        None => change.text,
                        Some(r) => {
                            let lines = LineIndex::new(&text);
                            let start = lines
                                .offset(&text, Position { line: r.start.line, character: r.start.character });
                            let end = lines
                                .offset(&text, Position { line: r.end.line, character: r.end.character });
                            let mut t = text.get(..start.min(end)).unwrap_or("").to_string();
                            t.push_str(&change.text);
                            t.push_str(text.get(end.max(start)..).unwrap_or(""));
                            t
                        }
                    };
                }
                let open =
                    Open::new(old.uri, p.text_document.version, old.doc.format, text, old.good, &self.docs);
                out.push(publish(&open));
                self.docs.insert(key, open);
            }
            "textDocument/didClose" => {
                let p: lsp::DidCloseTextDocumentParams = params(p)?;
                if let Some(open) = self.docs.remove(p.text_document.uri.as_str()) {
                    out.push(notification(
                        "textDocument/publishDiagnostics",
                        json!({"uri": open.uri, "diagnostics": []}),
                    ));
                }
            }
            // `initialized`, `didSave`, `$/cancelRequest`, `$/setTrace`, settings: nothing to do.
            _ => {}
        }
        Ok(())
    }

    fn open(&self, uri: &lsp::Uri) -> Result<&Open, RpcError> {
        self.docs
            .get(uri.as_str())
            .ok_or_else(|| (code::INVALID_PARAMS, format!("`{}` is not open", uri.as_str())))
    }

    fn at(&self, p: &lsp::TextDocumentPositionParams) -> Result<(&Open, usize), RpcError> {
        let open = self.open(&p.text_document.uri)?;
        Ok((open, open.offset(p.position)))
    }
}

fn initialize_result() -> lsp::InitializeResult {
    let capabilities = lsp::ServerCapabilities {
        position_encoding: Some(lsp::PositionEncodingKind::UTF16),
        text_document_sync: Some(lsp::TextDocumentSyncCapability::Kind(
            lsp::TextDocumentSyncKind::INCREMENTAL,
        )),
        hover_provider: Some(lsp::HoverProviderCapability::Simple(true)),
        definition_provider: Some(lsp::OneOf::Left(true)),
        references_provider: Some(lsp::OneOf::Left(true)),
        completion_provider: Some(lsp::CompletionOptions {
            trigger_characters: Some([":", "|", "#", ">", "(", "[", ","].map(String::from).to_vec()),
            ..lsp::CompletionOptions::default()
        }),
        rename_provider: Some(lsp::OneOf::Right(lsp::RenameOptions {
            prepare_provider: Some(true),
            work_done_progress_options: lsp::WorkDoneProgressOptions::default(),
        })),
        document_formatting_provider: Some(lsp::OneOf::Left(true)),
        document_symbol_provider: Some(lsp::OneOf::Left(true)),
        ..lsp::ServerCapabilities::default()
    };
    lsp::InitializeResult {
        capabilities,
        server_info: Some(lsp::ServerInfo {
            name: "purview".to_string(),
            version: Some(env!("CARGO_PKG_VERSION").to_string()),
        }),
    }
}

/// The language of a document: by its `languageId` (`purview`, `spicedb`, `zed`, `openfga`,
/// `fga`, …), else by the extension of its URI, else by its first word.
fn format_of(language_id: &str, uri: &lsp::Uri, text: &str) -> SchemaFormat {
    if language_id.eq_ignore_ascii_case("authzed") {
        return SchemaFormat::SpiceDb;
    }
    if let Ok(f) = language_id.parse::<SchemaFormat>() {
        return f;
    }
    let path = uri.path().as_str();
    purview::syntax::detect(Some(std::path::Path::new(path)), text)
}

fn notification(method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "method": method, "params": params})
}

/// The diagnostics of a document, as `purview validate` reports them: code, message, the span,
/// the label and help, and related places.
fn publish(open: &Open) -> Value {
    let diagnostics: Vec<lsp::Diagnostic> =
        open.doc.diagnostics.iter().map(|d| diagnostic(open, d)).collect();
    notification(
        "textDocument/publishDiagnostics",
        json!({"uri": open.uri, "version": open.version, "diagnostics": diagnostics}),
    )
}

fn diagnostic(open: &Open, d: &Diagnostic) -> lsp::Diagnostic {
    let mut message = d.message.clone();
    if let Some(label) = &d.label {
        message.push_str(&format!(" ({label})"));
    }
    if let Some(help) = &d.help {
        message.push_str(&format!("\nhelp: {help}"));
    }
    let related: Vec<lsp::DiagnosticRelatedInformation> = d
        .related
        .iter()
        .map(|(span, note)| lsp::DiagnosticRelatedInformation {
            location: open.location(*span),
            message: note.clone(),
        })
        .collect();
    lsp::Diagnostic {
        range: open.range(d.span),
        severity: Some(lsp::DiagnosticSeverity::ERROR),
        code: Some(lsp::NumberOrString::String(d.code.to_string())),
        source: Some("purview".to_string()),
        message,
        related_information: (!related.is_empty()).then_some(related),
        ..lsp::Diagnostic::default()
    }
}

fn completion_item(c: purview::analysis::Completion) -> lsp::CompletionItem {
    lsp::CompletionItem {
        label: c.label,
        kind: Some(item_kind(c.kind)),
        detail: Some(c.detail),
        documentation: c.doc.map(|d| {
            lsp::Documentation::MarkupContent(lsp::MarkupContent {
                kind: lsp::MarkupKind::Markdown,
                value: d,
            })
        }),
        ..lsp::CompletionItem::default()
    }
}

fn item_kind(k: SymbolKind) -> lsp::CompletionItemKind {
    match k {
        SymbolKind::Type => lsp::CompletionItemKind::CLASS,
        SymbolKind::Relation => lsp::CompletionItemKind::FIELD,
        SymbolKind::Permission => lsp::CompletionItemKind::PROPERTY,
        SymbolKind::Condition => lsp::CompletionItemKind::FUNCTION,
    }
}

/// Types with their relations and permissions, and conditions, as an outline.
fn outline(open: &Open) -> Vec<lsp::DocumentSymbol> {
    let symbols = &open.doc.symbols;
    symbols
        .symbols
        .iter()
        .filter(|s| s.owner.is_none())
        .map(|s| {
            let children: Vec<lsp::DocumentSymbol> =
                symbols.members_of(&s.name).map(|m| document_symbol(open, m, None)).collect();
            document_symbol(open, s, (s.kind == SymbolKind::Type).then_some(children))
        })
        .collect()
}

#[allow(deprecated, reason = "`DocumentSymbol::deprecated` must be written; `tags` replaces it")]
fn document_symbol(
    open: &Open,
    s: &Symbol,
    children: Option<Vec<lsp::DocumentSymbol>>,
) -> lsp::DocumentSymbol {
    lsp::DocumentSymbol {
        name: s.name.clone(),
        detail: Some(s.signature.clone()),
        kind: match s.kind {
            SymbolKind::Type => lsp::SymbolKind::CLASS,
            SymbolKind::Relation => lsp::SymbolKind::FIELD,
            SymbolKind::Permission => lsp::SymbolKind::PROPERTY,
            SymbolKind::Condition => lsp::SymbolKind::FUNCTION,
        },
        tags: None,
        deprecated: None,
        range: open.range(s.span.join(s.name_span)),
        selection_range: open.range(s.name_span),
        children,
    }
}
