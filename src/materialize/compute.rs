//! The full recomputation: one `what` per subject, in parallel chunks, clipped to a partition.

use super::output::AtomicFile;
use super::{columns, compact, objects, text, Format, MaterializeError, Partition, Phase, Summary, Target};
use crate::eval::{EvalOptions, MissingContext, Tri};
use crate::index::{IndexData, IndexEval};
use crate::store::Revision;
use rayon::prelude::*;
use roaring::RoaringBitmap;
use std::io::Write;
use std::ops::Range;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

/// Subjects evaluated per task: enough to amortize scheduling, few enough to balance the load
/// and to notice a cancellation quickly.
const SUBJECTS_PER_TASK: u32 = 64;

/// Progress callback: phase, units done, units in all.
pub type ProgressFn<'a> = &'a (dyn Fn(Phase, u64, u64) + Sync);

/// A full materialization of one [`Target`] on one index revision. Builder style:
///
/// ```
/// # use purview::{Purview, materialize::{Job, Target, Format}};
/// let pv = Purview::from_schema_text("s.pv", "type user {}\ntype doc { relation viewer: user\n permission view = viewer }")?;
/// pv.write_text("doc:d1#viewer@user:ann")?;
/// let purview::api::View::Index(data) = pv.snapshot() else { unreachable!() };
/// let target = Target::resolve(&data.schema, "doc#view", "user")?;
/// let mut out = Vec::new();
/// let summary = Job::new(&data, target).threads(1).write_to(Format::Csv, &mut out)?;
/// assert_eq!(String::from_utf8(out)?, "subject,permission,object,outcome\nuser:ann,view,doc:d1,allowed\n");
/// assert_eq!(summary.pairs, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Job<'a> {
    data: &'a IndexData,
    target: Target,
    partition: Partition,
    opts: EvalOptions,
    threads: Option<usize>,
    cancel: Option<&'a AtomicBool>,
    progress: Option<ProgressFn<'a>>,
}

/// The pairs of one subject: `allowed` and `conditional` are disjoint sets of object ids.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub subject: u32,
    pub allowed: RoaringBitmap,
    pub conditional: RoaringBitmap,
}

/// The result of [`Job::compute`]: rows of the subjects with at least one pair, by subject id.
#[derive(Clone, Debug, PartialEq)]
pub struct Materialized {
    pub target: Target,
    pub revision: Revision,
    pub partition: Partition,
    /// The object ids covered.
    pub objects: Range<u32>,
    /// Subjects evaluated (ids `0..subjects`).
    pub subjects: u32,
    pub rows: Vec<Row>,
}

impl Materialized {
    pub fn pairs(&self) -> u64 {
        self.rows.iter().map(|r| r.allowed.len() + r.conditional.len()).sum()
    }

    pub fn conditional(&self) -> u64 {
        self.rows.iter().map(|r| r.conditional.len()).sum()
    }

    /// Every pair as `(subject, object, outcome)`, by subject then object.
    pub fn triples(&self) -> impl Iterator<Item = (u32, u32, Tri)> + '_ {
        self.rows.iter().flat_map(|r| {
            let mut v: Vec<(u32, u32, Tri)> = r.allowed.iter().map(|o| (r.subject, o, Tri::True)).collect();
            v.extend(r.conditional.iter().map(|o| (r.subject, o, Tri::Cond)));
            v.sort_unstable_by_key(|t| t.1);
            v
        })
    }
}

/// Cancellation and progress, shared by the phases of a job.
pub(super) struct Control<'a> {
    pub cancel: Option<&'a AtomicBool>,
    pub progress: Option<ProgressFn<'a>>,
    pub done: AtomicU64,
}

impl Control<'_> {
    pub fn check(&self) -> Result<(), MaterializeError> {
        match self.cancel {
            Some(c) if c.load(Ordering::Relaxed) => Err(MaterializeError::Cancelled),
            _ => Ok(()),
        }
    }

    /// Adds `n` units done and reports the total.
    pub fn advance(&self, phase: Phase, n: u64, total: u64) {
        let done = self.done.fetch_add(n, Ordering::Relaxed) + n;
        if let Some(p) = self.progress {
            p(phase, done, total);
        }
    }

    pub fn start(&self, phase: Phase, total: u64) {
        self.done.store(0, Ordering::Relaxed);
        if let Some(p) = self.progress {
            p(phase, 0, total);
        }
    }
}

/// Counts the bytes written through it.
struct Counting<'w> {
    inner: &'w mut (dyn Write + Send),
    bytes: u64,
}

impl Write for Counting<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl<'a> Job<'a> {
    pub fn new(data: &'a IndexData, target: Target) -> Job<'a> {
        Job {
            data,
            target,
            partition: Partition::default(),
            opts: EvalOptions::default(),
            threads: None,
            cancel: None,
            progress: None,
        }
    }

    /// Only the objects of this piece of the id range.
    pub fn partition(mut self, p: Partition) -> Self {
        self.partition = p;
        self
    }

    /// Context and evaluation time for conditions and expirations. Pairs whose conditions lack
    /// context are `conditional`, whatever the options' missing-context policy says.
    pub fn options(mut self, opts: EvalOptions) -> Self {
        self.opts = opts;
        self
    }

    /// Run on this many threads (default: rayon's global pool, one thread per core).
    pub fn threads(mut self, n: usize) -> Self {
        self.threads = Some(n.max(1));
        self
    }

    /// Stop with [`MaterializeError::Cancelled`] soon after `flag` becomes true.
    pub fn cancel_on(mut self, flag: &'a AtomicBool) -> Self {
        self.cancel = Some(flag);
        self
    }

    /// Called from worker threads as work is done.
    pub fn on_progress(mut self, f: ProgressFn<'a>) -> Self {
        self.progress = Some(f);
        self
    }

    fn control(&self) -> Control<'a> {
        Control { cancel: self.cancel, progress: self.progress, done: AtomicU64::new(0) }
    }

