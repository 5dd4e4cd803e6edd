//! `purview lsp`: a test client speaks JSON-RPC to the binary over its standard input and
//! output. Diagnostics are compared with what `purview validate --error-format json` reports for
//! the same file (the same codes, messages, hints and spans), formatting with `purview fmt`.

use serde_json::{json, Value};
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::Duration;

/// How long one answer may take before the test fails (the server answers in milliseconds).
const PATIENCE: Duration = Duration::from_secs(20);

struct Client {
    child: Child,
    stdin: Option<ChildStdin>,
    incoming: Receiver<Value>,
    /// Notifications read while waiting for a response.
    notifications: VecDeque<Value>,
    next_id: i64,
}

impl Client {
    fn start() -> Client {
        let mut child = Command::new(env!("CARGO_BIN_EXE_purview"))
            .args(["lsp", "--stdio"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the purview binary runs");
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, incoming) = mpsc::channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            loop {
                let mut length = None;
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let line = line.trim_end();
                    if line.is_empty() {
                        break;
                    }
                    if let Some(n) = line.strip_prefix("Content-Length: ") {
                        length = n.parse::<usize>().ok();
                    }
                }
                let mut body = vec![0; length.expect("every message has a Content-Length")];
                if r.read_exact(&mut body).is_err() {
                    return;
                }
                let v: Value = serde_json::from_slice(&body).expect("the server writes JSON");
                if tx.send(v).is_err() {
                    return;
                }
            }
        });
        let stdin = child.stdin.take();
        Client { child, stdin, incoming, notifications: VecDeque::new(), next_id: 1 }
    }

    fn send_raw(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin is open");
        stdin.write_all(bytes).expect("the server reads");
        stdin.flush().expect("the server reads");
    }

    fn send(&mut self, message: &Value) {
        let body = message.to_string();
        self.send_raw(format!("Content-Length: {}\r\n\r\n{body}", body.len()).as_bytes());
    }

    fn next(&mut self) -> Value {
        self.incoming.recv_timeout(PATIENCE).expect("the server answers")
    }

    /// Sends a request and waits for its response (its `result` or `error` object).
    fn call(&mut self, method: &str, params: Value) -> Result<Value, Value> {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        self.response(json!(id))
    }

    fn response(&mut self, id: Value) -> Result<Value, Value> {
        loop {
            let m = self.next();
            if m.get("method").is_some() {
                self.notifications.push_back(m);
                continue;
            }
            assert_eq!(m["jsonrpc"], "2.0");
            assert_eq!(m["id"], id, "responses come in order: {m}");
            return match m.get("error") {
                Some(e) => Err(e.clone()),
                None => Ok(m["result"].clone()),
            };
        }
    }

    fn result(&mut self, method: &str, params: Value) -> Value {
        self.call(method, params).unwrap_or_else(|e| panic!("{method} failed: {e}"))
    }

    fn notify(&mut self, method: &str, params: Value) {
        self.send(&json!({"jsonrpc": "2.0", "method": method, "params": params}));
    }

    /// The next `publishDiagnostics` for `uri`.
    fn diagnostics(&mut self, uri: &str) -> Vec<Value> {
        loop {
            let m = match self.notifications.pop_front() {
                Some(m) => m,
                None => self.next(),
            };
            if m["method"] == "textDocument/publishDiagnostics" && m["params"]["uri"] == uri {
                return m["params"]["diagnostics"].as_array().cloned().unwrap_or_default();
            }
        }
    }

    fn initialize(&mut self) -> Value {
        let r = self.result("initialize", json!({"capabilities": {}, "processId": null, "rootUri": null}));
        self.notify("initialized", json!({}));
        r
    }

    fn open(&mut self, uri: &str, language: &str, text: &str) -> Vec<Value> {
        self.notify(
            "textDocument/didOpen",
            json!({"textDocument": {"uri": uri, "languageId": language, "version": 1, "text": text}}),
        );
        self.diagnostics(uri)
    }

    /// Shuts down and exits; the exit code.
    fn finish(mut self, shutdown: bool) -> i32 {
        if shutdown {
            assert_eq!(self.result("shutdown", Value::Null), Value::Null);
        }
        self.notify("exit", Value::Null);
        drop(self.stdin.take());
        let status = wait(&mut self.child);
        status.code().unwrap_or(-1)
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait(child: &mut Child) -> std::process::ExitStatus {
    let start = std::time::Instant::now();
    loop {
        if let Some(s) = child.try_wait().expect("the server can be waited for") {
            return s;
        }
        assert!(start.elapsed() < PATIENCE, "the server did not exit");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The LSP position (0-based line, UTF-16 column) of byte `offset` in `text`, computed here
/// independently of the server.
fn position(text: &str, offset: usize) -> Value {
    let before = &text[..offset];
    let line = before.matches('\n').count();
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    json!({"line": line, "character": text[line_start..offset].encode_utf16().count()})
}

fn range(text: &str, start: usize, end: usize) -> Value {
    json!({"start": position(text, start), "end": position(text, end)})
}

fn offset_of(text: &str, needle: &str, nth: usize) -> usize {
    text.match_indices(needle).nth(nth).unwrap_or_else(|| panic!("`{needle}` #{nth} not in the text")).0
}

fn at(uri: &str, text: &str, offset: usize) -> Value {
    json!({"textDocument": {"uri": uri}, "position": position(text, offset)})
}

/// A schema with a non-ASCII comment before two errors (an unknown relation, an unknown condition).
const BROKEN: &str = "// Größe 𝄞 — a comment whose columns differ in bytes, chars and UTF-16 units.
type user {}

type folder {
  relation viewer: user
  permission view = viewer
}

/// A document, in a folder.
type document {
  relation parent: folder
  /// Who may read it.
  relation reader: user with in_hour
  /// Readers and the folder's viewers. 𝄞
  permission view = raeder + parent->view
}

condition in_hours(hour: int) {
  hour >= 8
}
";

/// What `purview validate --error-format json` reports for `text` in a file named `name`.
fn validate(name: &str, text: &str) -> Vec<Value> {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join(name);
    std::fs::write(&path, text).expect("the file is written");
    let out = Command::new(env!("CARGO_BIN_EXE_purview"))
        .args(["--error-format", "json", "validate"])
        .arg(&path)
        .output()
        .expect("purview validate runs");
    let v: Value = serde_json::from_slice(&out.stderr).expect("validate reports JSON");
    v["error"]["diagnostics"].as_array().cloned().expect("validate reports diagnostics")
}

fn cli(args: &[&str], file: (&str, &str)) -> String {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join(file.0);
    std::fs::write(&path, file.1).expect("the file is written");
    let out =
        Command::new(env!("CARGO_BIN_EXE_purview")).args(args).arg(&path).output().expect("purview runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("UTF-8")
}

/// Every diagnostic of `validate` is published with the same code, message, hint and span.
fn assert_same_as_validate(text: &str, published: &[Value], expected: &[Value]) {
    assert_eq!(published.len(), expected.len(), "published {published:#?}\nvalidate {expected:#?}");
    for (p, e) in published.iter().zip(expected) {
        assert_eq!(p["code"], e["code"]);
        let message = p["message"].as_str().expect("a message");
        assert!(message.starts_with(e["message"].as_str().expect("a message")), "{message}");
        if let Some(help) = e["help"].as_str() {
            assert!(message.ends_with(&format!("help: {help}")), "{message}");
        }
        let (start, end) =
            (e["span"]["start"].as_u64().unwrap() as usize, e["span"]["end"].as_u64().unwrap() as usize);
        assert_eq!(p["range"], range(text, start, end), "{}", e["message"]);
        assert_eq!(p["severity"], 1);
        assert_eq!(p["source"], "purview");
    }
}

#[test]
fn a_session_diagnoses_hovers_navigates_formats_and_shuts_down() {
    let mut c = Client::start();
    let init = c.initialize();
    let caps = &init["capabilities"];
    for cap in ["hoverProvider", "definitionProvider", "referencesProvider", "documentFormattingProvider"] {
        assert_eq!(caps[cap], true, "{cap}: {init}");
    }
    assert_eq!(caps["positionEncoding"], "utf-16");

    let uri = "file:///work/schema.pv";
    let published = c.open(uri, "purview", BROKEN);
    let expected = validate("schema.pv", BROKEN);
    assert_eq!(expected.len(), 2, "the schema has two errors: {expected:#?}");
    assert_same_as_validate(BROKEN, &published, &expected);
    // The ranges really are past the non-ASCII characters: `raeder` in UTF-16 columns.
    let raeder = offset_of(BROKEN, "raeder", 0);
    assert_eq!(published[1]["range"]["start"]["character"], 20);
    assert_eq!(published[1]["range"]["end"], position(BROKEN, raeder + "raeder".len()));

    // Hover: a relation's subject types and doc, a permission's expression and doc.
    let h = c.result("textDocument/hover", at(uri, BROKEN, offset_of(BROKEN, "reader:", 0) + 2));
    let md = h["contents"]["value"].as_str().expect("markdown");
    assert!(md.contains("relation reader: user with in_hour"), "{md}");
    assert!(md.contains("Who may read it."), "{md}");
    let view = offset_of(BROKEN, "view = raeder", 0);
    let h = c.result("textDocument/hover", at(uri, BROKEN, view));
    let md = h["contents"]["value"].as_str().expect("markdown");
    assert!(md.contains("permission view = raeder + parent->view"), "{md}");
    assert!(md.contains("Readers and the folder's viewers. 𝄞"), "{md}");
    assert_eq!(h["range"], range(BROKEN, view, view + 4));
    // Nothing to say inside CEL.
    assert_eq!(c.result("textDocument/hover", at(uri, BROKEN, offset_of(BROKEN, "hour >=", 0))), Value::Null);

    // Go to definition: `parent->view` is `view` on `folder`; `folder` is the type.
    let target = offset_of(BROKEN, "parent->view", 0) + "parent->".len();
    let defs = c.result("textDocument/definition", at(uri, BROKEN, target + 1));
    let folder_view = offset_of(BROKEN, "view = viewer", 0);
    assert_eq!(defs, json!([{"uri": uri, "range": range(BROKEN, folder_view, folder_view + 4)}]));
    let defs = c.result("textDocument/definition", at(uri, BROKEN, offset_of(BROKEN, "folder\n", 0)));
    let folder = offset_of(BROKEN, "folder {", 0);
    assert_eq!(defs, json!([{"uri": uri, "range": range(BROKEN, folder, folder + 6)}]));

    // References of `user`: its definition and both subject types.
    let refs = c.result(
        "textDocument/references",
        json!({"textDocument": {"uri": uri}, "position": position(BROKEN, offset_of(BROKEN, "user {}", 0)), "context": {"includeDeclaration": true}}),
    );
    assert_eq!(refs.as_array().map(Vec::len), Some(3), "{refs}");

    // Completion after `parent->`, as typed (the text does not parse meanwhile).
    let typing = BROKEN.replace("+ parent->view", "+ parent->");
    c.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": uri, "version": 2}, "contentChanges": [{"text": typing}]}),
    );
    let published = c.diagnostics(uri);
    assert_eq!(published.len(), 1, "{published:#?}");
    assert_eq!(published[0]["code"], "syntax");
    let items = c.result("textDocument/completion", at(uri, &typing, offset_of(&typing, "parent->", 0) + 8));
    let labels: Vec<&str> =
        items.as_array().expect("items").iter().filter_map(|i| i["label"].as_str()).collect();
    assert_eq!(labels, ["viewer", "view"]);

    // Fix both errors with an incremental change, then rename `reader`.
    let fixed = BROKEN.replace("in_hour\n", "in_hours\n").replace("raeder", "reader");
    c.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": uri, "version": 3}, "contentChanges": [
            {"range": range(&typing, 0, typing.len()), "text": BROKEN},
            {"range": range(BROKEN, raeder, raeder + 6), "text": "reader"},
            {"range": range(BROKEN, offset_of(BROKEN, "in_hour\n", 0), offset_of(BROKEN, "in_hour\n", 0) + 7), "text": "in_hours"},
        ]}),
    );
    assert_eq!(c.diagnostics(uri), Vec::<Value>::new());
    let edit = c.result(
        "textDocument/rename",
        json!({"textDocument": {"uri": uri}, "position": position(&fixed, offset_of(&fixed, "reader +", 0)), "newName": "audience"}),
    );
    assert_eq!(edit["changes"][uri].as_array().map(Vec::len), Some(2), "{edit}");
    let clash = c.call(
        "textDocument/rename",
        json!({"textDocument": {"uri": uri}, "position": position(&fixed, offset_of(&fixed, "reader +", 0)), "newName": "parent"}),
    );
    assert!(clash.is_err(), "a rename onto another name is refused: {clash:?}");

    // Formatting is `purview fmt`.
    let messy = fixed
        .replace("type user {}", "type   user {   }")
        .replace("  relation viewer", "      relation viewer");
    c.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": uri, "version": 4}, "contentChanges": [{"text": messy}]}),
    );
    assert_eq!(c.diagnostics(uri), Vec::<Value>::new());
    let edits = c.result(
        "textDocument/formatting",
        json!({"textDocument": {"uri": uri}, "options": {"tabSize": 2, "insertSpaces": true}}),
    );
    let expected = cli(&["fmt"], ("schema.pv", &messy));
    assert_ne!(expected, messy);
    assert_eq!(edits, json!([{"range": range(&messy, 0, messy.len()), "newText": expected}]));

    assert_eq!(c.finish(true), 0);
}

