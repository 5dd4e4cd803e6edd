//! The index as serializable parts, for snapshot files (see [`crate::storage`]).
//!
//! Everything an [`IndexData`] holds except what the schema determines (the schema and the plan)
//! is written as is: names, lists, closures and fast-path state, so that loading is a decode,
//! not a rebuild. Names are cut at each type's object count (names interned by failed writes
//! after it are left out). Four sections (names, forward lists, reverse lists, the rest) are
//! encoded and decoded in parallel. Loading checks that the parts fit the schema's plan.

use super::closure::Closure;
use super::lists::Lists;
use super::names::Names;
use super::{IndexData, SpecialKey};
use crate::schema::Schema;
use crate::store::{Interner, PortableAttrs, TupleAttrs};
use roaring::RoaringBitmap;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Integers as one byte string (little-endian), so that a snapshot decodes lists at memory
/// speed instead of one integer at a time: [`u32_blob`], [`u16_blob`].
pub mod blob {
    use serde::de::{Error, Visitor};
    use serde::{Deserializer, Serializer};
    use std::marker::PhantomData;

    /// A fixed-width little-endian integer.
    pub trait Le: Copy {
        const WIDTH: usize;
        const NAME: &'static str;
        fn put(self, out: &mut Vec<u8>);
        /// From exactly `WIDTH` bytes.
        fn get(b: &[u8]) -> Self;
    }

    impl Le for u16 {
        const WIDTH: usize = 2;
        const NAME: &'static str = "u16";
        fn put(self, out: &mut Vec<u8>) {
            out.extend_from_slice(&self.to_le_bytes());
        }
        fn get(b: &[u8]) -> u16 {
            u16::from_le_bytes([b[0], b[1]])
        }
    }

    impl Le for u32 {
        const WIDTH: usize = 4;
        const NAME: &'static str = "u32";
        fn put(self, out: &mut Vec<u8>) {
            out.extend_from_slice(&self.to_le_bytes());
        }
        fn get(b: &[u8]) -> u32 {
            u32::from_le_bytes([b[0], b[1], b[2], b[3]])
        }
    }

    pub fn serialize<T: Le, S: Serializer>(v: &[T], s: S) -> Result<S::Ok, S::Error> {
        let mut bytes = Vec::with_capacity(v.len() * T::WIDTH);
        for &x in v {
            x.put(&mut bytes);
        }
        s.serialize_bytes(&bytes)
    }

    struct Blob<T>(PhantomData<T>);

    impl<'de, T: Le> Visitor<'de> for Blob<T> {
        type Value = Vec<T>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "bytes holding little-endian {}s", T::NAME)
        }
        fn visit_bytes<E: Error>(self, b: &[u8]) -> Result<Vec<T>, E> {
            if !b.len().is_multiple_of(T::WIDTH) {
                return Err(E::custom(format!(
                    "a {} list's length is not a multiple of {}",
                    T::NAME,
                    T::WIDTH
                )));
            }
            Ok(b.chunks_exact(T::WIDTH).map(T::get).collect())
        }
        fn visit_borrowed_bytes<E: Error>(self, b: &'de [u8]) -> Result<Vec<T>, E> {
            self.visit_bytes(b)
        }
        fn visit_byte_buf<E: Error>(self, b: Vec<u8>) -> Result<Vec<T>, E> {
            self.visit_bytes(&b)
        }
    }

    pub fn deserialize<'de, T: Le, D: Deserializer<'de>>(d: D) -> Result<Vec<T>, D::Error> {
        d.deserialize_bytes(Blob(PhantomData))
    }
}

/// `Vec<u32>` as one byte string (see [`blob`]).
pub mod u32_blob {
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u32], s: S) -> Result<S::Ok, S::Error> {
        super::blob::serialize(v, s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u32>, D::Error> {
        super::blob::deserialize(d)
    }
}

/// `Vec<u16>` as one byte string (see [`blob`]).
pub mod u16_blob {
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u16], s: S) -> Result<S::Ok, S::Error> {
        super::blob::serialize(v, s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u16>, D::Error> {
        super::blob::deserialize(d)
    }
}

/// Where the names of one type end in its arena, as a u32 byte string (see [`u32_blob`]).
#[derive(Serialize)]
struct NamesRef<'a> {
    arena: &'a str,
    #[serde(serialize_with = "ends_ser")]
    ends: &'a [usize],
}

