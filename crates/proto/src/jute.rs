//! The jute binary encoding: big-endian integers, length-prefixed strings, buffers and vectors,
//! with -1 as the null marker. There are no tags and no record lengths, so a decoder must know
//! the shape of what it reads.

use bytes::BufMut;
use thiserror::Error;

/// Why a record could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// The input ended before the record did.
    #[error("record truncated: needed {needed} more bytes at offset {offset}")]
    Truncated { offset: usize, needed: usize },
    /// A length prefix was negative (other than the null marker) or larger than the input allows.
    #[error("unreasonable length {len} at offset {offset}")]
    BadLength { offset: usize, len: i32 },
    /// A string was not valid UTF-8.
    #[error("invalid UTF-8 in string at offset {offset}")]
    BadUtf8 { offset: usize },
    /// An opcode this server does not know.
    #[error("unknown opcode {0}")]
    UnknownOpcode(i32),
    /// Structurally valid bytes with a value the record does not allow (such as a read inside a
    /// multi, or an unknown create mode in a multi sub-op).
    #[error("invalid record: {0}")]
    Invalid(&'static str),
}

/// A cursor over a byte slice that decodes jute primitives.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Starts reading at the beginning of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The offset of the next byte to read.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// The unread part of the input.
    pub fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.remaining() < n {
            return Err(DecodeError::Truncated {
                offset: self.pos,
                needed: n - self.remaining(),
            });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    /// Reads one byte.
    pub fn read_u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    /// Reads a boolean; any non-zero byte is true, as Java's reader treats it.
    pub fn read_bool(&mut self) -> Result<bool, DecodeError> {
        Ok(self.read_u8()? != 0)
    }

    /// Reads a big-endian 32-bit integer.
    pub fn read_i32(&mut self) -> Result<i32, DecodeError> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Reads a big-endian 64-bit integer.
    pub fn read_i64(&mut self) -> Result<i64, DecodeError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(i64::from_be_bytes(a))
    }

    /// Reads a length prefix; `None` is the null marker -1. A length can never exceed what is
    /// left of the input, which also bounds what a hostile prefix can make us allocate.
    fn read_len(&mut self, elem_min: usize) -> Result<Option<usize>, DecodeError> {
        let offset = self.pos;
        let len = self.read_i32()?;
        if len == -1 {
            return Ok(None);
        }
        if len < 0 || (len as usize).saturating_mul(elem_min) > self.remaining() {
            return Err(DecodeError::BadLength { offset, len });
        }
        Ok(Some(len as usize))
    }

    /// Reads a buffer, keeping null (-1) distinct from empty.
    pub fn read_buffer_opt(&mut self) -> Result<Option<&'a [u8]>, DecodeError> {
        match self.read_len(1)? {
            None => Ok(None),
            Some(n) => Ok(Some(self.take(n)?)),
        }
    }

    /// Reads a string; null reads as the empty string (kazoo sends "" as null).
    pub fn read_string(&mut self) -> Result<String, DecodeError> {
        Ok(self.read_string_opt()?.unwrap_or_default())
    }

    /// Reads a string, keeping null distinct from empty.
    pub fn read_string_opt(&mut self) -> Result<Option<String>, DecodeError> {
        let offset = self.pos;
        match self.read_buffer_opt()? {
            None => Ok(None),
            Some(b) => match std::str::from_utf8(b) {
                Ok(s) => Ok(Some(s.to_owned())),
                Err(_) => Err(DecodeError::BadUtf8 { offset }),
            },
        }
    }

    /// Reads a vector whose elements take at least `elem_min` bytes each; null reads as empty.
    pub fn read_vec<T>(
        &mut self,
        elem_min: usize,
        mut f: impl FnMut(&mut Self) -> Result<T, DecodeError>,
    ) -> Result<Vec<T>, DecodeError> {
        match self.read_len(elem_min.max(1))? {
            None => Ok(Vec::new()),
            Some(n) => {
                let mut v = Vec::with_capacity(n);
                for _ in 0..n {
                    v.push(f(self)?);
                }
                Ok(v)
            }
        }
    }
}