    fn in_pool<T: Send>(&self, f: impl FnOnce() -> T + Send) -> Result<T, MaterializeError> {
        match self.threads {
            None => Ok(f()),
            Some(n) => {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(n)
                    .build()
                    .map_err(|e| std::io::Error::other(e.to_string()))?;
                Ok(pool.install(f))
            }
        }
    }

    /// Every pair of the partition, as per-subject bitmaps.
    pub fn compute(&self) -> Result<Materialized, MaterializeError> {
        let ctl = self.control();
        self.in_pool(|| self.compute_with(&ctl))?
    }

    fn compute_with(&self, ctl: &Control<'_>) -> Result<Materialized, MaterializeError> {
        let (data, t) = (self.data, self.target);
        let mut opts = self.opts.clone();
        opts.missing_context = MissingContext::Conditional;
        let objects = self.partition.range(data.object_count(t.object_type));
        let subjects = data.object_count(t.subject_type);
        ctl.start(Phase::Compute, u64::from(subjects));
        let tasks = subjects.div_ceil(SUBJECTS_PER_TASK);
        let chunks: Vec<Vec<Row>> = (0..tasks)
            .into_par_iter()
            .map(|task| {
                ctl.check()?;
                let first = task * SUBJECTS_PER_TASK;
                let last = (first + SUBJECTS_PER_TASK).min(subjects);
                let mut ev = IndexEval::new(data, &opts);
                let mut rows = Vec::new();
                for id in first..last {
                    let s = t.subject(id);
                    let bits = ev.what_in(s, t.object_type, t.permission, objects.clone())?;
                    if let Some(row) = row(id, bits.yes, bits.maybe, &objects) {
                        rows.push(row);
                    }
                }
                ctl.advance(Phase::Compute, u64::from(last - first), u64::from(subjects));
                Ok(rows)
            })
            .collect::<Result<_, MaterializeError>>()?;
        Ok(Materialized {
            target: t,
            revision: data.revision,
            partition: self.partition,
            objects,
            subjects,
            rows: chunks.into_iter().flatten().collect(),
        })
    }

    /// Computes and writes every pair of the partition to `out` in `format`.
    pub fn write_to(
        &self,
        format: Format,
        out: &mut (dyn Write + Send),
    ) -> Result<Summary, MaterializeError> {
        let start = Instant::now();
        let ctl = self.control();
        let mut out = Counting { inner: out, bytes: 0 };
        let m = self.in_pool(|| -> Result<Materialized, MaterializeError> {
            let m = self.compute_with(&ctl)?;
            match format {
                Format::Csv | Format::Jsonl => text::write(self.data, &m, format, &mut out, &ctl)?,
                Format::Compact => compact::write(self.data, &m, &mut out, &ctl)?,
                Format::Parquet => columns::write(self.data, &m, &mut out, &ctl)?,
                Format::ObjectJsonl => objects::write(self.data, &m, &mut out, &ctl)?,
            }
            Ok(m)
        })??;
        out.flush()?;
        Ok(self.summary(&m, out.bytes, start))
    }

    /// [`Job::write_to`] a file, atomically: the output is written to `PATH.partial` and renamed
    /// to `PATH` only when complete. A stale `PATH` is removed first; on any error (or a
    /// cancellation) the partial file is removed, so `PATH` exists only after a complete run.
    pub fn write_file(&self, format: Format, path: &Path) -> Result<Summary, MaterializeError> {
        let mut file = AtomicFile::create(path)?;
        let summary = self.write_to(format, &mut file)?;
        file.commit()?;
        Ok(summary)
    }

    fn summary(&self, m: &Materialized, bytes: u64, start: Instant) -> Summary {
        let schema = &self.data.schema;
        Summary {
            permission: self.target.permission_name(schema),
            subject_type: self.target.subject_name(schema),
            revision: m.revision,
            partition: m.partition,
            objects: (m.objects.start, m.objects.end),
            subjects: m.subjects,
            subjects_with_pairs: m.rows.len() as u32,
            pairs: m.pairs(),
            conditional: m.conditional(),
            bytes,
            elapsed: start.elapsed(),
        }
    }
}

/// The row of one subject from `what`'s sets, clipped to `objects`; `None` when empty.
pub(super) fn row(
    subject: u32,
    mut yes: RoaringBitmap,
    mut maybe: RoaringBitmap,
    objects: &Range<u32>,
) -> Option<Row> {
    for set in [&mut yes, &mut maybe] {
        if objects.start > 0 {
            set.remove_range(..objects.start);
        }
        set.remove_range(objects.end..);
    }
    if maybe.is_empty() {
        return None;
    }
    maybe -= &yes;
    Some(Row { subject, allowed: yes, conditional: maybe })
}
