//! Interning a bulk load's names on other threads while the loader reads on.
//!
//! The loader gathers plain relationships of one shape into batches ([`Pending`]) and hands
//! each full batch to [`Interning`]: a batch has two halves (its resources' names, of one type,
//! and its subjects', of one type), and each type's names are interned by one worker, the
//! type's *owner*. A worker takes its halves in the order the batches were handed over, so
//! every type's names are interned in the same order as on one thread and get the same ids,
//! whatever the timing. Batches come back to the loader in order.

use super::ShapeIds;
use crate::index::{InternScratch, Names};
use crate::schema::TypeId;
use crate::store::{ObjId, WILDCARD};
use std::collections::VecDeque;
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Relationships interned together.
pub(super) const BATCH: usize = 1024;

/// Batches out at once, at most, per worker.
const AHEAD: usize = 4;

/// Relationships of one shape waiting to have their names interned together (see
/// [`crate::store::Probe`]: lookups of many names overlap their cache misses).
#[derive(Clone, Debug, Default)]
pub(super) struct Pending {
    pub ids: Option<ShapeIds>,
    pub wildcard: bool,
    pub text: String,
    /// Where each relationship's resource name and subject name end in `text`.
    pub ends: Vec<(usize, usize)>,
    /// Once interned: the resources' ids and the subjects', in order.
    pub rids: Vec<ObjId>,
    pub sids: Vec<ObjId>,
}

/// A batch's temporary vectors, kept from one batch to the next.
#[derive(Default)]
pub(super) struct Scratch {
    ranges: Vec<(usize, usize)>,
    run_of: Vec<u32>,
    run_ids: Vec<ObjId>,
    lookup: InternScratch,
}

/// One half of a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    Resources,
    Subjects,
}

impl Pending {
    /// Interns the batch's names on this thread: the resources' ids (`rids`), then the
    /// subjects' (`sids`).
    pub fn intern(&mut self, names: &Names, scratch: &mut Scratch) {
        let mut rids = std::mem::take(&mut self.rids);
        let mut sids = std::mem::take(&mut self.sids);
        self.intern_side(Side::Resources, names, scratch, &mut rids);
        self.intern_side(Side::Subjects, names, scratch, &mut sids);
        (self.rids, self.sids) = (rids, sids);
    }

    /// Interns one half's names into `out`.
    fn intern_side(&self, side: Side, names: &Names, scratch: &mut Scratch, out: &mut Vec<ObjId>) {
        out.clear();
        let Some((rty, _, sty, _)) = self.ids else { return };
        let text = self.text.as_str();
        let Scratch { ranges, run_of, run_ids, lookup } = scratch;
        ranges.clear();
        match side {
            Side::Resources => {
                // A loader usually reads an object's relationships together: each run of one
                // resource name is looked up once (first occurrences keep their order, so ids
                // are the same).
                let name = |(from, to): (usize, usize)| text.get(from..to).unwrap_or("");
                run_of.clear();
                let mut start = 0;
                for &(at, end) in &self.ends {
                    let r = (start, at);
                    if ranges.last().is_none_or(|&last| name(last) != name(r)) {
                        ranges.push(r);
                    }
                    run_of.push(ranges.len() as u32 - 1);
                    start = end;
                }
                names.intern_many_with(rty, text, ranges, run_ids, lookup);
                out.extend(run_of.iter().map(|&i| run_ids.get(i as usize).copied().unwrap_or(WILDCARD)));
            }
            Side::Subjects if self.wildcard => out.resize(self.ends.len(), WILDCARD),
            Side::Subjects => {
                ranges.extend(self.ends.iter().copied());
                names.intern_many_with(sty, text, ranges, out, lookup);
            }
        }
    }

    /// The type of a half's names, if it has names to intern.
    fn type_of(&self, side: Side) -> Option<TypeId> {
        let (rty, _, sty, _) = self.ids?;
        match side {
            Side::Resources => Some(rty),
            Side::Subjects if self.wildcard => None,
            Side::Subjects => Some(sty),
        }
    }
}

/// A half for a worker: batch `seq`'s `side`, its ids to go in `out` (a spare buffer).
struct Job {
    seq: u64,
    side: Side,
    batch: Arc<Pending>,
    out: Vec<ObjId>,
}

/// A half interned.
struct Done {
    seq: u64,
    side: Side,
    ids: Vec<ObjId>,
}

struct Worker {
    to: Option<Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

/// A batch out: its halves' ids as they come back.
struct Out {
    batch: Arc<Pending>,
    rids: Option<Vec<ObjId>>,
    sids: Option<Vec<ObjId>>,
}

/// Workers interning full batches of names (see the module documentation).
pub(super) struct Interning {
    workers: Vec<Worker>,
    from: Receiver<Done>,
    /// Batches out, oldest first; the first has number `first`.
    out: VecDeque<Out>,
    first: u64,
    /// Relationships in the batches out.
    items: usize,
    /// Id buffers to hand out again.
    spare: Vec<Vec<ObjId>>,
}

/// The worker failed (a bug): the batches out are lost.
#[derive(Debug)]
pub(super) struct Lost;

impl Interning {
    /// Starts `n` workers (at least one), or none if threads cannot be made.
    pub fn start(names: Arc<Names>, n: usize) -> Option<Interning> {
        let (outbox, from) = channel::<Done>();
        let mut workers = Vec::new();
        for k in 0..n.max(1) {
            let (to, inbox) = channel::<Job>();
            let (names, outbox) = (names.clone(), outbox.clone());
            let thread = std::thread::Builder::new()
                .name(format!("purview-intern-{k}"))
                .spawn(move || {
                    let mut scratch = Scratch::default();
                    for Job { seq, side, batch, mut out } in inbox {
                        batch.intern_side(side, &names, &mut scratch, &mut out);
                        // The loader takes the batch back once both halves are done.
                        drop(batch);
                        if outbox.send(Done { seq, side, ids: out }).is_err() {
                            return;
                        }
                    }
                })
                .ok()?;
            workers.push(Worker { to: Some(to), thread: Some(thread) });
        }
        Some(Interning { workers, from, out: VecDeque::new(), first: 0, items: 0, spare: Vec::new() })
    }