#[test]
fn spicedb_and_openfga_documents_get_diagnostics_and_navigation() {
    let mut c = Client::start();
    c.initialize();
    let zed = "/** a user — ünïcode */\ndefinition user {}\n\ndefinition doc {\n  relation viewer: user\n  permission view = viewer + editor\n}\n";
    let uri = "file:///work/schema.zed";
    // The language comes from the extension when the editor's languageId is not one Purview knows.
    let published = c.open(uri, "plaintext", zed);
    assert_same_as_validate(zed, &published, &validate("schema.zed", zed));
    assert_eq!(published.len(), 1);
    let defs = c.result("textDocument/definition", at(uri, zed, offset_of(zed, "viewer +", 0)));
    let viewer = offset_of(zed, "viewer:", 0);
    assert_eq!(defs, json!([{"uri": uri, "range": range(zed, viewer, viewer + 6)}]));
    let h = c.result("textDocument/hover", at(uri, zed, offset_of(zed, "user\n", 0)));
    assert!(h["contents"]["value"].as_str().is_some_and(|m| m.contains("a user — ünïcode")), "{h}");
    // Formatting lays it out as `purview fmt` does.
    let messy = zed.replace("  relation", "relation").replace("definition doc", "\n\n   definition doc");
    c.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": uri, "version": 2}, "contentChanges": [{"text": messy}]}),
    );
    assert_eq!(c.diagnostics(uri).len(), 1);
    let edits = c.result(
        "textDocument/formatting",
        json!({"textDocument": {"uri": uri}, "options": {"tabSize": 2, "insertSpaces": true}}),
    );
    let expected = cli(&["fmt"], ("schema.zed", &messy));
    assert_eq!(expected, zed);
    assert_eq!(edits, json!([{"range": range(&messy, 0, messy.len()), "newText": expected}]));

    let fga = "model\n  schema 1.1\n\ntype user\n\ntype doc\n  relations\n    define viewer: [user]\n    define view: viewer or editor\n";
    let uri = "file:///work/model.fga";
    let published = c.open(uri, "openfga", fga);
    assert_same_as_validate(fga, &published, &validate("model.fga", fga));
    assert_eq!(published.len(), 1);
    let defs = c.result("textDocument/definition", at(uri, fga, offset_of(fga, "viewer or", 0)));
    let viewer = offset_of(fga, "viewer:", 0);
    assert_eq!(defs, json!([{"uri": uri, "range": range(fga, viewer, viewer + 6)}]));
    assert_eq!(c.finish(true), 0);
}

