//! Finding the records array of a JSON document without holding the document
//! ([`ArrayScanner`], used by `super::decode`): the document is walked byte by byte — at the
//! top level, or down a `--object-records-path` of member names, skipping every other member —
//! and the array's elements come out one at a time as their text. Only strings, escapes and
//! nesting are tracked here; each element is validated by the decoder with serde_json.

use super::decode_fault::{DecodeFault, SourceCompression};
use std::io::BufRead;

/// Walks a JSON document byte by byte without holding it: finds the records array (at the
/// top or at a path) and returns its elements' text one at a time. The elements are only
/// delimited here (strings, escapes and nesting tracked); `check_record` validates each.
pub(super) struct ArrayScanner {
    input: Box<dyn BufRead + Send>,
    compression: SourceCompression,
    /// Bytes consumed so far (for error positions).
    offset: u64,
    max: usize,
    /// The element read last.
    pub(super) value: Vec<u8>,
    /// Objects still open around the records array (closed after its end).
    open_objects: usize,
    state: ArrayState,
}

#[derive(PartialEq, Eq)]
enum ArrayState {
    First,
    Next,
    Done,
}

impl ArrayScanner {
    pub(super) fn new(
        input: Box<dyn BufRead + Send>,
        max: usize,
        compression: SourceCompression,
    ) -> Self {
        Self {
            input,
            compression,
            offset: 0,
            max,
            value: Vec::new(),
            open_objects: 0,
            state: ArrayState::First,
        }
    }

    fn at(&self) -> String {
        format!("byte {}", self.offset)
    }

    fn json_fault(&self, message: impl Into<String>) -> DecodeFault {
        DecodeFault::Json {
            at: format!("its content at {}", self.at()),
            message: message.into(),
        }
    }

    fn bump(&mut self) {
        self.input.consume(1);
        self.offset += 1;
    }

    fn skip_ws(&mut self) -> Result<Option<u8>, DecodeFault> {
        loop {
            let buf = self.input.fill_buf().map_err(|source| DecodeFault::Read {
                compression: self.compression,
                source,
            })?;
            if buf.is_empty() {
                return Ok(None);
            }
            let n = buf
                .iter()
                .position(|b| !b.is_ascii_whitespace())
                .unwrap_or(buf.len());
            let first = buf.get(n).copied();
            self.input.consume(n);
            self.offset += n as u64;
            if first.is_some() {
                return Ok(first);
            }
        }
    }

    fn expect(&mut self, want: u8, what: &str) -> Result<(), DecodeFault> {
        match self.skip_ws()? {
            Some(b) if b == want => {
                self.bump();
                Ok(())
            }
            Some(b) => Err(self.json_fault(format!(
                "expected {what}, found '{}'",
                char::from(b).escape_default()
            ))),
            None => Err(self.json_fault(format!(
                "the content ends where {what} was expected: the object looks truncated"
            ))),
        }
    }

