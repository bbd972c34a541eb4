//! `{{name}}` placeholders in text: the one splitter behind connector
//! templates (`flow::template`) and message templates (`messaging`), and the
//! HTML escaping of the values that land in pages and mail. Each caller
//! decides what a name means and how a value is escaped.

/// A piece of a template: literal text, or the name inside `{{ }}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Part<'a> {
    Text(&'a str),
    Name(&'a str),
}

/// Splits `text` into literal and `{{name}}` parts (names trimmed); an
/// unclosed or empty placeholder is an error saying which.
pub(crate) fn split(text: &str) -> Result<Vec<Part<'_>>, &'static str> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        if start > 0 {
            out.push(Part::Text(&rest[..start]));
        }
        let after = &rest[start + 2..];
        let end = after.find("}}").ok_or("template has \"{{\" without a closing \"}}\"")?;
        let name = after[..end].trim();
        if name.is_empty() {
            return Err("template has an empty {{ }}");
        }
        out.push(Part::Name(name));
        rest = &after[end + 2..];
    }
    if !rest.is_empty() {
        out.push(Part::Text(rest));
    }
    Ok(out)
}

/// Escapes text for HTML element content and quoted attributes.
pub fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
