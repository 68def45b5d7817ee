//! The response tree's values: compact, and borrowing their strings from the subgraphs' bodies.
//!
//! Profiles of the router under load showed `serde_json::Value` trees costing over half its time:
//! every object an `IndexMap` (a hash table plus an entry list), every key its own allocation,
//! every lookup a SipHash. Here an object is one vector of pairs with no hashing ([`Obj`]: up to
//! eight members in any order, found by a linear scan; larger objects sorted, found by binary
//! search), and strings and keys point into the response body they were parsed from, which
//! [`Bodies`] keeps for the whole operation. Only strings with JSON escapes in them are copied.

use std::{borrow::Cow, fmt};

use crate::json::{write_json, write_str};

use serde::{
    de::{DeserializeSeed, MapAccess, SeqAccess, Visitor},
    ser::{SerializeMap, SerializeSeq},
    Deserialize, Deserializer, Serialize, Serializer,
};

/// The subgraph response bodies of one operation. Values parsed from a body borrow from it, so it
/// is kept (never moved or freed) until the operation's answer is written. What one operation
/// keeps is bounded ([`Bodies::limited`]): the answer it is building is made of them.
#[derive(Default)]
pub struct Bodies {
    /// Kept as the HTTP client read them: a body shared by deduplicated requests is one buffer,
    /// not a copy per operation.
    kept: elsa::sync::FrozenVec<Box<axum::body::Bytes>>,
    bytes: std::sync::atomic::AtomicUsize,
    /// The most bytes kept (0: no bound).
    limit: usize,
}

/// A body that would take an operation past its bound: what it and the others come to.
#[derive(Debug)]
pub struct TooLarge {
    pub limit: usize,
}

impl Bodies {
    /// Bodies of at most `limit` bytes in all (0: no bound).
    pub fn limited(limit: usize) -> Self {
        Bodies {
            limit,
            ..Bodies::default()
        }
    }

    /// Keeps `body` for the rest of the operation and lends it out, unless it takes the
    /// operation past its bound.
    pub fn keep(&self, body: axum::body::Bytes) -> Result<&[u8], TooLarge> {
        let before = self
            .bytes
            .fetch_add(body.len(), std::sync::atomic::Ordering::Relaxed);
        if self.limit > 0 && before + body.len() > self.limit {
            self.bytes
                .fetch_sub(body.len(), std::sync::atomic::Ordering::Relaxed);
            return Err(TooLarge { limit: self.limit });
        }
        Ok(self.kept.push_get(Box::new(body)))
    }

    /// The bytes kept so far.
    pub fn bytes(&self) -> usize {
        self.bytes.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// A JSON value whose strings borrow from `'a`.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Val<'a> {
    #[default]
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(Cow<'a, str>),
    List(Vec<Val<'a>>),
    Object(Obj<'a>),
}

/// A JSON object, each key once. Up to [`SMALL`] members in any order, found by a linear scan;
/// larger objects sorted by [`key_order`], found by binary search. (Nearly every object of an
/// answer is small: sorting them cost more than it saved.)
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Obj<'a>(Vec<(Cow<'a, str>, Val<'a>)>);

/// Objects up to this size are scanned, not sorted.
const SMALL: usize = 8;

/// Whether two keys are equal: lengths first, which tells most keys apart without reading them.
#[inline]
fn same_key(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a == b
}

/// The order members of large objects are kept in: shorter keys first, then by bytes. A lookup
/// compares lengths, and compares bytes only with keys of its own length.
fn key_order(a: &str, b: &str) -> std::cmp::Ordering {
    a.len()
        .cmp(&b.len())
        .then_with(|| a.as_bytes().cmp(b.as_bytes()))
}

impl<'a> Val<'a> {
    pub fn is_null(&self) -> bool {
        matches!(self, Val::Null)
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Val::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_object(&self) -> Option<&Obj<'a>> {
        match self {
            Val::Object(o) => Some(o),
            _ => None,
        }
    }

    /// The member `key` when this is an object.
    pub fn get(&self, key: &str) -> Option<&Val<'a>> {
        self.as_object().and_then(|o| o.get(key))
    }

    /// The member `key` when this is an object.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Val<'a>> {
        match self {
            Val::Object(o) => o.get_mut(key),
            _ => None,
        }
    }

    /// An owned `serde_json::Value` (for errors and other small values leaving the tree).
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Val::Null => serde_json::Value::Null,
            Val::Bool(b) => serde_json::Value::Bool(*b),
            Val::Number(n) => serde_json::Value::Number(n.clone()),
            Val::String(s) => serde_json::Value::String(s.to_string()),
            Val::List(items) => serde_json::Value::Array(items.iter().map(Val::to_json).collect()),
            Val::Object(o) => serde_json::Value::Object(
                o.iter().map(|(k, v)| (k.to_owned(), v.to_json())).collect(),
            ),
        }
    }
}