#[test]
fn malformed_json_rpc_gets_error_responses_and_the_server_goes_on() {
    let mut c = Client::start();
    // Before `initialize`: refused, not crashed.
    let e = c.call("textDocument/hover", json!({})).expect_err("not initialized");
    assert_eq!(e["code"], -32002);
    c.initialize();
    let error_of =
        |m: Value| -> (Value, i64) { (m["id"].clone(), m["error"]["code"].as_i64().expect("an error code")) };

    // Not JSON.
    c.send_raw(b"Content-Length: 9\r\n\r\n{not json");
    assert_eq!(error_of(c.next()), (Value::Null, -32700));
    // No header at all: a line of JSON.
    c.send_raw(b"{\"jsonrpc\":\"2.0\",\"id\":99,\"method\":\"shutdown\"}\r\n");
    assert_eq!(error_of(c.next()), (Value::Null, -32700));
    // JSON that is no request: an array, no method, a bad id.
    c.send(&json!([1, 2]));
    assert_eq!(error_of(c.next()), (Value::Null, -32600));
    c.send(&json!({"jsonrpc": "2.0", "id": 7}));
    assert_eq!(error_of(c.next()), (json!(7), -32600));
    c.send(&json!({"jsonrpc": "2.0", "id": {"x": 1}, "method": "shutdown"}));
    assert_eq!(error_of(c.next()), (Value::Null, -32600));
    // An unknown method, bad params, a document that is not open.
    assert_eq!(c.call("purview/nonsense", json!({})).expect_err("unknown")["code"], -32601);
    assert_eq!(
        c.call("textDocument/hover", json!({"textDocument": 5})).expect_err("bad params")["code"],
        -32602
    );
    let e = c.call(
        "textDocument/definition",
        json!({"textDocument": {"uri": "file:///nowhere.pv"}, "position": {"line": 0, "character": 0}}),
    );
    assert_eq!(e.expect_err("not open")["code"], -32602);
    // Bad notifications cannot be answered and are dropped.
    c.notify("textDocument/didChange", json!({"nonsense": true}));
    c.notify("textDocument/didOpen", json!(null));
    // Positions past the end of the text are clamped.
    let text = "type user {}\n";
    assert!(c.open("file:///a.pv", "purview", text).is_empty());
    let r = c.result(
        "textDocument/hover",
        json!({"textDocument": {"uri": "file:///a.pv"}, "position": {"line": 99, "character": 99}}),
    );
    assert_eq!(r, Value::Null);
    let r = c.result(
        "textDocument/hover",
        json!({"textDocument": {"uri": "file:///a.pv"}, "position": {"line": 0, "character": 7}}),
    );
    assert!(r["contents"]["value"].as_str().is_some_and(|m| m.contains("type user")), "{r}");
    assert_eq!(c.finish(true), 0);
}

