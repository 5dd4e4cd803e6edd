//! Damaged files, newer formats, full disks and read-only directories: a clear error, no panic,
//! no wrong answer; where the store can still be opened, it is unchanged.

use super::basics::{init, quiet};
use purview::storage::{self, StorageError, StoreOptions};
use purview::{Purview, Relationship, WriteOp};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

fn touch(text: &str) -> Vec<WriteOp> {
    text.lines().map(|l| WriteOp::Touch(Relationship::parse(l.trim()).unwrap())).collect()
}

/// A store with some history and a snapshot.
fn populated(path: &Path) -> Vec<String> {
    let pv = init(path);
    let rels: Vec<_> =
        (0..2000).map(|i| Relationship::parse(&format!("doc:d{i}#viewer@user:u{}", i % 13))).collect();
    pv.bulk_load(rels).unwrap();
    for i in 0..20 {
        pv.write(&touch(&format!("group:g{i}#member@user:u{i}\ndoc:x{i}#viewer@group:g{i}#member"))).unwrap();
    }
    let lines = pv.snapshot().relationship_lines();
    drop(pv);
    lines
}

fn warnings() -> (StoreOptions, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let opts = StoreOptions { warn: Arc::new(move |w| s.lock().unwrap().push(w.to_string())), ..quiet() };
    (opts, seen)
}

/// Every file under `dir` with its bytes.
fn contents(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(contents(&p));
        } else if p.file_name().is_some_and(|n| n != "lock") {
            out.push((p.clone(), std::fs::read(&p).unwrap()));
        }
    }
    out.sort();
    out
}

#[test]
fn a_damaged_snapshot_is_rebuilt_with_a_warning_never_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let lines = populated(&path);
    let snap = path.join("index.snapshot");
    let original = std::fs::read(&snap).unwrap();
    type Damage = Box<dyn Fn(&mut Vec<u8>)>;
    let damages: Vec<(&str, Damage)> = vec![
        ("truncated", Box::new(|b: &mut Vec<u8>| b.truncate(b.len() / 2))),
        (
            "bit-flipped in the payload",
            Box::new(|b: &mut Vec<u8>| {
                let i = b.len() - 7;
                b[i] ^= 0x10;
            }),
        ),
        ("bit-flipped in the header", Box::new(|b: &mut Vec<u8>| b[30] ^= 0x01)),
        // A snapshot written by an earlier Purview (format 1: 4-byte list offsets).
        ("of an older format", Box::new(|b: &mut Vec<u8>| b[8..12].copy_from_slice(&1u32.to_le_bytes()))),
        ("empty", Box::new(|b: &mut Vec<u8>| b.clear())),
        ("missing", Box::new(|_: &mut Vec<u8>| {})),
    ];
    for (what, damage) in damages {
        let mut bytes = original.clone();
        damage(&mut bytes);
        if what == "missing" {
            std::fs::remove_file(&snap).unwrap();
        } else {
            std::fs::write(&snap, &bytes).unwrap();
        }
        let (opts, seen) = warnings();
        let store = storage::open(&path, opts).unwrap();
        assert!(store.report.rebuilt.is_some(), "{what}: the snapshot was used");
        assert!(seen.lock().unwrap().iter().any(|w| w.contains("rebuilding")), "{what}: no warning");
        assert_eq!(store.purview().snapshot().relationship_lines(), lines, "{what}");
        assert!(storage::verify(&store).unwrap().is_empty(), "{what}");
        drop(store);
        // The rebuild wrote a good snapshot again.
        let store = storage::open(&path, quiet()).unwrap();
        assert!(store.report.rebuilt.is_none(), "{what}: {:?}", store.report);
        drop(store);
    }
}

#[test]
fn a_snapshot_of_another_store_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let lines = populated(&a);
    populated(&b);
    std::fs::copy(b.join("index.snapshot"), a.join("index.snapshot")).unwrap();
    let store = storage::open(&a, quiet()).unwrap();
    assert!(store.report.rebuilt.as_deref().unwrap_or("").contains("another store"), "{:?}", store.report);
    assert_eq!(store.purview().snapshot().relationship_lines(), lines);
}

