//! The small binary encoding shared by packs, index files and manifest segments.
//!
//! Integers are LEB128 varints (signed ones zigzagged), byte strings are length-prefixed. The
//! decoder checks every length against what is left, so garbage yields an error, never a panic
//! or a huge allocation.

/// Appends values to a byte buffer.
#[derive(Debug, Default)]
pub struct Encoder {
    pub buf: Vec<u8>,
}

impl Encoder {
    pub fn new() -> Encoder {
        Encoder::default()
    }

    pub fn u64(&mut self, mut value: u64) {
        while value >= 0x80 {
            self.buf.push((value as u8) | 0x80);
            value >>= 7;
        }
        self.buf.push(value as u8);
    }

    pub fn i64(&mut self, value: i64) {
        self.u64(((value << 1) ^ (value >> 63)) as u64);
    }

    pub fn u8(&mut self, value: u8) {
        self.buf.push(value);
    }

    pub fn raw(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    pub fn bytes(&mut self, bytes: &[u8]) {
        self.u64(bytes.len() as u64);
        self.raw(bytes);
    }
}

/// Why a buffer could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} at byte {offset}")]
pub struct DecodeError {
    pub what: &'static str,
    pub offset: usize,
}

/// Reads values from a byte buffer, refusing anything that runs past its end.
pub struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Decoder<'a> {
    pub fn new(buf: &'a [u8]) -> Decoder<'a> {
        Decoder { buf, pos: 0 }
    }

    pub fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    pub fn position(&self) -> usize {
        self.pos
    }

    fn fail(&self, what: &'static str) -> DecodeError {
        DecodeError {
            what,
            offset: self.pos,
        }
    }

    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let Some(&byte) = self.buf.get(self.pos) else {
                return Err(self.fail("truncated integer"));
            };
            self.pos += 1;
            value |= ((byte & 0x7f) as u64) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(self.fail("integer too long"))
    }

    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        u32::try_from(self.u64()?).map_err(|_| self.fail("integer out of range"))
    }

    pub fn i64(&mut self) -> Result<i64, DecodeError> {
        let raw = self.u64()?;
        Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64))
    }

    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        let byte = *self.buf.get(self.pos).ok_or(self.fail("truncated byte"))?;
        self.pos += 1;
        Ok(byte)
    }

    pub fn raw(&mut self, len: usize) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() - self.pos < len {
            return Err(self.fail("truncated data"));
        }
        let slice = &self.buf[self.pos..self.pos + len];
        self.pos += len;
        Ok(slice)
    }

    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.raw(N)?);
        Ok(out)
    }

    pub fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let len = self.u64()?;
        let len = usize::try_from(len).map_err(|_| self.fail("length out of range"))?;
        self.raw(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_and_truncation_is_an_error() {
        let mut enc = Encoder::new();
        enc.u64(0);
        enc.u64(u64::MAX);
        enc.i64(-5);
        enc.i64(i64::MIN);
        enc.bytes(b"name\xff");
        let mut dec = Decoder::new(&enc.buf);
        assert_eq!(dec.u64().unwrap(), 0);
        assert_eq!(dec.u64().unwrap(), u64::MAX);
        assert_eq!(dec.i64().unwrap(), -5);
        assert_eq!(dec.i64().unwrap(), i64::MIN);
        assert_eq!(dec.bytes().unwrap(), b"name\xff");
        assert!(dec.is_empty());
        let cut = &enc.buf[..enc.buf.len() - 1];
        let mut dec = Decoder::new(cut);
        dec.u64().unwrap();
        dec.u64().unwrap();
        dec.i64().unwrap();
        dec.i64().unwrap();
        assert!(dec.bytes().is_err());
        let mut huge = Decoder::new(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
        assert!(huge.bytes().is_err());
    }
}