fn ends_ser<S: serde::Serializer>(v: &&[usize], s: S) -> Result<S::Ok, S::Error> {
    let narrow: Result<Vec<u32>, _> = v.iter().map(|&e| u32::try_from(e)).collect();
    match narrow {
        Ok(n) => u32_blob::serialize(&n, s),
        Err(_) => Err(serde::ser::Error::custom("a type's names exceed 4 GiB")),
    }
}

#[derive(Deserialize)]
struct NamesOwned {
    arena: String,
    #[serde(with = "u32_blob")]
    ends: Vec<u32>,
}

/// The parts of an index that are not names or lists (see [`IndexData::encode_parts`]).
#[derive(Serialize)]
struct MetaRef<'a> {
    revision: u64,
    slots: u32,
    relations: u32,
    counts: &'a [u32],
    special: Vec<(SpecialKey, PortableAttrs)>,
    special_count: &'a [u32],
    userset_keys: Vec<Option<&'a RoaringBitmap>>,
    closures: &'a [Option<Closure>],
    others: Vec<&'a RoaringBitmap>,
    len: u64,
}

#[derive(Deserialize)]
struct Meta {
    revision: u64,
    slots: u32,
    relations: u32,
    counts: Vec<u32>,
    special: Vec<(SpecialKey, PortableAttrs)>,
    special_count: Vec<u32>,
    userset_keys: Vec<Option<RoaringBitmap>>,
    closures: Vec<Option<Closure>>,
    others: Vec<RoaringBitmap>,
    len: u64,
}

/// An index encoded as four independently decodable sections (names, forward lists, reverse
/// lists, the rest), so that loading decodes them in parallel.
pub type Sections = [Vec<u8>; 4];

fn enc<T: Serialize + ?Sized>(v: &T) -> Result<Vec<u8>, String> {
    bincode::serde::encode_to_vec(v, bincode::config::standard()).map_err(|e| e.to_string())
}

fn dec<T: serde::de::DeserializeOwned>(b: &[u8], what: &str) -> Result<T, String> {
    match bincode::serde::decode_from_slice(b, bincode::config::standard()) {
        Ok((v, n)) if n == b.len() => Ok(v),
        Ok(_) => Err(format!("its {what} have trailing bytes")),
        Err(e) => Err(format!("its {what} do not decode: {e}")),
    }
}

impl IndexData {
    /// Encodes the index (all but what the schema determines) as [`Sections`].
    pub fn encode_parts(&self) -> Result<Sections, String> {
        let guards = self.names.read_all();
        let parts: Vec<_> =
            guards.iter().zip(&self.counts).map(|(g, &count)| g.parts(count as usize)).collect();
        let names: Vec<NamesRef<'_>> = parts.iter().map(|(arena, ends)| NamesRef { arena, ends }).collect();
        let meta = MetaRef {
            revision: self.revision,
            slots: self.plan.slots.len() as u32,
            relations: self.plan.relation_count() as u32,
            counts: &self.counts,
            special: self.special.iter().map(|(k, a)| (*k, a.to_portable(|c| c))).collect(),
            special_count: &self.special_count,
            userset_keys: self.userset_keys.iter().map(|k| k.as_deref()).collect(),
            closures: &self.closures,
            others: self.others.iter().map(|o| &**o).collect(),
            len: self.len as u64,
        };
        let ((a, b), (c, d)) = rayon::join(
            || rayon::join(|| enc(&names), || enc(&self.fwd)),
            || rayon::join(|| enc(&self.rev), || enc(&meta)),
        );
        Ok([a?, b?, c?, d?])
    }