impl<'a> Obj<'a> {
    /// An object of `pairs`; of repeated keys the last one counts, as in `serde_json`.
    pub fn from_pairs(mut pairs: Vec<(Cow<'a, str>, Val<'a>)>) -> Self {
        if pairs.len() <= SMALL {
            let repeated = (1..pairs.len()).any(|i| pairs[..i].iter().any(|p| p.0 == pairs[i].0));
            if !repeated {
                return Obj(pairs);
            }
            let mut object = Obj(Vec::with_capacity(pairs.len()));
            for (key, value) in pairs {
                object.insert(key, value);
            }
            return object;
        }
        if pairs
            .windows(2)
            .any(|w| key_order(&w[0].0, &w[1].0).is_ge())
        {
            // Stable: among equal keys the order of appearance stays, and the last one is kept.
            pairs.sort_by(|a, b| key_order(&a.0, &b.0));
            let mut kept: Vec<(Cow<'a, str>, Val<'a>)> = Vec::with_capacity(pairs.len());
            for pair in pairs {
                match kept.last_mut() {
                    Some(last) if last.0 == pair.0 => *last = pair,
                    _ => kept.push(pair),
                }
            }
            pairs = kept;
        }
        Obj(pairs)
    }

    /// Where `key` is, or where it would go.
    fn find(&self, key: &str) -> Result<usize, usize> {
        if self.0.len() <= SMALL {
            return self
                .0
                .iter()
                .position(|(k, _)| same_key(k.as_bytes(), key.as_bytes()))
                .ok_or(self.0.len());
        }
        self.0.binary_search_by(|(k, _)| key_order(k, key))
    }

    pub fn get(&self, key: &str) -> Option<&Val<'a>> {
        self.find(key).ok().map(|i| &self.0[i].1)
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut Val<'a>> {
        self.find(key).ok().map(|i| &mut self.0[i].1)
    }

    /// As [`Obj::get`], trying the `nth` member and the one after it first: where a key read in
    /// the order it was written usually is (after a `__typename` the plan added).
    pub fn get_near(&self, key: &str, nth: usize) -> Option<&Val<'a>> {
        for (k, v) in self.0.iter().skip(nth).take(2) {
            if same_key(k.as_bytes(), key.as_bytes()) {
                return Some(v);
            }
        }
        self.get(key)
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.find(key).is_ok()
    }

    /// Sets `key` to `value`, replacing what was there.
    pub fn insert(&mut self, key: Cow<'a, str>, value: Val<'a>) {
        match self.find(&key) {
            Ok(i) => self.0[i].1 = value,
            Err(i) => self.add_at(i, key, value),
        }
    }

    /// Adds a new member where [`Obj::find`] said it goes; sorts an object that stops being small.
    fn add_at(&mut self, i: usize, key: Cow<'a, str>, value: Val<'a>) {
        self.0.insert(i, (key, value));
        if self.0.len() == SMALL + 1 {
            self.0.sort_by(|a, b| key_order(&a.0, &b.0));
        }
    }

    pub fn remove(&mut self, key: &str) -> Option<Val<'a>> {
        self.find(key).ok().map(|i| self.0.remove(i).1)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(k, _)| k.as_ref())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Val<'a>)> {
        self.0.iter().map(|(k, v)| (k.as_ref(), v))
    }

    /// Merges `source` in: members of both are merged with [`deep_merge`], the others taken.
    fn merge_with(&mut self, mut source: Obj<'a>) {
        if source.0.len() <= SMALL {
            for (key, value) in source.0 {
                match self.find(&key) {
                    Ok(i) => deep_merge(&mut self.0[i].1, value),
                    Err(i) => self.add_at(i, key, value),
                }
            }
            return;
        }
        // Both sorted (a small object may be in any order): one pass, so merging large objects
        // stays linear.
        self.0.sort_by(|a, b| key_order(&a.0, &b.0));
        source.0.sort_by(|a, b| key_order(&a.0, &b.0));
        let target = std::mem::take(&mut self.0);
        let mut out = Vec::with_capacity(target.len() + source.0.len());
        let mut source = source.0.into_iter().peekable();
        for (key, mut value) in target {
            while let Some(next) = source.next_if(|(k, _)| key_order(k, &key).is_lt()) {
                out.push(next);
            }
            if let Some((_, other)) = source.next_if(|(k, _)| *k == key) {
                deep_merge(&mut value, other);
            }
            out.push((key, value));
        }
        out.extend(source);
        self.0 = out;
    }
}

