//! The framing of `COPY … FROM STDIN (FORMAT binary)`, as asyncpg's
//! `copy_records_to_table` and psycopg's binary copy send it: a signature,
//! flags and a header extension, then each tuple as a field count and, per
//! field, a length (-1 for NULL) and the value's binary form, then -1.

const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";

#[derive(Debug, Default)]
pub struct BinaryFraming {
    header_read: bool,
}

pub enum Piece<'a> {
    /// One tuple's fields, `None` for NULL.
    Tuple(Vec<Option<&'a [u8]>>),
    /// The trailer: the data ends here.
    End,
}

impl BinaryFraming {
    /// The next whole tuple (or the trailer) at the start of `input`, with
    /// the bytes it takes (the header, first, included); `None` while
    /// `input` does not hold a whole one yet.
    pub fn next<'a>(&mut self, input: &'a [u8]) -> Result<Option<(Piece<'a>, usize)>, String> {
        let mut at = 0;
        if !self.header_read {
            if input.len() < SIGNATURE.len() + 8 {
                return Ok(None);
            }
            if !input.starts_with(SIGNATURE) {
                return Err("COPY file signature not recognized".into());
            }
            let flags = u32::from_be_bytes(input[11..15].try_into().expect("4 bytes"));
            // Bits 0–15 are critical flags and bit 16 says OIDs follow: none is understood.
            if flags & 0x0001_ffff != 0 {
                return Err("invalid COPY file header (unrecognized critical flags or OIDs)".into());
            }
            let extension = u32::from_be_bytes(input[15..19].try_into().expect("4 bytes")) as usize;
            if input.len() < 19 + extension {
                return Ok(None);
            }
            at = 19 + extension;
        }
        let Some(count) = input.get(at..at + 2) else { return Ok(None) };
        let count = i16::from_be_bytes([count[0], count[1]]);
        at += 2;
        if count == -1 {
            self.header_read = true;
            return Ok(Some((Piece::End, at)));
        }
        if count < 0 {
            return Err(format!("invalid field count {count}"));
        }
        let mut fields = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let Some(length) = input.get(at..at + 4) else { return Ok(None) };
            let length = i32::from_be_bytes(length.try_into().expect("4 bytes"));
            at += 4;
            if length == -1 {
                fields.push(None);
                continue;
            }
            let length = usize::try_from(length).map_err(|_| format!("invalid field length {length}"))?;
            let Some(value) = input.get(at..at + length) else { return Ok(None) };
            fields.push(Some(value));
            at += length;
        }
        self.header_read = true;
        Ok(Some((Piece::Tuple(fields), at)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Vec<u8> {
        let mut bytes = SIGNATURE.to_vec();
        bytes.extend_from_slice(&0u32.to_be_bytes());
        bytes.extend_from_slice(&0u32.to_be_bytes());
        bytes
    }

    #[test]
    fn reads_tuples_only_when_whole() {
        let mut input = header();
        input.extend_from_slice(&2i16.to_be_bytes());
        input.extend_from_slice(&4i32.to_be_bytes());
        input.extend_from_slice(&7i32.to_be_bytes());
        input.extend_from_slice(&(-1i32).to_be_bytes());
        input.extend_from_slice(&(-1i16).to_be_bytes());
        let mut framing = BinaryFraming::default();
        assert!(framing.next(&input[..input.len() - 3]).unwrap().is_none());
        let Some((Piece::Tuple(fields), used)) = framing.next(&input).unwrap() else { panic!("a tuple") };
        assert_eq!(fields, vec![Some(&7i32.to_be_bytes()[..]), None]);
        assert!(matches!(framing.next(&input[used..]).unwrap(), Some((Piece::End, 2))));
        assert!(BinaryFraming::default().next(b"PGCOPY\n\xff\r\n\x01junkjunkjunk").is_err());
    }
}
