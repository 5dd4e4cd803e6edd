//! The change feed: what each recent revision changed, relationship by relationship, for
//! subscribers such as the server's Watch. Off until a host asks for it
//! ([`Purview::keep_changes`]); then every change is described once, when it is staged, and
//! kept for the last `capacity` revisions.

use super::bulk::relationship_of;
use super::purview::Change;
use super::Purview;
use crate::index::IndexData;
use crate::store::{Relationship, Revision, TupleAttrs, TupleStore};
use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

/// Imports larger than this are recorded without their relationships (see [`ChangeSet::truncated`]).
const MAX_IMPORT_UPDATES: usize = 100_000;
/// The feed keeps at most this many updates in all, whatever its capacity in revisions, so that
/// its memory stays bounded under large batches.
const MAX_KEPT_UPDATES: usize = 1_000_000;

/// What one revision changed.
#[derive(Clone, Debug, PartialEq)]
pub struct ChangeSet {
    pub revision: Revision,
    pub updates: Vec<Update>,
    /// The revision replaced the schema.
    pub schema_changed: bool,
    /// The revision was a bulk import too large to describe: its updates are not listed, and a
    /// subscriber must re-read the data.
    pub truncated: bool,
}

/// One relationship a revision wrote or deleted.
#[derive(Clone, Debug, PartialEq)]
pub struct Update {
    pub kind: UpdateKind,
    pub relationship: Relationship,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpdateKind {
    /// Created, or its condition or times replaced.
    Touch,
    Delete,
}

/// Why the changes after a revision cannot be listed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FeedError {
    #[error("this Purview keeps no change feed")]
    Disabled,
    #[error(
        "the changes after revision {requested} are no longer kept (the feed starts after revision {oldest})"
    )]
    Expired { requested: Revision, oldest: Revision },
    #[error("revision {requested} is not visible yet (the latest is {current})")]
    Future { requested: Revision, current: Revision },
    #[error("the changes after revision {requested} cannot be read from the store: {reason}")]
    History { requested: Revision, reason: String },
}

type Listener = Arc<dyn Fn(Revision) + Send + Sync>;

#[derive(Default)]
pub(crate) struct Feed {
    /// 0: off.
    capacity: usize,
    /// Changes after this revision are all in `entries`.
    since: Revision,
    entries: VecDeque<Arc<ChangeSet>>,
    /// Updates in `entries`.
    updates: usize,
    listeners: Vec<Listener>,
}

impl std::fmt::Debug for Feed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Feed")
            .field("capacity", &self.capacity)
            .field("since", &self.since)
            .field("entries", &self.entries.len())
            .finish()
    }
}

impl Feed {
    /// Records a staged change (called under the writer lock, in revision order).
    pub(crate) fn record(&mut self, change: &Change<'_>) {
        if self.capacity == 0 {
            return;
        }
        self.record_set(describe(change));
    }

    /// Records what a revision committed by another process changed (see [`super::Caught`]).
    pub(crate) fn record_set(&mut self, set: ChangeSet) {
        if self.capacity == 0 {
            return;
        }
        self.updates += set.updates.len();
        self.entries.push_back(Arc::new(set));
        while self.entries.len() > self.capacity
            || (self.updates > MAX_KEPT_UPDATES && self.entries.len() > 1)
        {
            if let Some(old) = self.entries.pop_front() {
                self.since = old.revision;
                self.updates -= old.updates.len();
            }
        }
    }

    /// Forgets changes staged but never published (after a failed sync).
    pub(crate) fn forget_after(&mut self, published: Revision) {
        while self.entries.back().is_some_and(|e| e.revision > published) {
            if let Some(e) = self.entries.pop_back() {
                self.updates -= e.updates.len();
            }
        }
    }

    pub(crate) fn listeners(&self) -> Vec<Listener> {
        self.listeners.clone()
    }
}

