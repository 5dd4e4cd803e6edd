//! Byte offsets ↔ editor positions: 0-based lines and columns counted in UTF-16 code units, as
//! the Language Server Protocol counts them (its default `positionEncoding`).

/// The line starts of one text, for converting positions both ways.
#[derive(Clone, Debug)]
pub struct LineIndex {
    line_starts: Vec<usize>,
}

/// A 0-based line and a 0-based column in UTF-16 code units.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    pub line: u32,
    pub character: u32,
}

impl LineIndex {
    pub fn new(text: &str) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { line_starts }
    }

    /// The position of byte `offset` of `text` (clamped to the text, and back to the start of
    /// the character it falls in).
    pub fn position(&self, text: &str, offset: usize) -> Position {
        let offset = floor_boundary(text, offset.min(text.len()));
        let line = match self.line_starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i.saturating_sub(1),
        };
        let start = self.line_starts.get(line).copied().unwrap_or(0);
        let character = text.get(start..offset).map_or(0, |s| s.encode_utf16().count());
        Position { line: u32::try_from(line).unwrap_or(u32::MAX), character: clamp_u32(character) }
    }

    /// The byte offset of `pos` in `text`. A line past the end is the end of the text; a column
    /// past the end of its line is the end of the line; a column inside a surrogate pair is the
    /// start of its character.
    pub fn offset(&self, text: &str, pos: Position) -> usize {
        let Some(&start) = self.line_starts.get(pos.line as usize) else {
            return text.len();
        };
        let end = self.line_starts.get(pos.line as usize + 1).map_or(text.len(), |e| e.saturating_sub(1));
        let line = text.get(start..end.max(start)).unwrap_or("");
        let mut units = 0usize;
        for (i, c) in line.char_indices() {
            if units + c.len_utf16() > pos.character as usize {
                return start + i;
            }
            units += c.len_utf16();
        }
        start + line.len()
    }
}

fn clamp_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn floor_boundary(text: &str, mut at: usize) -> usize {
    while at > 0 && !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_utf16_units() {
        // `é` is 2 bytes and 1 unit; `𝄞` is 4 bytes and 2 units.
        let text = "a\n// é𝄞 x\nyz";
        let ix = LineIndex::new(text);
        let x = text.find('x').unwrap_or_default();
        assert_eq!(ix.position(text, x), Position { line: 1, character: 7 });
        assert_eq!(ix.offset(text, Position { line: 1, character: 7 }), x);
        assert_eq!(ix.position(text, text.len()), Position { line: 2, character: 2 });
        // Past the end of a line, past the last line.
        assert_eq!(ix.offset(text, Position { line: 0, character: 9 }), 1);
        assert_eq!(ix.offset(text, Position { line: 9, character: 0 }), text.len());
        // Inside the surrogate pair: the start of `𝄞`.
        let clef = text.find('𝄞').unwrap_or_default();
        assert_eq!(ix.offset(text, Position { line: 1, character: 5 }), clef);
    }

    #[test]
    fn round_trips_every_char_boundary() {
        let text = "type é {\r\n  relation 𝄞x: user\n}\n";
        let ix = LineIndex::new(text);
        for (i, _) in text.char_indices() {
            assert_eq!(ix.offset(text, ix.position(text, i)), i, "offset {i}");
        }
    }
}
