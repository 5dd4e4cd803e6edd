//! ZedTokens and cursors: opaque to clients, naming a revision of one store.
//!
//! A token is `pv1.<store id, hex>.<revision>` in URL-safe base64: a token of another store (or
//! another in-memory instance) is refused rather than misread as a revision of this one.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

/// Why a token or cursor was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("malformed token `{0}`")]
    Malformed(String),
    #[error("the token belongs to another store (this is store {ours}, the token names store {theirs})")]
    OtherStore { ours: String, theirs: String },
}

fn hex(id: &[u8; 16]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(32);
    for b in id {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 15) as usize] as char);
    }
    out
}

/// The token for `revision` of the store `id`.
pub fn encode(id: &[u8; 16], revision: u64) -> String {
    URL_SAFE_NO_PAD.encode(format!("pv1.{}.{revision}", hex(id)))
}

/// The revision a token names, if it is one of store `id`.
pub fn decode(id: &[u8; 16], token: &str) -> Result<u64, TokenError> {
    let bad = || TokenError::Malformed(token.chars().take(64).collect());
    let bytes = URL_SAFE_NO_PAD.decode(token.trim_end_matches('=')).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let mut parts = text.split('.');
    let (Some("pv1"), Some(store), Some(rev), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    let ours = hex(id);
    if store != ours {
        return Err(TokenError::OtherStore { ours, theirs: store.to_string() });
    }
    rev.parse().map_err(|_| bad())
}

/// The part of a cursor that names the store and revision (the same for every cursor of one
/// answer: computed once, see [`cursor_at`]).
pub fn cursor_prefix(id: &[u8; 16], revision: u64) -> String {
    URL_SAFE_NO_PAD.encode(format!("pv1.{}.{revision}", hex(id)))
}

/// The cursor at `position` after a prefix from [`cursor_prefix`]. Positions are numbers.
pub fn cursor_at(prefix: &str, position: &str) -> String {
    format!("{prefix}.{position}")
}

/// A cursor: where a paged read or lookup goes on, at which revision.
pub fn encode_cursor(id: &[u8; 16], revision: u64, position: &str) -> String {
    cursor_at(&cursor_prefix(id, revision), position)
}

/// The revision and position of a cursor of store `id`.
pub fn decode_cursor(id: &[u8; 16], cursor: &str) -> Result<(u64, String), TokenError> {
    let bad = || TokenError::Malformed(cursor.chars().take(64).collect());
    let (prefix, position) = cursor.rsplit_once('.').ok_or_else(bad)?;
    if position.is_empty() || !position.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let revision = decode(id, prefix).map_err(|e| match e {
        TokenError::Malformed(_) => bad(),
        other => other,
    })?;
    Ok((revision, position.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_name_their_store() {
        let a = [1u8; 16];
        let b = [2u8; 16];
        let t = encode(&a, 42);
        assert_eq!(decode(&a, &t), Ok(42));
        assert!(matches!(decode(&b, &t), Err(TokenError::OtherStore { .. })));
        assert!(matches!(decode(&a, "not a token"), Err(TokenError::Malformed(_))));
        let c = encode_cursor(&a, 7, "12");
        assert_eq!(decode_cursor(&a, &c), Ok((7, "12".to_string())));
        assert!(decode_cursor(&b, &c).is_err());
        assert!(decode_cursor(&a, &format!("{c}x")).is_err());
        assert!(decode_cursor(&a, "12").is_err());
    }
}
