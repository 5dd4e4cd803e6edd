//! Output files that exist under their final name only when complete.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// A file written as `PATH.partial` and renamed to `PATH` by [`AtomicFile::commit`]. Dropped
/// without a commit (an error, a panic unwinding, a cancelled job), it removes the partial file.
/// A process killed outright leaves `PATH.partial` behind, which says what it is; a rerun
/// replaces it.
#[derive(Debug)]
pub struct AtomicFile {
    path: PathBuf,
    partial: PathBuf,
    file: Option<BufWriter<File>>,
}

/// The name a file has while it is being written.
pub fn partial_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".partial");
    path.with_file_name(name)
}

impl AtomicFile {
    /// Starts writing `path`. A file already at `path` (an older run's output) is removed first,
    /// so that `path` exists only once this run completes.
    pub fn create(path: &Path) -> io::Result<AtomicFile> {
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let partial = partial_path(path);
        let file = File::create(&partial)?;
        Ok(AtomicFile {
            path: path.to_path_buf(),
            partial,
            file: Some(BufWriter::with_capacity(1 << 20, file)),
        })
    }

    /// Flushes, syncs and renames the file to its final name.
    pub fn commit(mut self) -> io::Result<()> {
        let Some(w) = self.file.take() else { return Err(io::Error::other("already committed")) };
        let file = w.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&self.partial, &self.path).inspect_err(|_| {
            let _ = std::fs::remove_file(&self.partial);
        })
    }

    fn writer(&mut self) -> io::Result<&mut BufWriter<File>> {
        self.file.as_mut().ok_or_else(|| io::Error::other("the file was already committed"))
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.writer()?.write(buf)
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.writer()?.write_all(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.writer()?.flush()
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = std::fs::remove_file(&self.partial);
        }
    }
}