/// Merges `source` into `target`: objects key by key, lists element by element; a null source
/// changes nothing, nor does anything merged into a null target; anything else replaces.
pub fn deep_merge<'a>(target: &mut Val<'a>, source: Val<'a>) {
    match (target, source) {
        (_, Val::Null) => {}
        // An entity found not to exist stays null, whichever sibling fetch merges first.
        (Val::Null, _) => {}
        (Val::Object(target), Val::Object(source)) => target.merge_with(source),
        (Val::List(target), Val::List(source)) => {
            for (i, value) in source.into_iter().enumerate() {
                match target.get_mut(i) {
                    Some(slot) => deep_merge(slot, value),
                    None => target.push(value),
                }
            }
        }
        (target, source) => *target = source,
    }
}

impl Val<'_> {
    /// Appends this value as JSON text; as its [`Serialize`] impl writes it, but with strings
    /// through [`write_str`].
    pub fn write_to(&self, out: &mut Vec<u8>) {
        match self {
            Val::Null => out.extend_from_slice(b"null"),
            Val::Bool(true) => out.extend_from_slice(b"true"),
            Val::Bool(false) => out.extend_from_slice(b"false"),
            Val::Number(n) => write_json(out, n),
            Val::String(s) => write_str(out, s),
            Val::List(items) => {
                out.push(b'[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    item.write_to(out);
                }
                out.push(b']');
            }
            Val::Object(o) => o.write_to(out),
        }
    }
}

impl Obj<'_> {
    /// Appends this object as JSON text (see [`Val::write_to`]).
    pub fn write_to(&self, out: &mut Vec<u8>) {
        out.push(b'{');
        for (i, (k, v)) in self.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_str(out, k);
            out.push(b':');
            v.write_to(out);
        }
        out.push(b'}');
    }
}

impl Serialize for Val<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Val::Null => serializer.serialize_unit(),
            Val::Bool(b) => serializer.serialize_bool(*b),
            Val::Number(n) => n.serialize(serializer),
            Val::String(s) => serializer.serialize_str(s),
            Val::List(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Val::Object(o) => o.serialize(serializer),
        }
    }
}

impl Serialize for Obj<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.len()))?;
        for (k, v) in self.iter() {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Val<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValVisitor(std::marker::PhantomData))
    }
}