    /// Consume one JSON value; with `keep`, its text goes into `self.value` (up to `max`).
    fn value(&mut self, keep: bool) -> Result<(), DecodeFault> {
        self.value.clear();
        let Some(first) = self.skip_ws()? else {
            return Err(self.json_fault(
                "the content ends where a value was expected: the object looks truncated",
            ));
        };
        let mut depth = 0usize;
        let mut in_string = false;
        let mut escaped = false;
        let scalar = !matches!(first, b'{' | b'[' | b'"');
        let start = self.offset;
        loop {
            let buf = self.input.fill_buf().map_err(|source| DecodeFault::Read {
                compression: self.compression,
                source,
            })?;
            if buf.is_empty() {
                if scalar && self.offset > start {
                    return Ok(());
                }
                return Err(
                    self.json_fault("the content ends inside a value: the object looks truncated")
                );
            }
            let mut used = 0;
            let mut done = false;
            for &b in buf {
                if scalar {
                    if matches!(b, b',' | b']' | b'}') || b.is_ascii_whitespace() {
                        done = true;
                        break;
                    }
                    used += 1;
                    continue;
                }
                used += 1;
                if in_string {
                    if escaped {
                        escaped = false;
                    } else if b == b'\\' {
                        escaped = true;
                    } else if b == b'"' {
                        in_string = false;
                        if depth == 0 {
                            done = true;
                            break;
                        }
                    }
                    continue;
                }
                match b {
                    b'"' => in_string = true,
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth = depth.saturating_sub(1);
                        if depth == 0 {
                            done = true;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            if keep {
                if self.value.len() + used > self.max {
                    return Err(DecodeFault::TooLarge {
                        at: format!("the record at byte {start}"),
                        limit: self.max,
                    });
                }
                self.value.extend_from_slice(&buf[..used]);
            }
            self.input.consume(used);
            self.offset += used as u64;
            if done {
                return Ok(());
            }
        }
    }

    /// A member name (the next value must be a string).
    fn key(&mut self) -> Result<String, DecodeFault> {
        if self.skip_ws()? != Some(b'"') {
            return Err(self.json_fault("expected a member name"));
        }
        let limit = self.max;
        self.max = self.max.min(1 << 20);
        let read = self.value(true);
        self.max = limit;
        read?;
        serde_json::from_slice::<String>(&self.value).map_err(|e| self.json_fault(e.to_string()))
    }

    /// The top-level array's `[`.
    pub(super) fn enter_array(&mut self) -> Result<(), DecodeFault> {
        self.expect(b'[', "'['")
    }

    /// Walk the document to the array at `path` and enter it.
    pub(super) fn descend(&mut self, path: &str) -> Result<(), DecodeFault> {
        let path_fault = |message: String| DecodeFault::Path {
            path: path.to_owned(),
            message,
        };
        let segments: Vec<&str> = path.split('.').filter(|s| !s.is_empty()).collect();
        if segments.is_empty() {
            return Err(path_fault(
                "is empty; name the member holding the records".into(),
            ));
        }
        for (i, seg) in segments.iter().enumerate() {
            match self.skip_ws()? {
                Some(b'{') => self.bump(),
                Some(b'[') if i == 0 => {
                    return Err(path_fault(
                        "the object is a JSON array at the top level; drop --records-path \
                         to read its elements as the records"
                            .into(),
                    ))
                }
                _ => {
                    return Err(path_fault(format!(
                        "'{}' is not a JSON object",
                        if i == 0 {
                            "the document".to_owned()
                        } else {
                            segments[..i].join(".")
                        }
                    )))
                }
            }
            self.open_objects += 1;
            let mut seen = Vec::new();
            loop {
                match self.skip_ws()? {
                    Some(b'}') => {
                        let keys = if seen.is_empty() {
                            "it has no members".to_owned()
                        } else {
                            format!("its members are {}", seen.join(", "))
                        };
                        return Err(path_fault(format!("'{seg}' is not there ({keys})")));
                    }
                    Some(b',') if !seen.is_empty() => self.bump(),
                    _ if seen.is_empty() => {}
                    _ => return Err(self.json_fault("expected ',' or '}' after a member")),
                }
                let key = self.key()?;
                self.expect(b':', "':'")?;
                if key == *seg {
                    break;
                }
                if seen.len() < 20 {
                    seen.push(format!("'{key}'"));
                }
                self.value(false)?;
            }
        }
        match self.skip_ws()? {
            Some(b'[') => {
                self.bump();
                Ok(())
            }
            _ => Err(path_fault("is not an array of records".into())),
        }
    }

    /// The next element of the array into `self.value`; returns its position, or `None`
    /// after the array's end (the rest of the document is then checked and consumed).
    pub(super) fn next_element(&mut self) -> Result<Option<String>, DecodeFault> {
        match self.state {
            ArrayState::Done => return Ok(None),
            ArrayState::First => {
                if self.skip_ws()? == Some(b']') {
                    self.bump();
                    self.finish()?;
                    return Ok(None);
                }
            }
            ArrayState::Next => {
                match self.skip_ws()? {
                    Some(b',') => self.bump(),
                    Some(b']') => {
                        self.bump();
                        self.finish()?;
                        return Ok(None);
                    }
                    Some(_) => return Err(self.json_fault("expected ',' or ']' after a record")),
                    None => return Err(self.json_fault(
                        "the content ends inside the array of records: the object looks truncated",
                    )),
                }
            }
        }
        self.state = ArrayState::Next;
        let start = match self.skip_ws()? {
            Some(_) => self.offset,
            None => {
                return Err(self.json_fault(
                    "the content ends inside the array of records: the object looks truncated",
                ))
            }
        };
        self.value(true)?;
        Ok(Some(format!("at byte {start}")))
    }

    /// After the records array: close the objects around it, then only blanks may follow.
    fn finish(&mut self) -> Result<(), DecodeFault> {
        self.state = ArrayState::Done;
        while self.open_objects > 0 {
            loop {
                match self.skip_ws()? {
                    Some(b'}') => {
                        self.bump();
                        break;
                    }
                    Some(b',') => {
                        self.bump();
                        self.key()?;
                        self.expect(b':', "':'")?;
                        self.value(false)?;
                    }
                    Some(_) => return Err(self.json_fault("expected ',' or '}'")),
                    None => {
                        return Err(self.json_fault(
                            "the document ends before it is closed: the object looks truncated",
                        ))
                    }
                }
            }
            self.open_objects -= 1;
        }
        match self.skip_ws()? {
            None => Ok(()),
            Some(_) => Err(self.json_fault("unexpected content after the end of the document")),
        }
    }
}