#[test]
fn damaged_key_value_files_give_a_clear_error_or_are_found_by_verify() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let lines = populated(&path);
    let mut files: Vec<(PathBuf, Vec<u8>)> =
        contents(&path.join("kv")).into_iter().filter(|(_, b)| b.len() > 64).collect();
    files.sort_by_key(|(_, b)| std::cmp::Reverse(b.len()));
    assert!(!files.is_empty());
    for (file, bytes) in files.iter().take(6) {
        for at in [bytes.len() / 3, bytes.len() / 2, bytes.len() - 20] {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x40;
            std::fs::write(file, &damaged).unwrap();
            let result = std::panic::catch_unwind(|| match storage::open(&path, quiet()) {
                Err(e) => Err(e.to_string()),
                Ok(store) => {
                    let got = store.purview().snapshot().relationship_lines();
                    let problems = storage::verify(&store).map(|p| p.len()).unwrap_or(1);
                    Ok((got, problems))
                }
            });
            let outcome =
                result.unwrap_or_else(|_| panic!("{}: a flipped byte at {at} panicked", file.display()));
            match outcome {
                Err(message) => assert!(!message.is_empty()),
                // Opened: either it answers exactly as before, or verify reports the damage.
                Ok((got, problems)) => assert!(
                    got == lines || problems > 0,
                    "{}: a flipped byte at {at} changed the answers silently",
                    file.display()
                ),
            }
            std::fs::write(file, bytes).unwrap();
        }
    }
    let store = storage::open(&path, quiet()).unwrap();
    assert_eq!(store.purview().snapshot().relationship_lines(), lines);
}

#[test]
fn a_store_from_a_newer_format_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    populated(&path);
    std::fs::write(path.join("FORMAT"), "purview-store 99\n").unwrap();
    let before = contents(&path);
    let err = storage::open(&path, quiet()).unwrap_err();
    assert!(matches!(err, StorageError::NewerFormat { .. }), "{err}");
    assert!(err.to_string().contains("newer"), "{err}");
    assert_eq!(contents(&path), before);
    std::fs::write(path.join("FORMAT"), "something else\n").unwrap();
    assert!(matches!(storage::open(&path, quiet()), Err(StorageError::Corrupt(_))));
    let err = storage::open(dir.path(), quiet()).unwrap_err();
    assert!(matches!(err, StorageError::NotAStore { .. }), "{err}");
}

/// A tmpfs mounted for one test, unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(at).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .status();
        assert!(
            status.is_ok_and(|s| s.success()),
            "this test mounts a small tmpfs (full disk, read-only store) and needs root: run the tests as root \
             (CI does) with `mount` available (util-linux)"
        );
        Tmpfs(at.to_path_buf())
    }

    fn remount(&self, opts: &str) {
        let ok = Command::new("mount").args(["-o", &format!("remount,{opts}")]).arg(&self.0).status();
        assert!(ok.is_ok_and(|s| s.success()), "remount {opts} failed");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_fails_writes_clearly_and_keeps_what_was_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let fs = Tmpfs::mount(&dir.path().join("mnt"), "6m");
    let path = fs.0.join("store");
    let pv = init(&path);
    let mut acknowledged = Vec::new();
    let mut failure = None;
    for i in 0..200_000 {
        let line = format!("doc:d{i}#viewer@user:someone-with-a-long-name-{i:0>60}");
        match pv.write(&touch(&line)) {
            Ok(_) => acknowledged.push(line),
            Err(e) => {
                failure = Some(e.to_string());
                break;
            }
        }
    }
    let failure = failure.expect("the disk never filled up");
    assert!(failure.contains("storage"), "{failure}");
    // Once the store failed, it refuses writes (rather than risk a half-written state).
    assert!(pv.write(&touch("doc:z#viewer@user:z")).is_err());
    drop(pv);
    fs.remount("size=64m");
    let pv = Purview::open(&path, quiet()).unwrap();
    let lines = pv.snapshot().relationship_lines();
    for a in &acknowledged {
        assert!(lines.binary_search(a).is_ok(), "acknowledged `{a}` is missing");
    }
    assert!(lines.len() <= acknowledged.len() + 1);
    pv.write(&touch("doc:after#viewer@user:u")).unwrap();
}

#[test]
fn a_read_only_store_gives_a_clear_error_and_stays_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let fs = Tmpfs::mount(&dir.path().join("mnt"), "64m");
    let path = fs.0.join("store");
    let lines = populated(&path);
    let before = contents(&path);
    fs.remount("ro");
    let outcome = std::panic::catch_unwind(|| match storage::open(&path, quiet()) {
        Err(e) => Err(e.to_string()),
        Ok(store) => {
            let got = store.purview().snapshot().relationship_lines();
            let write = store.purview().write(&touch("doc:new#viewer@user:u"));
            Ok((got, write.map_err(|e| e.to_string())))
        }
    })
    .unwrap_or_else(|_| panic!("opening a read-only store panicked"));
    match outcome {
        Err(message) => assert!(message.contains("Read-only") || message.contains("read-only"), "{message}"),
        Ok((got, write)) => {
            assert_eq!(got, lines);
            assert!(write.is_err(), "a write to a read-only store succeeded");
        }
    }
    assert_eq!(contents(&path), before);
    fs.remount("rw");
    let pv = Purview::open(&path, quiet()).unwrap();
    assert_eq!(pv.snapshot().relationship_lines(), lines);
}