struct ValVisitor<'a>(std::marker::PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for ValVisitor<'a> {
    type Value = Val<'a>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Val<'a>, E> {
        Ok(Val::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Val<'a>, E> {
        Ok(Val::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Val<'a>, E> {
        Ok(Val::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Val<'a>, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Val::Null, Val::Number))
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Val<'a>, E> {
        Ok(Val::String(Cow::Borrowed(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Val<'a>, E> {
        Ok(Val::String(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E>(self, v: String) -> Result<Val<'a>, E> {
        Ok(Val::String(Cow::Owned(v)))
    }

    fn visit_unit<E>(self) -> Result<Val<'a>, E> {
        Ok(Val::Null)
    }

    fn visit_none<E>(self) -> Result<Val<'a>, E> {
        Ok(Val::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Val<'a>, D::Error> {
        Val::deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Val<'a>, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Val::List(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Val<'a>, A::Error> {
        let mut pairs = Vec::with_capacity(map.size_hint().unwrap_or(0).min(64));
        while let Some(key) = map.next_key_seed(KeySeed(std::marker::PhantomData))? {
            pairs.push((key, map.next_value()?));
        }
        Ok(Val::Object(Obj::from_pairs(pairs)))
    }
}

/// Reads an object key, borrowed when it has no escapes.
struct KeySeed<'a>(std::marker::PhantomData<&'a ()>);

impl<'de: 'a, 'a> DeserializeSeed<'de> for KeySeed<'a> {
    type Value = Cow<'a, str>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Cow<'a, str>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de: 'a, 'a> Visitor<'de> for KeySeed<'a> {
    type Value = Cow<'a, str>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Cow<'a, str>, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Cow<'a, str>, E> {
        Ok(Cow::Owned(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Cow<'a, str>, E> {
        Ok(Cow::Owned(v))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// A tree from a `serde_json` value, strings owned.
    fn val(value: &serde_json::Value) -> Val<'static> {
        match value {
            serde_json::Value::Null => Val::Null,
            serde_json::Value::Bool(b) => Val::Bool(*b),
            serde_json::Value::Number(n) => Val::Number(n.clone()),
            serde_json::Value::String(s) => Val::String(Cow::Owned(s.clone())),
            serde_json::Value::Array(items) => Val::List(items.iter().map(val).collect()),
            serde_json::Value::Object(o) => Val::Object(Obj::from_pairs(
                o.iter()
                    .map(|(k, v)| (Cow::Owned(k.clone()), val(v)))
                    .collect(),
            )),
        }
    }

    /// Parsed as subgraph answers are.
    fn parse(text: &str) -> Val<'_> {
        serde_json::from_slice(text.as_bytes()).expect("valid JSON")
    }

    #[test]
    fn strings_borrow_from_the_body_unless_escaped() {
        let value = parse(r#"{"plain": "Загорка", "escaped": "a\"b", "k\u0065y": 1}"#);
        assert!(matches!(
            value.get("plain"),
            Some(Val::String(Cow::Borrowed("Загорка")))
        ));
        assert!(matches!(value.get("escaped"), Some(Val::String(Cow::Owned(s))) if s == "a\"b"));
        assert_eq!(value.get("key"), Some(&Val::Number(1.into())));
    }

    #[test]
    fn repeated_keys_keep_the_last_value_and_lookups_find_every_key() {
        let value = parse(r#"{"b": 1, "a": 2, "b": 3, "__typename": "T", "Z": 4}"#);
        assert_eq!(
            value.to_json(),
            json!({ "__typename": "T", "Z": 4, "a": 2, "b": 3 })
        );
        for key in ["__typename", "Z", "a", "b"] {
            assert!(value.get(key).is_some(), "{key}");
        }
    }

    #[test]
    fn objects_find_every_member_as_they_grow_past_small() {
        let mut object = Obj::default();
        for i in (0..20).rev() {
            object.insert(Cow::Owned(format!("k{i}")), Val::Number(i.into()));
            object.insert(Cow::Owned(format!("k{i}")), Val::Number((i * 2).into()));
            for j in i..20 {
                assert_eq!(
                    object.get(&format!("k{j}")),
                    Some(&Val::Number((j * 2).into()))
                );
            }
        }
        assert_eq!(object.len(), 20);
        assert_eq!(object.remove("k3"), Some(Val::Number(6.into())));
        assert!(object.get("k3").is_none() && object.get("k19").is_some());
    }

    #[test]
    fn round_trips_through_json_text() {
        let text = r#"{"a":[1,-2,2.5,true,null,"x\n"],"b":{"c":{}},"d":18446744073709551615}"#;
        let value = parse(text);
        assert_eq!(serde_json::to_string(&value).ok().as_deref(), Some(text));
        assert_eq!(val(&value.to_json()), value);
    }

    #[test]
    fn merging_adds_members_merges_lists_and_keeps_nulls() {
        let members = |prefix: &str| -> serde_json::Map<String, serde_json::Value> {
            (0..10)
                .map(|i| (format!("{prefix}{i}"), json!(i)))
                .collect()
        };
        let big = |prefix: &str| serde_json::Value::Object(members(prefix));
        let mut target = val(&json!({
            "a": 1, "list": [{ "x": 1 }, { "x": 2 }], "gone": null, "wide": big("k"),
        }));
        let source = val(&json!({
            "b": 2, "list": [{ "y": 1 }, { "y": 2 }, { "y": 3 }], "gone": { "z": 1 }, "a": null,
            "wide": big("j"),
        }));
        deep_merge(&mut target, source);
        let mut wide = members("k");
        wide.extend(members("j"));
        assert_eq!(
            target.to_json(),
            json!({
                "a": 1, "b": 2, "gone": null,
                "list": [{ "x": 1, "y": 1 }, { "x": 2, "y": 2 }, { "y": 3 }],
                "wide": wide,
            })
        );
        let Some(Val::Object(wide)) = target.get("wide") else {
            panic!("an object")
        };
        assert!(wide
            .keys()
            .zip(wide.keys().skip(1))
            .all(|(a, b)| key_order(a, b).is_lt()));
    }
}
