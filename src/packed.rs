//! Compact serde forms for large numeric vectors: a `Vec<f32>`, `Vec<u32>`
//! or `Vec<u8>` is written as one little-endian byte string instead of a
//! sequence of numbers, so the stored scan result of a million samples
//! ([`crate::detect::cache`]) is read back with a copy, not 64 million
//! decoder calls. Use with `#[serde(with = "crate::packed::f32s")]`.

use serde::de::{self, Visitor};
use serde::{Deserializer, Serializer};

/// Numbers that pack into fixed-size little-endian bytes.
trait Packable: Copy {
    const SIZE: usize;
    fn put(self, out: &mut Vec<u8>);
    fn get(bytes: &[u8]) -> Self;
}

/// `Packable` for a number type with `to_le_bytes`/`from_le_bytes`.
macro_rules! packable {
    ($t:ty) => {
        impl Packable for $t {
            const SIZE: usize = std::mem::size_of::<$t>();
            fn put(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
            fn get(b: &[u8]) -> Self {
                <$t>::from_le_bytes(b.try_into().expect("SIZE bytes"))
            }
        }
    };
}

packable!(f32);
packable!(u32);

fn pack<T: Packable, S: Serializer>(v: &[T], s: S) -> Result<S::Ok, S::Error> {
    let mut out = Vec::with_capacity(v.len() * T::SIZE);
    for &x in v {
        x.put(&mut out);
    }
    s.serialize_bytes(&out)
}

struct BytesVisitor;

impl<'de> Visitor<'de> for BytesVisitor {
    type Value = Vec<u8>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a byte string")
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
        Ok(v.to_vec())
    }
    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
        Ok(v)
    }
}

fn unpack<'de, T: Packable, D: Deserializer<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    let bytes = d.deserialize_byte_buf(BytesVisitor)?;
    if bytes.len() % T::SIZE != 0 {
        return Err(de::Error::custom(format!(
            "{} bytes is not a whole number of {}-byte values",
            bytes.len(),
            T::SIZE
        )));
    }
    Ok(bytes.chunks_exact(T::SIZE).map(T::get).collect())
}

/// `Vec<f32>` as little-endian bytes.
pub mod f32s {
    use serde::{Deserializer, Serializer};

    /// Writes the values as one byte string.
    pub fn serialize<S: Serializer>(v: &[f32], s: S) -> Result<S::Ok, S::Error> {
        super::pack(v, s)
    }
    /// Reads them back; a length that is not a multiple of 4 is an error.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f32>, D::Error> {
        super::unpack(d)
    }
}

/// `Vec<u32>` as little-endian bytes.
pub mod u32s {
    use serde::{Deserializer, Serializer};

    /// Writes the values as one byte string.
    pub fn serialize<S: Serializer>(v: &[u32], s: S) -> Result<S::Ok, S::Error> {
        super::pack(v, s)
    }
    /// Reads them back; a length that is not a multiple of 4 is an error.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u32>, D::Error> {
        super::unpack(d)
    }
}

/// `Vec<u8>` as one byte string.
pub mod u8s {
    use serde::{Deserializer, Serializer};

    /// Writes the bytes as one byte string.
    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }
    /// Reads them back.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        d.deserialize_byte_buf(super::BytesVisitor)
    }
}

#[cfg(test)]
mod tests {
    #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    struct T {
        #[serde(with = "super::f32s")]
        f: Vec<f32>,
        #[serde(with = "super::u32s")]
        u: Vec<u32>,
        #[serde(with = "super::u8s")]
        b: Vec<u8>,
    }

    #[test]
    fn round_trips_and_is_compact() {
        let t = T {
            f: vec![1.5, -0.0, f32::MAX, 3e-39],
            u: vec![0, 7, u32::MAX],
            b: (0..=255).collect(),
        };
        let bytes = rmp_serde::to_vec(&t).unwrap();
        assert!(bytes.len() < 16 + 12 + 256 + 20, "{} bytes", bytes.len());
        assert_eq!(rmp_serde::from_slice::<T>(&bytes).unwrap(), t);
    }

    #[test]
    fn ragged_lengths_are_errors() {
        #[derive(serde::Serialize)]
        struct B {
            #[serde(with = "super::u8s")]
            f: Vec<u8>,
        }
        let bytes = rmp_serde::to_vec(&B { f: vec![1, 2, 3] }).unwrap();
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct F {
            #[serde(with = "super::f32s")]
            f: Vec<f32>,
        }
        assert!(rmp_serde::from_slice::<F>(&bytes).is_err());
    }
}
