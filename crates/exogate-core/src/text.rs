//! Tenant text is data, not instructions. Every string that comes from a customer's tenant
//! (display names, addresses, access rights, Exchange messages, company display names) passes
//! through [`tenant_text`] before a page, the JSON API or MCP shows it:
//!
//! - hidden characters ([`is_hidden`]: controls including C1 and the line and paragraph
//!   separators, bidi embeddings, overrides and isolates, zero-width characters, word joiners,
//!   variation selectors, Unicode tag characters, the BOM, interlinear annotations, filler
//!   characters) are replaced by a visible escape such as `<U+202E>`, so a reader sees that
//!   something was hidden there and the rendered text equals what the bytes say;
//! - the result is capped at [`MAX_CHARS`] characters; a longer text ends with
//!   `…[truncated, N chars]` where N is the length of the original, and an escape is never cut
//!   in half.
//!
//! The same predicate decides which identities a person or agent may type
//! ([`crate::model::IdentityInput::parse`] refuses any hidden character).

/// The longest text (in characters, escapes and marker included) shown for one tenant string.
pub const MAX_CHARS: usize = 256;

/// The longest text shown for one of exogate's own sentences that quotes tenant text (an
/// Exchange error inside a sweep warning, say).
pub const MESSAGE_MAX_CHARS: usize = 600;

/// Whether `c` must not pass through verbatim: a control or invisible formatting character.
pub fn is_hidden(c: char) -> bool {
    if c.is_control() {
        // C0, DEL and C1.
        return true;
    }
    matches!(c,
        '\u{00AD}'                       // soft hyphen
        | '\u{034F}'                     // combining grapheme joiner
        | '\u{061C}'                     // Arabic letter mark
        | '\u{115F}' | '\u{1160}'        // Hangul fillers
        | '\u{17B4}' | '\u{17B5}'        // Khmer inherent vowels
        | '\u{180B}'..='\u{180F}'        // Mongolian variation selectors, vowel separator
        | '\u{200B}'..='\u{200F}'        // zero-width space/non-joiner/joiner, LRM, RLM
        | '\u{2028}' | '\u{2029}'        // line / paragraph separator
        | '\u{202A}'..='\u{202E}'        // bidi embeddings and overrides
        | '\u{2060}'..='\u{206F}'        // word joiner, invisible operators, bidi isolates
        | '\u{3164}'                     // Hangul filler
        | '\u{FE00}'..='\u{FE0F}'        // variation selectors
        | '\u{FEFF}'                     // BOM / zero-width no-break space
        | '\u{FFA0}'                     // half-width Hangul filler
        | '\u{FFF9}'..='\u{FFFB}'        // interlinear annotations
        | '\u{1BCA0}'..='\u{1BCA3}'      // shorthand format controls
        | '\u{1D173}'..='\u{1D17A}'      // musical format characters
        | '\u{E0000}'..='\u{E007F}'      // tag characters ("ASCII smuggling")
        | '\u{E0100}'..='\u{E01EF}' // variation selectors supplement
    )
}

/// The first hidden character of `s`, if any.
pub fn first_hidden(s: &str) -> Option<char> {
    s.chars().find(|c| is_hidden(*c))
}

/// Sanitizes one tenant string for display: hidden characters escaped, at most [`MAX_CHARS`]
/// characters (see the module docs).
pub fn tenant_text(s: &str) -> String {
    capped(s, MAX_CHARS)
}

/// [`tenant_text`] over an optional string.
pub fn tenant_opt(s: Option<&str>) -> Option<String> {
    s.map(tenant_text)
}

/// [`tenant_text`] over a list.
pub fn tenant_list<S: AsRef<str>>(items: &[S]) -> Vec<String> {
    items.iter().map(|s| tenant_text(s.as_ref())).collect()
}

/// Hidden characters escaped and the result capped at `max` characters (escapes and the
/// truncation marker included). [`tenant_text`] is this with [`MAX_CHARS`].
pub fn capped(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max.saturating_mul(4)));
    let mut count = 0usize;
    for c in s.chars() {
        let n = piece_len(c);
        if count + n > max {
            return truncated(s, max);
        }
        push_piece(&mut out, c);
        count += n;
    }
    out
}

/// The truncated form of `s` (which does not fit in `max`): as many whole pieces as fit before
/// the marker, then the marker.
fn truncated(s: &str, max: usize) -> String {
    let marker = format!("…[truncated, {} chars]", s.chars().count());
    let marker_len = marker.chars().count();
    if marker_len > max {
        // No room for the marker: an ellipsis (or nothing) says the text was cut.
        return "…".chars().take(max).collect();
    }
    let keep = max - marker_len;
    let mut out = String::with_capacity(keep + marker.len());
    let mut count = 0usize;
    for c in s.chars() {
        let n = piece_len(c);
        if count + n > keep {
            break;
        }
        push_piece(&mut out, c);
        count += n;
    }
    out.push_str(&marker);
    out
}