/// Writes jute primitives onto any `BufMut`.
pub trait JuteWrite: BufMut {
    /// Writes a boolean as 0 or 1.
    fn put_bool(&mut self, v: bool) {
        self.put_u8(v as u8);
    }
    /// Writes a string with its length prefix.
    fn put_string(&mut self, s: &str) {
        self.put_i32(s.len() as i32);
        self.put_slice(s.as_bytes());
    }
    /// Writes a buffer with its length prefix; `None` is written as the null marker.
    fn put_buffer_opt(&mut self, b: Option<&[u8]>) {
        match b {
            None => self.put_i32(-1),
            Some(b) => {
                self.put_i32(b.len() as i32);
                self.put_slice(b);
            }
        }
    }
}

impl<B: BufMut + ?Sized> JuteWrite for B {}

/// A record with a fixed jute layout.
pub trait Record: Sized {
    /// Appends the encoded record.
    fn encode<B: BufMut>(&self, buf: &mut B);
    /// Decodes one record from the reader.
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError>;

    /// Encodes into a fresh vector (tests and tools).
    fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.encode(&mut v);
        v
    }
}

/// A field type that knows its own jute encoding; the `record!` macro builds records from these.
pub trait Field: Sized {
    /// Smallest possible encoded size, used to reject vector counts that cannot fit.
    const MIN_SIZE: usize;
    /// Appends the field.
    fn put<B: BufMut>(&self, buf: &mut B);
    /// Reads the field.
    fn get(r: &mut Reader<'_>) -> Result<Self, DecodeError>;
}

impl Field for i32 {
    const MIN_SIZE: usize = 4;
    fn put<B: BufMut>(&self, buf: &mut B) {
        buf.put_i32(*self)
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.read_i32()
    }
}

impl Field for i64 {
    const MIN_SIZE: usize = 8;
    fn put<B: BufMut>(&self, buf: &mut B) {
        buf.put_i64(*self)
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.read_i64()
    }
}

impl Field for bool {
    const MIN_SIZE: usize = 1;
    fn put<B: BufMut>(&self, buf: &mut B) {
        buf.put_bool(*self)
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.read_bool()
    }
}

impl Field for String {
    const MIN_SIZE: usize = 4;
    fn put<B: BufMut>(&self, buf: &mut B) {
        buf.put_string(self)
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.read_string()
    }
}

/// A jute `buffer`, where null and empty are distinct (zkCli shows null data as "null").
impl Field for Option<Vec<u8>> {
    const MIN_SIZE: usize = 4;
    fn put<B: BufMut>(&self, buf: &mut B) {
        buf.put_buffer_opt(self.as_deref())
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(r.read_buffer_opt()?.map(|b| b.to_vec()))
    }
}

impl<T: Field> Field for Vec<T> {
    const MIN_SIZE: usize = 4;
    fn put<B: BufMut>(&self, buf: &mut B) {
        buf.put_i32(self.len() as i32);
        for x in self {
            x.put(buf);
        }
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.read_vec(T::MIN_SIZE, T::get)
    }
}

/// Declares a record struct whose fields are encoded in declaration order.
#[macro_export]
macro_rules! record {
    ($(#[$m:meta])* pub struct $name:ident { $($(#[$fm:meta])* pub $f:ident : $t:ty),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
        pub struct $name { $($(#[$fm])* pub $f: $t),* }

        impl $crate::jute::Record for $name {
            #[allow(unused_variables)]
            fn encode<B: bytes::BufMut>(&self, buf: &mut B) {
                $($crate::jute::Field::put(&self.$f, buf);)*
            }
            #[allow(unused_variables)]
            fn decode(r: &mut $crate::jute::Reader<'_>) -> Result<Self, $crate::jute::DecodeError> {
                Ok($name { $($f: $crate::jute::Field::get(r)?),* })
            }
        }

        impl $crate::jute::Field for $name {
            const MIN_SIZE: usize = 0 $(+ <$t as $crate::jute::Field>::MIN_SIZE)*;
            fn put<B: bytes::BufMut>(&self, buf: &mut B) {
                $crate::jute::Record::encode(self, buf)
            }
            fn get(r: &mut $crate::jute::Reader<'_>) -> Result<Self, $crate::jute::DecodeError> {
                $crate::jute::Record::decode(r)
            }
        }
    };
}
