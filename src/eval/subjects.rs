//! Sets of subjects with three-valued membership, for `who` (lookup subjects).
//!
//! A set is a function from subjects to [`Tri`]: `explicit` gives the membership of the subjects
//! it names, `default` the membership of every other subject of the filter type (non-`False`
//! only when a wildcard `user:*` was reached). Union, intersection and exclusion are pointwise,
//! which makes wildcards with exclusions (`user:* - {user:bob}`) fall out without special cases.

use super::Tri;
use crate::store::Subject;
use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubjectSet {
    /// Membership of subjects not in `explicit` (a reached wildcard).
    pub default: Tri,
    /// Membership of named subjects. With `default == False`, only non-`False` entries are kept;
    /// otherwise entries differing from `True` are the wildcard's exclusions.
    pub explicit: BTreeMap<Subject, Tri>,
}

impl Default for SubjectSet {
    fn default() -> Self {
        SubjectSet::empty()
    }
}

impl SubjectSet {
    pub fn empty() -> Self {
        SubjectSet { default: Tri::False, explicit: BTreeMap::new() }
    }

    pub fn contains(&self, s: &Subject) -> Tri {
        self.explicit.get(s).copied().unwrap_or(self.default)
    }

    pub fn add(&mut self, s: Subject, t: Tri) {
        let e = self.explicit.entry(s).or_insert(Tri::False);
        *e = e.or(t);
    }

    pub fn add_wildcard(&mut self, t: Tri) {
        self.default = self.default.or(t);
        for v in self.explicit.values_mut() {
            *v = v.or(t);
        }
    }

    fn combine(&self, other: &SubjectSet, f: impl Fn(Tri, Tri) -> Tri) -> SubjectSet {
        let mut explicit = BTreeMap::new();
        for s in self.explicit.keys().chain(other.explicit.keys()) {
            explicit.insert(*s, f(self.contains(s), other.contains(s)));
        }
        let mut out = SubjectSet { default: f(self.default, other.default), explicit };
        out.normalize();
        out
    }

    pub fn union(&self, o: &SubjectSet) -> SubjectSet {
        self.combine(o, Tri::or)
    }

    pub fn intersect(&self, o: &SubjectSet) -> SubjectSet {
        self.combine(o, Tri::and)
    }

    pub fn exclude(&self, o: &SubjectSet) -> SubjectSet {
        self.combine(o, |a, b| a.and(b.not()))
    }

    /// Membership of every subject and-ed with `t` (a condition on the path to the set).
    pub fn and_with(&self, t: Tri) -> SubjectSet {
        let mut out = SubjectSet {
            default: self.default.and(t),
            explicit: self.explicit.iter().map(|(s, v)| (*s, v.and(t))).collect(),
        };
        out.normalize();
        out
    }

    /// Membership of every subject or-ed with `t`.
    pub fn or_with(&self, t: Tri) -> SubjectSet {
        let mut out = SubjectSet {
            default: self.default.or(t),
            explicit: self.explicit.iter().map(|(s, v)| (*s, v.or(t))).collect(),
        };
        out.normalize();
        out
    }

    fn normalize(&mut self) {
        if self.default == Tri::False {
            self.explicit.retain(|_, v| *v != Tri::False);
        }
    }

    /// Subjects named with a non-`False` membership.
    pub fn members(&self) -> impl Iterator<Item = (&Subject, Tri)> {
        self.explicit.iter().filter(|(_, v)| **v != Tri::False).map(|(s, v)| (s, *v))
    }

    /// Subjects the wildcard does not cover (`False`) or covers only conditionally.
    pub fn exclusions(&self) -> impl Iterator<Item = (&Subject, Tri)> {
        let d = self.default;
        self.explicit.iter().filter(move |(_, v)| d != Tri::False && **v != Tri::True).map(|(s, v)| (s, *v))
    }

    pub fn is_empty(&self) -> bool {
        self.default == Tri::False && self.explicit.is_empty()
    }
}