    /// The index from [`IndexData::encode_parts`]'s sections, written for `schema`; an error
    /// says what does not fit.
    pub fn decode_parts(schema: Arc<Schema>, sections: [&[u8]; 4]) -> Result<IndexData, String> {
        type NameParts = Vec<NamesOwned>;
        let [na, fw, rv, me] = sections;
        let ((names, fwd), (rev, meta)) = rayon::join(
            || {
                rayon::join(
                    || -> Result<Vec<Interner>, String> {
                        use rayon::prelude::*;
                        let names: NameParts = dec(na, "names")?;
                        names
                            .into_par_iter()
                            .map(|n| {
                                let ends = n.ends.into_iter().map(|e| e as usize).collect();
                                Interner::from_parts(n.arena, ends)
                                    .ok_or_else(|| "its names are malformed".to_string())
                            })
                            .collect()
                    },
                    || dec::<Vec<Lists>>(fw, "forward lists"),
                )
            },
            || rayon::join(|| dec::<Vec<Lists>>(rv, "reverse lists"), || dec::<Meta>(me, "other parts")),
        );
        let (interners, fwd, rev, p) = (names?, fwd?, rev?, meta?);
        let mut data = IndexData::new(schema.clone());
        let types = schema.types.len();
        let slots = data.plan.slots.len();
        if p.slots as usize != slots || p.relations as usize != data.plan.relation_count() {
            return Err("it was written for another schema (slots or relations differ)".to_string());
        }
        let sizes_fit = interners.len() == types
            && p.counts.len() == types
            && fwd.len() == slots
            && rev.len() == slots
            && p.special_count.len() == data.special_count.len()
            && p.userset_keys.len() == slots
            && p.closures.len() == slots
            && p.others.len() == data.others.len();
        if !sizes_fit {
            return Err("its parts do not fit the schema's plan".to_string());
        }
        for (ty, i) in interners.iter().enumerate() {
            if i.len() != p.counts[ty] as usize {
                return Err(format!("type {ty} has {} names for {} objects", i.len(), p.counts[ty]));
            }
        }
        for (slot, (keys, want)) in p.userset_keys.iter().zip(&data.userset_keys).enumerate() {
            if keys.is_some() != want.is_some() {
                return Err(format!("slot {slot} has the wrong kind of keys"));
            }
        }
        for (slot, (c, want)) in p.closures.iter().zip(&data.closures).enumerate() {
            if c.is_some() != want.is_some() {
                return Err(format!("slot {slot} has the wrong kind of closure"));
            }
        }
        let mut special = imbl::OrdMap::new();
        let conds = schema.conditions.len() as u32;
        for (k, a) in p.special {
            let attrs = TupleAttrs::from_portable(&a, |c| (c < conds).then_some(c))?;
            special.insert(k, attrs);
        }
        data.names = Arc::new(Names::from_interners(interners));
        data.counts = p.counts;
        data.fwd = fwd;
        data.rev = rev;
        data.special = special;
        data.special_count = p.special_count;
        data.userset_keys = p.userset_keys.into_iter().map(|k| k.map(Arc::new)).collect();
        data.closures = p.closures;
        data.others = p.others.into_iter().map(Arc::new).collect();
        data.len = p.len as usize;
        data.revision = p.revision;
        Ok(data)
    }

    /// Whether both hold the same relationships, names, closures and fast-path state (the
    /// revision aside): used to verify a loaded index against one rebuilt from the relationships.
    pub fn differences(&self, other: &IndexData) -> Vec<String> {
        let mut out = Vec::new();
        if self.len != other.len {
            out.push(format!("{} relationships, against {}", self.len, other.len));
        }
        for ty in 0..self.schema.types.len() as u32 {
            let (a, b) = (self.object_count(ty), other.object_count(ty));
            let name = &self.schema.type_def(ty).name;
            if a != b {
                out.push(format!("type `{name}`: {a} object names, against {b}"));
            } else if (0..a).any(|id| self.names.name(ty, id) != other.names.name(ty, id)) {
                out.push(format!("type `{name}`: object names differ"));
            }
        }
        for (slot, info) in self.plan.slots.iter().enumerate() {
            let what = format!(
                "`{}#{}`",
                self.schema.type_def(info.ty).name,
                self.schema.rel_def(info.ty, info.rel).name
            );
            if !self.fwd[slot].same_as(&other.fwd[slot]) || !self.rev[slot].same_as(&other.rev[slot]) {
                out.push(format!("the relationships of {what} differ"));
            }
            if let (Some(a), Some(b)) = (&self.closures[slot], &other.closures[slot]) {
                if !a.down.same_as(&b.down) || !a.up.same_as(&b.up) {
                    out.push(format!("the closure of {what} differs"));
                }
            }
            if let (Some(a), Some(b)) = (&self.userset_keys[slot], &other.userset_keys[slot]) {
                if a != b {
                    out.push(format!("the userset keys of {what} differ"));
                }
            }
        }
        if self.special != other.special {
            out.push("the relationships with conditions or times differ".to_string());
        }
        if self.others != other.others {
            out.push("the fast paths' state differs".to_string());
        }
        out
    }
}
