//! Reading a seed's CSV the way Python's `csv` module (excel dialect) reads a file opened with
//! universal newlines: one record at a time, fields kept as bytes in the reader.

use std::io::{self, Read};

/// One record read by [`CsvReader::read_record`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Rec {
    /// A line with nothing on it (Python's csv module returns `[]`).
    Blank { line: u64 },
    /// A record whose fields are in the reader; `line` is where it starts.
    Fields { line: u64 },
}

enum Tok {
    Byte(u8),
    /// A line break: `\n`, `\r\n` or `\r`.
    Newline(&'static [u8]),
    Eof,
}

#[derive(Clone, Copy)]
enum State {
    StartField,
    InField,
    InQuoted,
    QuoteInQuoted,
}

/// Bytes read from the file at a time.
const CHUNK: usize = 64 * 1024;

pub(super) struct CsvReader<R> {
    input: R,
    chunk: Vec<u8>,
    pos: usize,
    len: usize,
    delimiter: u8,
    /// Line breaks inside quoted fields become `\n` (Python's universal newlines) instead of being kept.
    translate_newlines: bool,
    /// The line the next record starts on.
    line: u64,
    /// The current record's bytes and the end of each field in them.
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl<R: Read> CsvReader<R> {
    pub(super) fn new(input: R, delimiter: u8, translate_newlines: bool) -> Self {
        CsvReader {
            input,
            chunk: vec![0; CHUNK],
            pos: 0,
            len: 0,
            delimiter,
            translate_newlines,
            line: 1,
            bytes: Vec::new(),
            ends: Vec::new(),
        }
    }

    pub(super) fn len(&self) -> usize {
        self.ends.len()
    }

    pub(super) fn field(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.bytes[start..self.ends[i]]
    }

    /// Is there another byte? Refills the chunk when needed.
    fn fill(&mut self) -> io::Result<bool> {
        if self.pos < self.len {
            return Ok(true);
        }
        loop {
            match self.input.read(&mut self.chunk) {
                Ok(n) => {
                    self.pos = 0;
                    self.len = n;
                    return Ok(n > 0);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    pub(super) fn skip_bom(&mut self) -> io::Result<()> {
        const BOM: &[u8] = b"\xef\xbb\xbf";
        // Gather up to three bytes (a read may return fewer), then put back what is not a BOM.
        let mut head = Vec::with_capacity(3);
        while head.len() < 3 && self.fill()? {
            head.push(self.chunk[self.pos]);
            self.pos += 1;
        }
        if head != BOM {
            let mut data = head;
            data.extend_from_slice(&self.chunk[self.pos..self.len]);
            self.len = data.len();
            self.pos = 0;
            data.resize(data.len().max(CHUNK), 0);
            self.chunk = data;
        }
        Ok(())
    }

    fn next_tok(&mut self) -> io::Result<Tok> {
        if !self.fill()? {
            return Ok(Tok::Eof);
        }
        let b = self.chunk[self.pos];
        self.pos += 1;
        match b {
            b'\n' => Ok(Tok::Newline(b"\n")),
            b'\r' => {
                if self.fill()? && self.chunk[self.pos] == b'\n' {
                    self.pos += 1;
                    Ok(Tok::Newline(b"\r\n"))
                } else {
                    Ok(Tok::Newline(b"\r"))
                }
            }
            _ => Ok(Tok::Byte(b)),
        }
    }

    fn end_field(&mut self) {
        self.ends.push(self.bytes.len());
    }

    /// Read the next record; `None` at the end of the file.
    pub(super) fn read_record(&mut self) -> io::Result<Option<Rec>> {
        self.bytes.clear();
        self.ends.clear();
        let line = self.line;
        let first = match self.next_tok()? {
            Tok::Eof => return Ok(None),
            Tok::Newline(_) => {
                self.line += 1;
                return Ok(Some(Rec::Blank { line }));
            }
            tok => tok,
        };
        let mut pending = Some(first);
        let mut state = State::StartField;
        loop {
            let tok = match pending.take() {
                Some(tok) => tok,
                None => self.next_tok()?,
            };
            // A line break or the end of the file ends the record, except inside quotes.
            let end = match tok {
                Tok::Newline(raw) => match state {
                    State::InQuoted => {
                        self.line += 1;
                        if self.translate_newlines {
                            self.bytes.push(b'\n');
                        } else {
                            self.bytes.extend_from_slice(raw);
                        }
                        continue;
                    }
                    _ => {
                        self.line += 1;
                        true
                    }
                },
                Tok::Eof => true,
                Tok::Byte(_) => false,
            };
            if end {
                self.end_field();
                return Ok(Some(Rec::Fields { line }));
            }
            let Tok::Byte(b) = tok else { unreachable!("line breaks and the end of the file are handled above") };
            state = match state {
                State::StartField if b == b'"' => State::InQuoted,
                State::StartField | State::InField if b == self.delimiter => {
                    self.end_field();
                    State::StartField
                }
                State::StartField | State::InField => {
                    self.bytes.push(b);
                    State::InField
                }
                State::InQuoted if b == b'"' => State::QuoteInQuoted,
                State::InQuoted => {
                    self.bytes.push(b);
                    State::InQuoted
                }
                State::QuoteInQuoted if b == b'"' => {
                    self.bytes.push(b'"');
                    State::InQuoted
                }
                State::QuoteInQuoted if b == self.delimiter => {
                    self.end_field();
                    State::StartField
                }
                // `"ab"cd` is `abcd` (Python's csv is not strict).
                State::QuoteInQuoted => {
                    self.bytes.push(b);
                    State::InField
                }
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_reader_reports_start_lines() {
        let mut r = CsvReader::new(&b"h\n\n\"a\nb\"\nc"[..], b',', true);
        let mut seen = Vec::new();
        while let Some(rec) = r.read_record().unwrap() {
            seen.push(rec);
        }
        assert_eq!(
            seen,
            vec![Rec::Fields { line: 1 }, Rec::Blank { line: 2 }, Rec::Fields { line: 3 }, Rec::Fields { line: 5 }]
        );
    }
}
