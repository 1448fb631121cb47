//! Tenant text is data, not instructions. Every string that comes from a customer's tenant
//! (display names, addresses, access rights, Exchange messages) passes through [`tenant_text`]
//! before MCP returns it:
//!
//! - control characters (C0, C1, line and paragraph separators) and invisible formatting
//!   characters (bidi embeddings, overrides and isolates, zero-width characters, word joiners,
//!   variation selectors, Unicode tag characters, the BOM, interlinear annotations, filler
//!   characters) are replaced by a visible escape such as `<U+202E>`, so a reader sees that
//!   something was hidden there and the rendered text equals the bytes;
//! - the result is capped at [`MAX_CHARS`] characters; a longer text ends with
//!   `…[truncated, N chars]` where N is the length of the original.

/// The longest text (in characters, escapes included) MCP returns for one tenant string.
pub const MAX_CHARS: usize = 256;

/// Whether `c` must not pass through verbatim: control or invisible formatting characters.
pub fn is_hidden(c: char) -> bool {
    if c.is_control() {
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

/// Sanitizes one tenant string for MCP output (see the module docs).
pub fn tenant_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len().min(MAX_CHARS * 4));
    let mut count = 0usize;
    let mut truncated = false;
    for c in s.chars() {
        let piece_len = if is_hidden(c) { escape_len(c) } else { 1 };
        if count + piece_len > MAX_CHARS {
            truncated = true;
            break;
        }
        if is_hidden(c) {
            push_escape(&mut out, c);
        } else {
            out.push(c);
        }
        count += piece_len;
    }
    if truncated {
        // Make room for the marker so the whole result stays within MAX_CHARS.
        let marker = format!("…[truncated, {} chars]", s.chars().count());
        let keep = MAX_CHARS.saturating_sub(marker.chars().count());
        let mut cut: String = out.chars().take(keep).collect();
        // Never leave half an escape behind.
        if let Some(open) = cut.rfind("<U+")
            && !cut[open..].contains('>')
        {
            cut.truncate(open);
        }
        cut.push_str(&marker);
        return cut;
    }
    out
}

/// [`tenant_text`] over an optional string.
pub fn tenant_opt(s: Option<&str>) -> Option<String> {
    s.map(tenant_text)
}

/// [`tenant_text`] over a list.
pub fn tenant_list<S: AsRef<str>>(items: &[S]) -> Vec<String> {
    items.iter().map(|s| tenant_text(s.as_ref())).collect()
}

fn escape_len(c: char) -> usize {
    // "<U+" + hex digits (at least 4) + ">"
    let hex = format!("{:04X}", c as u32);
    4 + hex.len()
}

fn push_escape(out: &mut String, c: char) {
    out.push_str(&format!("<U+{:04X}>", c as u32));
}

/// Replaces hidden characters by visible escapes, without a length cap (for messages that mix
/// tenant text with exogate's own words).
pub fn escape_hidden(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if is_hidden(c) {
            push_escape(&mut out, c);
        } else {
            out.push(c);
        }
    }
    out
}
