//! Just enough HTML reading for the scripted browser: tags with attributes, forms with their
//! fields and buttons, and visible text. Tolerant of unquoted attributes and odd spacing.

/// A start or end tag.
#[derive(Debug, Clone)]
pub struct Tag {
    /// Lowercase element name.
    pub name: String,
    /// Attributes (lowercase names, decoded values).
    pub attrs: Vec<(String, String)>,
    /// End tag (`</x>`).
    pub closing: bool,
    /// Byte offset of `<`.
    pub start: usize,
    /// Byte offset after `>`.
    pub end: usize,
}

impl Tag {
    /// An attribute's value.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Decode the common character references.
pub fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let Some(semi) = rest[..rest.len().min(12)].find(';') else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let ent = &rest[1..semi];
        let ch = match ent {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            "nbsp" => Some(' '),
            "middot" => Some('·'),
            _ if ent.starts_with("#x") || ent.starts_with("#X") => {
                u32::from_str_radix(&ent[2..], 16)
                    .ok()
                    .and_then(char::from_u32)
            }
            _ if ent.starts_with('#') => ent[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match ch {
            Some(c) => {
                out.push(c);
                rest = &rest[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// All tags of a document, skipping comments, doctype and the bodies of script/style.
pub fn tags(html: &str) -> Vec<Tag> {
    let b = html.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'<' {
            i += 1;
            continue;
        }
        if html[i..].starts_with("<!--") {
            i = html[i..].find("-->").map(|e| i + e + 3).unwrap_or(b.len());
            continue;
        }
        if html[i..].starts_with("<!") || html[i..].starts_with("<?") {
            i = html[i..].find('>').map(|e| i + e + 1).unwrap_or(b.len());
            continue;
        }
        let start = i;
        i += 1;
        let closing = i < b.len() && b[i] == b'/';
        if closing {
            i += 1;
        }
        let name_start = i;
        while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'-') {
            i += 1;
        }
        if i == name_start {
            continue;
        }
        let name = html[name_start..i].to_ascii_lowercase();
        let mut attrs = Vec::new();
        loop {
            while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b'/') {
                i += 1;
            }
            if i >= b.len() || b[i] == b'>' {
                i += 1;
                break;
            }
            let k0 = i;
            while i < b.len() && !b[i].is_ascii_whitespace() && !matches!(b[i], b'=' | b'>' | b'/')
            {
                i += 1;
            }
            let key = html[k0..i].to_ascii_lowercase();
            while i < b.len() && b[i].is_ascii_whitespace() {
                i += 1;
            }
            let mut value = String::new();
            if i < b.len() && b[i] == b'=' {
                i += 1;
                while i < b.len() && b[i].is_ascii_whitespace() {
                    i += 1;
                }
                if i < b.len() && (b[i] == b'"' || b[i] == b'\'') {
                    let q = b[i];
                    let v0 = i + 1;
                    let v1 = html[v0..]
                        .find(q as char)
                        .map(|e| v0 + e)
                        .unwrap_or(b.len());
                    value = decode_entities(&html[v0..v1]);
                    i = (v1 + 1).min(b.len());
                } else {
                    let v0 = i;
                    while i < b.len() && !b[i].is_ascii_whitespace() && b[i] != b'>' {
                        i += 1;
                    }
                    value = decode_entities(&html[v0..i]);
                }
            }
            if !key.is_empty() {
                attrs.push((key, value));
            }
        }
        let end = i.min(b.len());
        let raw = !closing && (name == "script" || name == "style");
        out.push(Tag {
            name: name.clone(),
            attrs,
            closing,
            start,
            end,
        });
        if raw {
            let close = format!("</{name}");
            i = html[end..]
                .to_ascii_lowercase()
                .find(&close)
                .map(|e| end + e)
                .unwrap_or(b.len());
        }
    }
    out
}

/// A form control.
#[derive(Debug, Clone)]
pub struct Field {
    /// `name`.
    pub name: String,
    /// `value`.
    pub value: String,
    /// `type` (lowercase; `text` by default; `button` for `<button>`).
    pub kind: String,
    /// `checked` present.
    pub checked: bool,
}

/// A `<form>`.
#[derive(Debug, Clone, Default)]
pub struct Form {
    /// `id` or `name`.
    pub id: String,
    /// `action` (raw).
    pub action: String,
    /// `method` (uppercase, GET by default).
    pub method: String,
    /// Inputs.
    pub fields: Vec<Field>,
    /// Submit buttons (`<button>` and `<input type=submit>`) with a name.
    pub buttons: Vec<Field>,
}

/// All forms of a document.
pub fn forms(html: &str) -> Vec<Form> {
    let mut out = Vec::new();
    let mut current: Option<Form> = None;
    for t in tags(html) {
        match (t.name.as_str(), t.closing) {
            ("form", false) => {
                current = Some(Form {
                    id: t.attr("id").or(t.attr("name")).unwrap_or("").to_string(),
                    action: t.attr("action").unwrap_or("").to_string(),
                    method: t.attr("method").unwrap_or("get").to_ascii_uppercase(),
                    ..Form::default()
                });
            }
            ("form", true) => {
                if let Some(f) = current.take() {
                    out.push(f);
                }
            }
            ("input", false) | ("button", false) | ("textarea", false) => {
                let Some(f) = current.as_mut() else { continue };
                let Some(name) = t.attr("name") else { continue };
                let default_kind = if t.name == "button" { "submit" } else { "text" };
                let field = Field {
                    name: name.to_string(),
                    value: t.attr("value").unwrap_or("").to_string(),
                    kind: t.attr("type").unwrap_or(default_kind).to_ascii_lowercase(),
                    checked: t.attrs.iter().any(|(k, _)| k == "checked"),
                };
                if field.kind == "submit" {
                    f.buttons.push(field);
                } else {
                    f.fields.push(field);
                }
            }
            _ => {}
        }
    }
    if let Some(f) = current {
        out.push(f);
    }
    out
}

/// Visible text (tags removed, whitespace collapsed, script/style/title dropped).
pub fn text(html: &str) -> String {
    let ts = tags(html);
    let mut out = String::new();
    let mut pos = 0;
    let mut skip_until: Option<String> = None;
    for t in &ts {
        if skip_until.is_none() && t.start > pos {
            out.push_str(&html[pos..t.start]);
            out.push(' ');
        }
        if let Some(s) = &skip_until {
            if t.closing && &t.name == s {
                skip_until = None;
            }
        } else if !t.closing && matches!(t.name.as_str(), "script" | "style" | "title") {
            skip_until = Some(t.name.clone());
        }
        pos = t.end;
    }
    if pos < html.len() && skip_until.is_none() {
        out.push_str(&html[pos..]);
    }
    decode_entities(&out)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Visible text of the element with this `id` (up to its matching end tag).
pub fn element_text(html: &str, id: &str) -> Option<String> {
    let ts = tags(html);
    let i = ts
        .iter()
        .position(|t| !t.closing && t.attr("id") == Some(id))?;
    let name = ts[i].name.clone();
    let mut depth = 0;
    for t in &ts[i + 1..] {
        if t.name == name {
            if t.closing {
                if depth == 0 {
                    return Some(text(&html[ts[i].end..t.start]));
                }
                depth -= 1;
            } else {
                depth += 1;
            }
        }
    }
    Some(text(&html[ts[i].end..]))
}

/// Whether an element with this `id` exists.
pub fn has_id(html: &str, id: &str) -> bool {
    tags(html)
        .iter()
        .any(|t| !t.closing && t.attr("id") == Some(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_fields_buttons_and_entities_are_read() {
        let h = r#"<html><head><style>a<b{}</style></head><body>
            <form id=f method=post action="/x?a=1&amp;b=2"><input type="hidden" name="ctx" value='a&quot;b'>
            <input name=user><input type=checkbox name=c value=1 checked>
            <button type=submit name=go value=yes>Go</button></form>
            <div id="e">Bad &amp; <b>worse</b></div></body></html>"#;
        let f = &forms(h)[0];
        assert_eq!(f.id, "f");
        assert_eq!(f.method, "POST");
        assert_eq!(f.action, "/x?a=1&b=2");
        assert_eq!(f.fields[0].value, "a\"b");
        assert_eq!(f.fields[1].kind, "text");
        assert!(f.fields[2].checked);
        assert_eq!(f.buttons[0].value, "yes");
        assert_eq!(element_text(h, "e").as_deref(), Some("Bad & worse"));
        assert!(!text(h).contains("a<b"));
    }
}
