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
    /// The signature, flags and header extension.
    Header,
    /// One tuple's fields, `None` for NULL.
    Tuple(Vec<Option<&'a [u8]>>),
    /// The trailer: the data ends here.
    End,
}

impl BinaryFraming {
    /// Whether the header has been read: input that ends before it is not
    /// binary COPY data.
    pub fn header_read(&self) -> bool {
        self.header_read
    }

    /// The next whole tuple (or the trailer) at the start of `input`, with
    /// the bytes it takes (the header, first, included); `None` while
    /// `input` does not hold a whole one yet.
    pub fn next<'a>(&mut self, input: &'a [u8]) -> Result<Option<(Piece<'a>, usize)>, String> {
        if !self.header_read {
            if input.len() < SIGNATURE.len() + 8 {
                return Ok(None);
            }
            if !input.starts_with(SIGNATURE) {
                return Err("COPY file signature not recognized".into());
            }
            let flags = u32::from_be_bytes(input[11..15].try_into().expect("4 bytes"));
            // Bit 16 says OIDs follow; bits 17–31 are critical flags none
            // of which is known; bits 0–15 may be ignored.
            if flags & (1 << 16) != 0 {
                return Err("invalid COPY file header (WITH OIDS)".into());
            }
            if flags >> 16 != 0 {
                return Err("unrecognized critical flags in COPY file header".into());
            }
            let extension = u32::from_be_bytes(input[15..19].try_into().expect("4 bytes")) as usize;
            if input.len() < 19 + extension {
                return Ok(None);
            }
            self.header_read = true;
            return Ok(Some((Piece::Header, 19 + extension)));
        }
        let mut at = 0;
        let Some(count) = input.get(at..at + 2) else { return Ok(None) };
        let count = i16::from_be_bytes([count[0], count[1]]);
        at += 2;
        if count == -1 {
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
        let Some((Piece::Header, header_len)) = framing.next(&input).unwrap() else { panic!("the header") };
        let input = &input[header_len..];
        assert!(framing.next(&input[..input.len() - 3]).unwrap().is_none());
        let Some((Piece::Tuple(fields), used)) = framing.next(input).unwrap() else { panic!("a tuple") };
        assert_eq!(fields, vec![Some(&7i32.to_be_bytes()[..]), None]);
        assert!(matches!(framing.next(&input[used..]).unwrap(), Some((Piece::End, 2))));
        assert!(BinaryFraming::default().next(b"PGCOPY\n\xff\r\n\x01junkjunkjunk").is_err());
        let mut with_oids = header();
        with_oids[11..15].copy_from_slice(&(1u32 << 16).to_be_bytes());
        assert!(BinaryFraming::default().next(&with_oids).is_err());
        let mut ignorable = header();
        ignorable[11..15].copy_from_slice(&1u32.to_be_bytes());
        assert!(matches!(BinaryFraming::default().next(&ignorable), Ok(Some((Piece::Header, 19)))));
    }
}