#[test]
fn exit_without_shutdown_exits_1() {
    let mut c = Client::start();
    c.initialize();
    assert_eq!(c.finish(false), 1);
    // Closing standard input ends the server too.
    let mut c = Client::start();
    c.initialize();
    drop(c.stdin.take());
    assert_eq!(wait(&mut c.child).code(), Some(1));
}

/// Laying out every SpiceDB and OpenFGA schema of the peer suites and examples keeps its tree
/// (checked inside `relayout`), is idempotent, and changes nothing but white space.
#[test]
fn layout_of_every_peer_schema_changes_only_white_space() {
    use purview::syntax::{layout::relayout, parse_as, SchemaFormat};
    let mut files = Vec::new();
    let mut stack = vec![
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/peer"),
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples"),
    ];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).expect("a directory").flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if matches!(p.extension().and_then(|e| e.to_str()), Some("zed" | "fga")) {
                files.push(p);
            }
        }
    }
    let (mut parsed, mut laid_out) = (0, 0);
    for p in files {
        let text = std::fs::read_to_string(&p).expect("readable");
        let format = if p.extension().is_some_and(|e| e == "zed") {
            SchemaFormat::SpiceDb
        } else {
            SchemaFormat::OpenFgaDsl
        };
        if parse_as(format, &text).is_err() {
            assert_eq!(relayout(format, &text), None);
            continue;
        }
        parsed += 1;
        let Some(out) = relayout(format, &text) else { continue };
        laid_out += 1;
        let squeeze = |t: &str| t.split_whitespace().collect::<String>();
        assert_eq!(squeeze(&out), squeeze(&text), "{}", p.display());
        assert_eq!(relayout(format, &out).as_deref(), Some(out.as_str()), "idempotent: {}", p.display());
    }
    assert!(parsed >= 40, "{parsed} schemas parsed");
    // A file is refused only when it keeps what its tree cannot compare (see `relayout`).
    assert!(laid_out * 10 >= parsed * 9, "{laid_out} of {parsed} laid out");
}

