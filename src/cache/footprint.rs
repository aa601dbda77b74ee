//! An estimate of the memory a cached value holds, so that the cache's byte bound means
//! bytes of RAM rather than bytes of JSON. It walks the value with serde and adds, for every
//! heap allocation the value owns (strings, vectors, maps), the allocator's rounded size;
//! inline sizes of nested values are estimated from their shape. The JSON length would
//! undercount a typical record about threefold: a `serde_json` object is a B-tree whose
//! smallest node holds eleven slots, and every string is a separate allocation.

use serde::{Serialize, ser};

/// Inline size of a `String`/`Vec` header, and of a value whose shape is unknown (`None`).
const POINTER_TRIPLE: usize = 24;
/// Inline size of a number, boolean, char or enum tag.
const WORD: usize = 8;
/// Slots of one B-tree node (`serde_json::Map`, `BTreeMap`).
const BTREE_NODE_SLOTS: usize = 11;

/// Bytes the allocator hands out for a request of `size` (glibc-style: an 8-byte header,
/// 16-byte granularity, 32 bytes at least); 0 for nothing.
pub(super) fn allocation(size: usize) -> usize {
    if size == 0 {
        return 0;
    }
    (size + 8).div_ceil(16).max(2) * 16
}

/// Estimated heap bytes `value` owns beyond its own inline size.
pub(super) fn heap_bytes<T: Serialize + ?Sized>(value: &T) -> usize {
    value.serialize(Estimator).map_or(0, |size| size.heap)
}

/// Inline and heap size of a (sub)value.
#[derive(Debug, Clone, Copy, Default)]
struct Size {
    inline: usize,
    heap: usize,
}

impl Size {
    fn inline(inline: usize) -> Self {
        Self { inline, heap: 0 }
    }

    fn add(&mut self, other: Size) {
        self.inline += other.inline;
        self.heap += other.heap;
    }
}

/// Never fails: every shape has an estimate.
#[derive(Debug)]
struct Never;

impl std::fmt::Display for Never {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("footprint estimate failed")
    }
}

impl std::error::Error for Never {}

impl ser::Error for Never {
    fn custom<M: std::fmt::Display>(_message: M) -> Self {
        Never
    }
}

struct Estimator;

/// Collects the parts of a compound value, then sizes it as a struct, a vector or a map.
struct Compound {
    shape: Shape,
    parts: Size,
    entries: usize,
}

#[derive(Clone, Copy)]
enum Shape {
    /// Fields stored inline (structs, tuples); `tagged` adds an enum tag.
    Inline { tagged: bool },
    /// Elements in one heap buffer.
    Sequence,
    /// Entries in B-tree nodes.
    Map,
}

impl Compound {
    fn new(shape: Shape) -> Self {
        Self {
            shape,
            parts: Size::default(),
            entries: 0,
        }
    }

    fn push<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Never> {
        self.parts.add(value.serialize(Estimator)?);
        self.entries += 1;
        Ok(())
    }

    fn finish(self) -> Size {
        match self.shape {
            Shape::Inline { tagged } => Size {
                inline: self.parts.inline + if tagged { WORD } else { 0 },
                heap: self.parts.heap,
            },
            Shape::Sequence => Size {
                inline: POINTER_TRIPLE,
                heap: allocation(self.parts.inline) + self.parts.heap,
            },
            Shape::Map => {
                // Keys and values were pushed separately: an entry is two pushes.
                let entries = self.entries / 2;
                let nodes = entries.div_ceil(BTREE_NODE_SLOTS);
                let slot = self.parts.inline.checked_div(entries).unwrap_or(0);
                Size {
                    inline: POINTER_TRIPLE,
                    heap: nodes * allocation(BTREE_NODE_SLOTS * slot + 16) + self.parts.heap,
                }
            }
        }
    }
}

/// The serde traits of compounds whose items are positional (sequences, tuples): each item
/// is pushed, the end sums them up.
macro_rules! positional_compound {
    ($($trait:ident :: $method:ident),+ $(,)?) => {$(
        impl ser::$trait for Compound {
            type Ok = Size;
            type Error = Never;
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Never> {
                self.push(value)
            }
            fn end(self) -> Result<Size, Never> {
                Ok(self.finish())
            }
        }
    )+};
}

positional_compound!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field,
);

impl ser::SerializeMap for Compound {
    type Ok = Size;
    type Error = Never;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Never> {
        self.push(key)
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Never> {
        self.push(value)
    }
    fn end(self) -> Result<Size, Never> {
        Ok(self.finish())
    }
}

impl ser::SerializeStruct for Compound {
    type Ok = Size;
    type Error = Never;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, _key: &'static str, value: &T) -> Result<(), Never> {
        self.push(value)
    }
    fn skip_field(&mut self, _key: &'static str) -> Result<(), Never> {
        // A field left out (`skip_serializing_if`) still takes its inline room.
        self.parts.add(Size::inline(POINTER_TRIPLE));
        Ok(())
    }
    fn end(self) -> Result<Size, Never> {
        Ok(self.finish())
    }
}

impl ser::SerializeStructVariant for Compound {
    type Ok = Size;
    type Error = Never;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, _key: &'static str, value: &T) -> Result<(), Never> {
        self.push(value)
    }
    fn end(self) -> Result<Size, Never> {
        Ok(self.finish())
    }
}

