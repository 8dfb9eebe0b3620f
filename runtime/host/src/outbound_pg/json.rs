//! JSON checked and without insignificant whitespace: Spin parses a
//! guest's `jsonb` parameter (refusing invalid JSON before the query runs)
//! and re-serialises a `jsonb` column compactly; this does both without a
//! JSON library, keeping the text otherwise as it is.

/// serde_json's default recursion limit, which Spin's parser applies.
const MAX_DEPTH: usize = 128;

/// `text` without whitespace outside strings, or why it is not JSON.
pub fn compact(text: &[u8]) -> Result<Vec<u8>, String> {
    let mut parser = Parser {
        text,
        at: 0,
        out: Vec::with_capacity(text.len()),
    };
    parser.value(0)?;
    parser.space();
    if parser.at != text.len() {
        return Err(parser.fail("trailing characters"));
    }
    Ok(parser.out)
}

struct Parser<'a> {
    text: &'a [u8],
    at: usize,
    out: Vec<u8>,
}

impl Parser<'_> {
    fn fail(&self, what: &str) -> String {
        format!("invalid JSON: {what} at byte {}", self.at)
    }

    fn space(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.text.get(self.at).copied()
    }

    fn take(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.at += 1;
        self.out.push(c);
        Some(c)
    }

    fn value(&mut self, depth: usize) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err(self.fail("nesting too deep"));
        }
        self.space();
        match self.peek() {
            Some(b'{') => self.container(depth, b'}', true),
            Some(b'[') => self.container(depth, b']', false),
            Some(b'"') => self.string(),
            Some(b't') => self.word(b"true"),
            Some(b'f') => self.word(b"false"),
            Some(b'n') => self.word(b"null"),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => Err(self.fail("expected a value")),
        }
    }

    fn container(&mut self, depth: usize, close: u8, object: bool) -> Result<(), String> {
        self.take();
        self.space();
        if self.peek() == Some(close) {
            self.take();
            return Ok(());
        }
        loop {
            if object {
                self.space();
                if self.peek() != Some(b'"') {
                    return Err(self.fail("expected a key"));
                }
                self.string()?;
                self.space();
                if self.take() != Some(b':') {
                    return Err(self.fail("expected `:`"));
                }
            }
            self.value(depth + 1)?;
            self.space();
            match self.take() {
                Some(b',') => {}
                Some(c) if c == close => return Ok(()),
                _ => return Err(self.fail("expected `,` or the end of the container")),
            }
        }
    }

    fn string(&mut self) -> Result<(), String> {
        self.take();
        let start = self.at;
        loop {
            match self.take() {
                None => return Err(self.fail("unterminated string")),
                Some(b'"') => break,
                Some(b'\\') => match self.take() {
                    Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {}
                    Some(b'u') => {
                        for _ in 0..4 {
                            if !self.take().is_some_and(|c| c.is_ascii_hexdigit()) {
                                return Err(self.fail("bad \\u escape"));
                            }
                        }
                    }
                    _ => return Err(self.fail("bad escape")),
                },
                Some(c) if c < 0x20 => return Err(self.fail("control character in a string")),
                Some(_) => {}
            }
        }
        std::str::from_utf8(&self.text[start..self.at])
            .map(drop)
            .map_err(|_| self.fail("invalid UTF-8"))
    }

    fn word(&mut self, word: &[u8]) -> Result<(), String> {
        if self.text[self.at..].starts_with(word) {
            self.at += word.len();
            self.out.extend_from_slice(word);
            Ok(())
        } else {
            Err(self.fail("expected a value"))
        }
    }

    fn number(&mut self) -> Result<(), String> {
        let digits = |p: &mut Self| {
            let start = p.at;
            while p.peek().is_some_and(|c| c.is_ascii_digit()) {
                p.take();
            }
            p.at > start
        };
        if self.peek() == Some(b'-') {
            self.take();
        }
        if self.peek() == Some(b'0') {
            self.take();
        } else if !digits(self) {
            return Err(self.fail("bad number"));
        }
        if self.peek() == Some(b'.') {
            self.take();
            if !digits(self) {
                return Err(self.fail("bad number"));
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.take();
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.take();
            }
            if !digits(self) {
                return Err(self.fail("bad number"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compacts_and_checks() {
        assert_eq!(
            compact(br#" {"a": [1, 2.5e3, -0], "b c": "x \" y", "n": null} "#).unwrap(),
            br#"{"a":[1,2.5e3,-0],"b c":"x \" y","n":null}"#
        );
        for bad in [&b"{"[..], b"[1,]", b"01", b"\"a", b"{1:2}", b"tru", b"[] x"] {
            assert!(compact(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
        let deep = "[".repeat(200) + &"]".repeat(200);
        assert!(compact(deep.as_bytes()).unwrap_err().contains("deep"));
    }
}