/// A SpiceDB document's `import`s are read relative to its file (an open document's text as
/// edited, else the file on disk); it gets its own diagnostics, and one on its first `import`
/// summing up problems inside the imported files.
#[test]
fn spicedb_imports_are_read_relative_to_the_document() {
    let dir = tempfile::tempdir().unwrap();
    let people = dir.path().join("people.zed");
    std::fs::write(&people, "definition user {}\n").unwrap();
    let main = dir.path().join("main.zed");
    let people_uri = format!("file://{}", people.display());
    let uri = format!("file://{}", main.display());
    let zed = "use import\n\nimport \"people.zed\"\n\ndefinition doc {\n  relation viewer: user\n  permission view = viewer + editor\n}\n";
    let mut c = Client::start();
    c.initialize();
    let published = c.open(&uri, "spicedb", zed);
    // `user` comes from the imported file; `editor` is this document's own mistake.
    assert_eq!(published.len(), 1, "{published:?}");
    assert!(published[0]["message"].as_str().unwrap().contains("editor"), "{published:?}");
    assert_eq!(published[0]["range"]["start"]["line"], 6);
    // The imported file, opened and broken as edited: its problem is summed up on the import.
    let broken = "definition user {\n  relation friend: nobody\n}\n";
    c.open(&people_uri, "spicedb", broken);
    c.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": uri, "version": 2}, "contentChanges": [{"text": zed.replace(" + editor", "")}]}),
    );
    let published = c.diagnostics(&uri);
    assert_eq!(published.len(), 1, "{published:?}");
    assert_eq!(published[0]["code"], "imported-file-error");
    assert_eq!(published[0]["range"]["start"]["line"], 2);
    let m = published[0]["message"].as_str().unwrap();
    assert!(m.contains("people.zed:2:") && m.contains("nobody"), "{m}");
    // A file that does not exist is reported on its import.
    std::fs::remove_file(&people).unwrap();
    let missing = zed.replace("people.zed", "nowhere.zed").replace(" + editor", "");
    c.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": uri, "version": 3}, "contentChanges": [{"text": missing}]}),
    );
    let published = c.diagnostics(&uri);
    assert_eq!(published.len(), 1, "{published:?}");
    assert_eq!(published[0]["code"], "import-not-found");
    assert_eq!(c.finish(true), 0);
}