impl ser::Serializer for Estimator {
    type Ok = Size;
    type Error = Never;
    type SerializeSeq = Compound;
    type SerializeTuple = Compound;
    type SerializeTupleStruct = Compound;
    type SerializeTupleVariant = Compound;
    type SerializeMap = Compound;
    type SerializeStruct = Compound;
    type SerializeStructVariant = Compound;

    fn serialize_bool(self, _: bool) -> Result<Size, Never> {
        Ok(Size::inline(1))
    }
    fn serialize_i8(self, _: i8) -> Result<Size, Never> {
        Ok(Size::inline(WORD))
    }
    fn serialize_i16(self, _: i16) -> Result<Size, Never> {
        Ok(Size::inline(WORD))
    }
    fn serialize_i32(self, _: i32) -> Result<Size, Never> {
        Ok(Size::inline(WORD))
    }
    fn serialize_i64(self, _: i64) -> Result<Size, Never> {
        Ok(Size::inline(WORD))
    }
    fn serialize_u8(self, _: u8) -> Result<Size, Never> {
        Ok(Size::inline(WORD))
    }
    fn serialize_u16(self, _: u16) -> Result<Size, Never> {
        Ok(Size::inline(WORD))
    }
    fn serialize_u32(self, _: u32) -> Result<Size, Never> {
        Ok(Size::inline(WORD))
    }
    fn serialize_u64(self, _: u64) -> Result<Size, Never> {
        Ok(Size::inline(WORD))
    }
    fn serialize_f32(self, _: f32) -> Result<Size, Never> {
        Ok(Size::inline(WORD))
    }
    fn serialize_f64(self, _: f64) -> Result<Size, Never> {
        Ok(Size::inline(WORD))
    }
    fn serialize_char(self, _: char) -> Result<Size, Never> {
        Ok(Size::inline(WORD))
    }
    fn serialize_str(self, text: &str) -> Result<Size, Never> {
        Ok(Size {
            inline: POINTER_TRIPLE,
            heap: allocation(text.len()),
        })
    }
    fn serialize_bytes(self, bytes: &[u8]) -> Result<Size, Never> {
        Ok(Size {
            inline: POINTER_TRIPLE,
            heap: allocation(bytes.len()),
        })
    }
    fn serialize_none(self) -> Result<Size, Never> {
        Ok(Size::inline(POINTER_TRIPLE))
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<Size, Never> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<Size, Never> {
        Ok(Size::inline(WORD))
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<Size, Never> {
        Ok(Size::inline(WORD))
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, _: &'static str) -> Result<Size, Never> {
        Ok(Size::inline(WORD))
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _: &'static str, value: &T) -> Result<Size, Never> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        value: &T,
    ) -> Result<Size, Never> {
        let mut size = value.serialize(self)?;
        size.inline += WORD;
        Ok(size)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Compound, Never> {
        Ok(Compound::new(Shape::Sequence))
    }
    fn serialize_tuple(self, _: usize) -> Result<Compound, Never> {
        Ok(Compound::new(Shape::Inline { tagged: false }))
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Compound, Never> {
        Ok(Compound::new(Shape::Inline { tagged: false }))
    }
    fn serialize_tuple_variant(self, _: &'static str, _: u32, _: &'static str, _: usize) -> Result<Compound, Never> {
        Ok(Compound::new(Shape::Inline { tagged: true }))
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Compound, Never> {
        Ok(Compound::new(Shape::Map))
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Compound, Never> {
        Ok(Compound::new(Shape::Inline { tagged: false }))
    }
    fn serialize_struct_variant(self, _: &'static str, _: u32, _: &'static str, _: usize) -> Result<Compound, Never> {
        Ok(Compound::new(Shape::Inline { tagged: true }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn allocations_round_like_the_allocator() {
        assert_eq!(allocation(0), 0);
        assert_eq!(allocation(1), 32);
        assert_eq!(allocation(24), 32);
        assert_eq!(allocation(25), 48);
        assert_eq!(allocation(36), 48);
    }

    #[test]
    fn a_string_costs_its_allocation() {
        assert_eq!(heap_bytes("a uuid-sized string of 36 characters"), 48);
    }

    #[test]
    fn a_small_json_object_costs_a_whole_btree_node() {
        let heap = heap_bytes(&json!({ "tier": "gold" }));
        // One node of eleven (24 + 24)-byte slots, plus two short strings.
        assert_eq!(heap, allocation(11 * 48 + 16) + 2 * 32);
        assert!(heap > serde_json::to_vec(&json!({ "tier": "gold" })).map_or(0, |j| j.len()) * 10);
    }

    #[test]
    fn struct_fields_are_inline_and_vectors_hold_their_elements() {
        #[derive(Serialize)]
        struct Item {
            id: i64,
            name: String,
        }
        let items = vec![
            Item {
                id: 1,
                name: "x".into(),
            },
            Item {
                id: 2,
                name: "y".into(),
            },
        ];
        // The buffer holds two (8 + 24)-byte items; each name is its own allocation.
        assert_eq!(heap_bytes(&items), allocation(64) + 2 * 32);
    }
}