/// Replaces hidden characters by visible escapes, without a length cap (for text that mixes
/// tenant text with exogate's own words and is bounded elsewhere).
pub fn escape_hidden(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        push_piece(&mut out, c);
    }
    out
}

/// How many characters `c` takes once shown.
fn piece_len(c: char) -> usize {
    if is_hidden(c) {
        // "<U+" + at least four hex digits + ">"
        let digits = format!("{:X}", c as u32).len().max(4);
        4 + digits
    } else {
        1
    }
}

fn push_piece(out: &mut String, c: char) {
    if is_hidden(c) {
        out.push_str(&format!("<U+{:04X}>", c as u32));
    } else {
        out.push(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_short_text_is_unchanged() {
        assert_eq!(tenant_text("Sales Team"), "Sales Team");
        assert_eq!(tenant_text("Zoë Ålund 山田"), "Zoë Ålund 山田");
        assert_eq!(tenant_text(""), "");
    }

    #[test]
    fn hidden_characters_are_escaped() {
        assert_eq!(tenant_text("abc\u{202E}fed"), "abc<U+202E>fed");
        assert_eq!(tenant_text("a\u{200B}b\u{2066}c"), "a<U+200B>b<U+2066>c");
        assert_eq!(tenant_text("l\u{2028}p\u{2029}"), "l<U+2028>p<U+2029>");
        assert_eq!(tenant_text("x\u{E0041}\u{E007F}"), "x<U+E0041><U+E007F>");
        assert_eq!(tenant_text("\u{85}\u{9B}"), "<U+0085><U+009B>");
        assert_eq!(tenant_text("v\u{FE0F}\u{E0100}"), "v<U+FE0F><U+E0100>");
        assert_eq!(
            tenant_text("\u{FEFF}\u{FFF9}\u{3164}"),
            "<U+FEFF><U+FFF9><U+3164>"
        );
        assert_eq!(tenant_text("a\nb\tc"), "a<U+000A>b<U+0009>c");
    }

    #[test]
    fn every_listed_class_is_hidden() {
        for c in [
            '\u{0}',
            '\u{1F}',
            '\u{7F}',
            '\u{80}',
            '\u{9F}',
            '\u{AD}',
            '\u{34F}',
            '\u{61C}',
            '\u{115F}',
            '\u{1160}',
            '\u{17B4}',
            '\u{180E}',
            '\u{200B}',
            '\u{200D}',
            '\u{200F}',
            '\u{2028}',
            '\u{2029}',
            '\u{202A}',
            '\u{202E}',
            '\u{2060}',
            '\u{2066}',
            '\u{2069}',
            '\u{3164}',
            '\u{FE00}',
            '\u{FE0F}',
            '\u{FEFF}',
            '\u{FFA0}',
            '\u{FFFB}',
            '\u{1BCA0}',
            '\u{1D173}',
            '\u{E0000}',
            '\u{E0001}',
            '\u{E0041}',
            '\u{E007F}',
            '\u{E0100}',
            '\u{E01EF}',
        ] {
            assert!(is_hidden(c), "U+{:04X}", c as u32);
        }
        for c in ['a', 'Z', ' ', 'é', '山', '@', '<', '…', '\u{E0080}'] {
            assert!(!is_hidden(c), "U+{:04X}", c as u32);
        }
    }

    #[test]
    fn long_text_is_capped_with_a_marker() {
        let long = "x".repeat(10_000);
        let out = tenant_text(&long);
        assert_eq!(out.chars().count(), MAX_CHARS);
        assert!(out.ends_with("…[truncated, 10000 chars]"), "{out}");
        let exact = "y".repeat(MAX_CHARS);
        assert_eq!(tenant_text(&exact), exact);
        let over = "y".repeat(MAX_CHARS + 1);
        assert!(tenant_text(&over).ends_with("…[truncated, 257 chars]"));
    }

    #[test]
    fn an_escape_is_never_cut_in_half() {
        let s = "\u{E0041}".repeat(1000);
        let out = tenant_text(&s);
        assert!(out.chars().count() <= MAX_CHARS);
        let body = out.strip_suffix("…[truncated, 1000 chars]").unwrap();
        assert!(body.len().is_multiple_of("<U+E0041>".len()), "{out}");
        assert!(body.split_inclusive('>').all(|p| p == "<U+E0041>"), "{out}");
    }

    #[test]
    fn tiny_caps_still_hold() {
        assert_eq!(capped("abcdef", 3), "…");
        assert_eq!(capped("abcdef", 0), "");
        assert_eq!(capped("abc", 3), "abc");
    }

    #[test]
    fn escape_hidden_has_no_cap() {
        let s = format!("{}\u{202E}", "a".repeat(1000));
        let out = escape_hidden(&s);
        assert_eq!(out.chars().count(), 1000 + "<U+202E>".len());
    }
}