    /// Relationships in the batches out.
    pub fn items(&self) -> usize {
        self.items
    }

    /// The worker owning `ty`'s names.
    fn owner(&self, ty: TypeId) -> usize {
        ty as usize % self.workers.len()
    }

    /// Hands a batch over; then returns the batches done, in order, waiting for the oldest when
    /// too many are out.
    pub fn send(&mut self, p: Pending) -> Result<Vec<Pending>, Lost> {
        let seq = self.first + self.out.len() as u64;
        let items = p.ends.len();
        let batch = Arc::new(p);
        let mut out = Out { batch: batch.clone(), rids: None, sids: None };
        for side in [Side::Resources, Side::Subjects] {
            let Some(ty) = batch.type_of(side) else {
                // Nothing to intern (a wildcard's subjects): done here.
                let mut ids = self.buffer();
                ids.resize(batch.ends.len(), WILDCARD);
                *slot(&mut out, side) = Some(ids);
                continue;
            };
            let job = Job { seq, side, batch: batch.clone(), out: self.buffer() };
            let owner = self.owner(ty);
            let sent = self.workers.get(owner).and_then(|w| w.to.as_ref()).map(|to| to.send(job));
            if !matches!(sent, Some(Ok(()))) {
                return Err(Lost);
            }
        }
        drop(batch);
        self.out.push_back(out);
        self.items += items;
        let mut ready = Vec::new();
        while let Ok(done) = self.from.try_recv() {
            self.arrived(done);
        }
        self.take_ready(&mut ready);
        while self.out.len() >= AHEAD * self.workers.len() {
            self.wait_one()?;
            self.take_ready(&mut ready);
        }
        Ok(ready)
    }

    /// Waits for every batch out; returns them in order.
    pub fn drain(&mut self) -> Result<Vec<Pending>, Lost> {
        let mut ready = Vec::new();
        self.take_ready(&mut ready);
        while !self.out.is_empty() {
            self.wait_one()?;
            self.take_ready(&mut ready);
        }
        Ok(ready)
    }

    /// Gives an id buffer back for a later batch.
    pub fn recycle(&mut self, mut ids: Vec<ObjId>) {
        ids.clear();
        self.spare.push(ids);
    }

    fn buffer(&mut self) -> Vec<ObjId> {
        let mut ids = self.spare.pop().unwrap_or_default();
        ids.clear();
        ids
    }

    /// Waits for one half; fails if a worker ended (only a bug ends one during a load).
    fn wait_one(&mut self) -> Result<(), Lost> {
        loop {
            match self.from.recv_timeout(Duration::from_millis(100)) {
                Ok(done) => {
                    self.arrived(done);
                    return Ok(());
                }
                Err(RecvTimeoutError::Timeout) => {
                    if self.workers.iter().any(|w| w.thread.as_ref().is_none_or(|t| t.is_finished())) {
                        return Err(Lost);
                    }
                }
                Err(RecvTimeoutError::Disconnected) => return Err(Lost),
            }
        }
    }

    fn arrived(&mut self, done: Done) {
        let Some(k) = done.seq.checked_sub(self.first) else { return };
        if let Some(out) = self.out.get_mut(k as usize) {
            *slot(out, done.side) = Some(done.ids);
        }
    }

    /// Moves the oldest batches whose halves are both done to `ready`.
    fn take_ready(&mut self, ready: &mut Vec<Pending>) {
        while self.out.front().is_some_and(|o| o.rids.is_some() && o.sids.is_some()) {
            let Some(Out { batch, rids, sids }) = self.out.pop_front() else { break };
            self.first += 1;
            // The workers let go of the batch before saying a half is done.
            let mut p = Arc::try_unwrap(batch).unwrap_or_else(|shared| (*shared).clone());
            self.items -= p.ends.len();
            (p.rids, p.sids) = (rids.unwrap_or_default(), sids.unwrap_or_default());
            ready.push(p);
        }
    }
}

fn slot(out: &mut Out, side: Side) -> &mut Option<Vec<ObjId>> {
    match side {
        Side::Resources => &mut out.rids,
        Side::Subjects => &mut out.sids,
    }
}

impl Drop for Interning {
    fn drop(&mut self) {
        // A worker ends when its inbox closes.
        for w in &mut self.workers {
            w.to = None;
        }
        for w in &mut self.workers {
            if let Some(t) = w.thread.take() {
                let _ = t.join();
            }
        }
    }
}
