//! `SubjectBits` (the sets `who` computes with) against a model: one three-valued membership per
//! subject id. The sets keep their conditional and named parts only where they differ from the
//! members (one bitmap while nothing is conditional and no wildcard was reached), so every
//! operation is checked on sets built every way: plain, with conditional members, with a
//! wildcard's default, and mixes of them.

use proptest::prelude::*;
use purview::eval::Tri;
use purview::index::SubjectBits;
use roaring::RoaringBitmap;

/// Ids below this are named in the sets; `FAR` stands for every other id.
const IDS: u32 = 6;
const FAR: u32 = 1_000;

/// The model: each id's membership, and that of every id not named.
#[derive(Clone, Debug)]
struct Model {
    ids: Vec<Tri>,
    rest: Tri,
}

impl Model {
    fn map(&self, f: impl Fn(Tri) -> Tri) -> Model {
        Model { ids: self.ids.iter().map(|&t| f(t)).collect(), rest: f(self.rest) }
    }

    fn zip(&self, o: &Model, f: impl Fn(Tri, Tri) -> Tri) -> Model {
        Model {
            ids: self.ids.iter().zip(&o.ids).map(|(&a, &b)| f(a, b)).collect(),
            rest: f(self.rest, o.rest),
        }
    }
}

#[derive(Clone, Debug)]
enum Build {
    Add(u32, Tri),
    AddAll(Vec<u32>),
    And(Tri),
    Or(Tri),
}

#[derive(Clone, Debug)]
enum Op {
    Union,
    Intersect,
    Exclude,
}

fn tri() -> impl Strategy<Value = Tri> {
    prop_oneof![Just(Tri::False), Just(Tri::Cond), Just(Tri::True)]
}

fn build() -> impl Strategy<Value = Build> {
    prop_oneof![
        4 => (0..IDS, tri()).prop_map(|(id, t)| Build::Add(id, t)),
        2 => proptest::collection::vec(0..IDS, 0..4).prop_map(Build::AddAll),
        1 => tri().prop_map(Build::And),
        1 => tri().prop_map(Build::Or),
    ]
}

fn made(steps: &[Build]) -> (SubjectBits, Model) {
    let mut set = SubjectBits::default();
    let mut model = Model { ids: vec![Tri::False; IDS as usize], rest: Tri::False };
    for step in steps {
        match step {
            Build::Add(id, t) => {
                set.add(*id, *t);
                model.ids[*id as usize] = model.ids[*id as usize].or(*t);
            }
            Build::AddAll(ids) => {
                set.add_all(&ids.iter().copied().collect::<RoaringBitmap>());
                for &id in ids {
                    model.ids[id as usize] = Tri::True;
                }
            }
            Build::And(t) => {
                set = set.and_with(*t);
                model = model.map(|x| x.and(*t));
            }
            Build::Or(t) => {
                set = set.or_with(*t);
                model = model.map(|x| x.or(*t));
            }
        }
    }
    (set, model)
}

fn agrees(set: &SubjectBits, model: &Model) -> Result<(), TestCaseError> {
    for id in 0..IDS {
        prop_assert_eq!(set.get(id), model.ids[id as usize], "id {} of {:?}", id, set);
    }
    prop_assert_eq!(set.get(FAR), model.rest, "an id not named, in {:?}", set);
    prop_assert_eq!(set.default, model.rest);
    prop_assert!(set.t().is_subset(set.c()) && set.c().is_subset(set.keys()), "{:?}", set);
    prop_assert_eq!(set.has_conditional(), set.c() != set.t());
    let empty = model.rest == Tri::False && model.ids.iter().all(|&t| t == Tri::False);
    prop_assert_eq!(set.is_empty(), empty);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn subject_sets_agree_with_three_valued_membership(
        a in proptest::collection::vec(build(), 0..6),
        b in proptest::collection::vec(build(), 0..6),
        ops in proptest::collection::vec((prop_oneof![Just(Op::Union), Just(Op::Intersect), Just(Op::Exclude)], any::<bool>()), 1..4),
    ) {
        let (mut set, mut model) = made(&a);
        agrees(&set, &model)?;
        let (other, other_model) = made(&b);
        agrees(&other, &other_model)?;
        for (op, flip) in ops {
            let (x, y, mx, my) =
                if flip { (&other, &set, &other_model, &model) } else { (&set, &other, &model, &other_model) };
            let (next, next_model) = match op {
                Op::Union => (x.union(y), mx.zip(my, Tri::or)),
                Op::Intersect => (x.intersect(y), mx.zip(my, Tri::and)),
                Op::Exclude => (x.exclude(y), mx.zip(my, |p, q| p.and(q.not()))),
            };
            agrees(&next, &next_model)?;
            set = next;
            model = next_model;
        }
    }
}