fn describe(change: &Change<'_>) -> ChangeSet {
    let mut set = ChangeSet {
        revision: change.revision(),
        updates: Vec::new(),
        schema_changed: false,
        truncated: false,
    };
    match change {
        Change::Batch { after, batch, .. } => {
            set.updates.extend(
                batch
                    .rows
                    .iter()
                    .filter_map(|row| update(after, row.key, row.before.as_ref(), row.after.as_ref())),
            );
        }
        Change::Import { before, after, load, .. } => {
            if load.plain_len() > MAX_IMPORT_UPDATES {
                set.truncated = true;
            } else {
                let mut seen = HashSet::new();
                for (o, r, s, _) in load.tuples() {
                    if seen.insert((o, r, s)) {
                        compare(before, after, (o, r, s), &mut set.updates);
                    }
                }
                set.truncated = set.updates.len() > MAX_IMPORT_UPDATES;
                if set.truncated {
                    set.updates = Vec::new();
                }
            }
        }
        Change::Schema { .. } => set.schema_changed = true,
    }
    set
}

fn compare(before: &IndexData, after: &IndexData, key: crate::store::Key, out: &mut Vec<Update>) {
    let (o, r, s) = key;
    // Objects first named by this change have ids past the end of `before`.
    let known = |ty, id| id < before.object_count(ty);
    let was =
        if known(o.ty, o.id) && (s.is_wildcard() || known(s.ty, s.id)) { before.get(o, r, s) } else { None };
    out.extend(update(after, key, was.as_ref(), after.get(o, r, s).as_ref()));
}

/// The update that takes a relationship from `was` to `now` (`None`: absent), if they differ;
/// names are read from `names`, a state that has them all (names are never removed).
fn update(
    names: &IndexData,
    (o, r, s): crate::store::Key,
    was: Option<&TupleAttrs>,
    now: Option<&TupleAttrs>,
) -> Option<Update> {
    match (was, now) {
        (w, Some(now)) if w != Some(now) => {
            Some(Update { kind: UpdateKind::Touch, relationship: relationship_of(names, o, r, s, now) })
        }
        (Some(w), None) => {
            Some(Update { kind: UpdateKind::Delete, relationship: relationship_of(names, o, r, s, w) })
        }
        _ => None,
    }
}

impl Purview {
    /// Starts keeping what each revision changes, for the last `capacity` revisions (0 stops):
    /// [`Purview::changes_after`] then lists the changes after any revision from now on.
    pub fn keep_changes(&self, capacity: usize) {
        let w = self.lock_writer();
        let mut feed = self.feed();
        if feed.capacity == 0 {
            feed.since = w.head_revision();
            feed.entries.clear();
            feed.updates = 0;
        }
        feed.capacity = capacity;
    }

    /// The changes after `revision`, up to the latest published revision, in order. On a
    /// durable Purview, changes from before the feed started come from the store's changelog
    /// (within its history window).
    pub fn changes_after(&self, revision: Revision) -> Result<Vec<Arc<ChangeSet>>, FeedError> {
        let view = self.snapshot();
        let current = view.revision();
        let (since, kept) = {
            let feed = self.feed();
            if feed.capacity == 0 {
                return Err(FeedError::Disabled);
            }
            // Entries are in revision order: start at the first one after `revision`.
            let first = feed.entries.partition_point(|e| e.revision <= revision);
            let kept: Vec<Arc<ChangeSet>> =
                feed.entries.range(first..).take_while(|e| e.revision <= current).cloned().collect();
            (feed.since, kept)
        };
        if revision > current {
            return Err(FeedError::Future { requested: revision, current });
        }
        if revision >= since {
            return Ok(kept);
        }
        let expired = || FeedError::Expired { requested: revision, oldest: since };
        let (Some(journal), super::View::Index(head)) = (self.journal(), &view) else {
            return Err(expired());
        };
        match journal.changes_between(head, revision, since.min(current)) {
            Some(Ok(older)) if older.last().map_or(revision, |c| c.revision) == since.min(current) => {
                Ok(older.into_iter().map(Arc::new).chain(kept).collect())
            }
            Some(Ok(_)) | None => Err(expired()),
            Some(Err(reason)) => Err(FeedError::History { requested: revision, reason }),
        }
    }

    /// Calls `listener` with the revision each time a new revision becomes visible to readers.
    /// It runs on the writer's thread: it must be quick and must not write.
    pub fn on_publish(&self, listener: impl Fn(Revision) + Send + Sync + 'static) {
        self.feed().listeners.push(Arc::new(listener));
    }
}
