//! Tiny HTML helpers shared by the consent and admin-centre pages (inline CSS, no external
//! assets, every piece of text escaped).

/// Escapes text for HTML element content and double-quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Wraps `body` (already escaped HTML) in a page with the emulator's inline style.
pub fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{title}</title><style>{STYLE}</style></head>\
<body><main class=\"card\">{body}</main>\
<p class=\"foot\">m365-emulator: a local stand-in for Microsoft. Nothing here talks to Microsoft.</p>\
</body></html>\n",
        title = escape(title),
    )
}

const STYLE: &str = "body{font-family:'Segoe UI',system-ui,sans-serif;background:#f3f2f1;color:#1b1b1b;margin:0;padding:2rem}\
.card{background:#fff;max-width:44rem;margin:0 auto;padding:2rem 2.5rem;box-shadow:0 2px 6px rgba(0,0,0,.15);border-radius:4px}\
h1{font-size:1.4rem;font-weight:600;margin-top:0}h2{font-size:1.1rem}\
.brand{color:#0067b8;font-weight:600;margin-bottom:1rem}\
ul.perms li{margin:.3rem 0}code{background:#f3f2f1;padding:0 .2rem}\
label{display:block;margin:1rem 0 .3rem;font-weight:600}select{width:100%;padding:.4rem}\
.buttons{margin-top:1.5rem;display:flex;gap:.75rem;justify-content:flex-end}\
button{padding:.45rem 1.4rem;border:1px solid #8a8886;background:#fff;cursor:pointer;font-size:1rem}\
button.primary{background:#0067b8;border-color:#0067b8;color:#fff}\
.error{border-left:4px solid #a4262c;padding-left:1rem}.code{color:#605e5c;font-size:.9rem;white-space:pre-wrap}\
table{border-collapse:collapse;width:100%}th,td{border-bottom:1px solid #edebe9;padding:.4rem;text-align:left;vertical-align:top}\
td form{display:inline}.foot{text-align:center;color:#605e5c;font-size:.8rem}";

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
