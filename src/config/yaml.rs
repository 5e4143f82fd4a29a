//! YAML text: deserializing it, bounding its nesting, and finding the line of a key path in
//! it. This is the only file that names serde_yaml; the web configuration goes through it too.

use super::Invalid;

/// Deserializes YAML text: the one place that names serde_yaml. An empty text is an empty
/// mapping. The error names the key path and the line.
///
/// # Errors
///
/// serde_yaml's message, with a repeated top-level key placed at its repeat, and a value of
/// the wrong type said in plain words (as [`from_yaml_described`] says it, knowing no key).
pub fn from_yaml<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, Invalid> {
    from_yaml_described(text, |_| None)
}

/// [`from_yaml`], with `expects` saying what a key path takes (list indices written `[]`, as
/// `associations[].filters[].key`) in the words of the file's reference, for the error about a
/// value of the wrong type: `api.max_in_flight: expected a whole number from 1 to 64, got -5`.
/// Keys it does not know get serde's expectation in plain words.
///
/// # Errors
///
/// As [`from_yaml`].
pub(crate) fn from_yaml_described<T: serde::de::DeserializeOwned>(
    text: &str,
    expects: impl Fn(&str) -> Option<String>,
) -> Result<T, Invalid> {
    flow_depth(text)?;
    let parsed = if text.trim().is_empty() {
        serde_yaml::from_str("{}")
    } else {
        serde_yaml::from_str(text)
    };
    parsed.map_err(|e| {
        let message = e.to_string();
        if let Some(invalid) = wrong_type(&message, &expects) {
            return invalid.on_line(e.location().map(|l| l.line()));
        }
        // serde_yaml places a repeated top-level key at the first key of the file, or nowhere;
        // the second occurrence is the culprit.
        let repeated = message
            .strip_prefix("duplicate field `")
            .and_then(|m| m.split_once('`'))
            .map(|(key, _)| key);
        let second = repeated.and_then(|key| {
            text.lines()
                .enumerate()
                .filter(|(_, l)| l.starts_with(&format!("{key}:")))
                .nth(1)
                .map(|(i, _)| (key, i + 1))
        });
        if let Some((key, line)) = second {
            return Invalid::of(key, "repeated").on_line(Some(line));
        }
        // serde_yaml gives no position for an unknown key on a file's first line.
        let unknown = message
            .strip_prefix("unknown field `")
            .and_then(|m| m.split_once('`'))
            .map(|(key, _)| key);
        match unknown {
            Some(key) if !message.contains(" at line ") => {
                let line = locate(text, key);
                Invalid::new(message).on_line(line)
            }
            _ => Invalid::new(message),
        }
    })
}

/// serde's `{path}: invalid type: {got}, expected {type}` (or `invalid value`, the path left
/// out at the top level, a position after it) as `{path}: expected {what}, got {got}`, both in
/// plain words: serde's are Rust's (`usize`, `struct RawApi`, `sequence`).
fn wrong_type(message: &str, expects: &dyn Fn(&str) -> Option<String>) -> Option<Invalid> {
    let (path, rest) = ["invalid type: ", "invalid value: "]
        .into_iter()
        .find_map(|kind| match message.strip_prefix(kind) {
            Some(rest) => Some(("", rest)),
            None => message.split_once(&format!(": {kind}")),
        })?;
    // The value, quoted by serde, may hold anything; what follows it is serde's own.
    let rest = rest.rsplit_once(" at line ").map_or(rest, |(r, _)| r);
    let (got, wanted) = rest.rsplit_once(", expected ")?;
    // `associations[2].filters[0].key` → `associations[].filters[].key`
    let mut key = String::with_capacity(path.len());
    let mut in_index = false;
    for c in path.chars() {
        match c {
            '[' => in_index = true,
            ']' => in_index = false,
            _ if in_index => continue,
            _ => {}
        }
        key.push(c);
    }
    let wanted = expects(&key).unwrap_or_else(|| plain_type(wanted).to_owned());
    let message = format!("expected {wanted}, got {}", plain_value(got));
    Some(if path.is_empty() {
        Invalid::new(message)
    } else {
        Invalid::of(path, message)
    })
}

/// A type as serde names it, in words; an `expecting` of our own is in words already.
fn plain_type(wanted: &str) -> &str {
    match wanted {
        "u8" | "u16" | "u32" | "u64" | "usize" => "a whole number (0 or more)",
        "i8" | "i16" | "i32" | "i64" | "isize" => "a whole number",
        "f32" | "f64" => "a number",
        "a string" | "a character" => "text",
        "a boolean" => "true or false",
        "a sequence" => "a list",
        "a map" => "a mapping",
        w if w.starts_with("struct ") => "a mapping",
        w => w,
    }
}

/// An unexpected value as serde shows it (`integer `-5``, `string "fast"`, `sequence`), in words.
fn plain_value(got: &str) -> String {
    for kind in ["integer ", "floating point ", "boolean ", "character "] {
        if let Some(value) = got.strip_prefix(kind) {
            return value.trim_matches('`').to_owned();
        }
    }
    if let Some(value) = got.strip_prefix("string ") {
        return value.to_owned();
    }
    match got {
        "sequence" => "a list".to_owned(),
        "map" => "a mapping".to_owned(),
        "unit value" => "nothing".to_owned(),
        other => other.to_owned(),
    }
}

/// How deep flow collections (`[…]`, `{…}`) may nest: no file of ours needs more than three
/// levels, and serde_yaml's parser takes time quadratic in the depth before its own recursion
/// limit refuses the text (16 s for 100,000 levels).
pub const MAX_FLOW_DEPTH: usize = 32;

/// Refuses text whose flow collections nest deeper than [`MAX_FLOW_DEPTH`], in one pass.
/// Brackets in quoted scalars and comments do not count, nor, outside a flow collection, those
/// where no node can start (`name_prefix: a[1`). Block nesting needs no check here: serde_yaml's
/// recursion limit refuses it in linear time.
fn flow_depth(text: &str) -> Result<(), Invalid> {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut line = 1usize;
    // The byte before, and the last one that is not a space (`\n` at a line's start): where a
    // node can start. Every byte looked at is ASCII, which UTF-8 never uses inside a character.
    let mut raw = b'\n';
    let mut token = b'\n';
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let after_space = matches!(raw, b' ' | b'\t' | b'\n');
        let node_starts = if depth > 0 {
            matches!(token, b'\n' | b'[' | b'{' | b',' | b':' | b'?')
        } else {
            after_space && matches!(token, b'\n' | b':' | b'-' | b'?')
        };
        match b {
            b'\n' => {
                line += 1;
                token = b'\n';
            }
            b'#' if after_space => {
                while i + 1 < bytes.len() && bytes[i + 1] != b'\n' {
                    i += 1;
                }
            }
            b'\'' | b'"' if node_starts => {
                // A quoted scalar runs to its closing quote, over lines if need be; `''` is a
                // quote inside single quotes, a backslash escapes inside double ones.
                i += 1;
                while i < bytes.len() {
                    match bytes[i] {
                        b'\n' => line += 1,
                        b'\\' if b == b'"' => {
                            if bytes.get(i + 1) == Some(&b'\n') {
                                line += 1;
                            }
                            i += 1;
                        }
                        q if q == b => {
                            if b == b'\'' && bytes.get(i + 1) == Some(&b'\'') {
                                i += 1;
                            } else {
                                break;
                            }
                        }
                        _ => {}
                    }
                    i += 1;
                }
                token = b;
            }
            b'[' | b'{' if node_starts => {
                depth += 1;
                if depth > MAX_FLOW_DEPTH {
                    return Err(Invalid::new(format!(
                        "flow collections ([ and {{) nest deeper than {MAX_FLOW_DEPTH} levels"
                    ))
                    .on_line(Some(line)));
                }
                token = b;
            }
            b']' | b'}' if depth > 0 => {
                depth -= 1;
                token = b;
            }
            b' ' | b'\t' | b'\r' => {}
            _ => token = b,
        }
        raw = bytes.get(i).copied().unwrap_or(b);
        i += 1;
    }
    Ok(())
}

/// The 1-based line of a key path such as `associations[2].filters[1].value` in block-style
/// YAML (flow-style entries are found when each sits on its own line). serde_yaml reports no
/// position for values that fail our checks, so the text is read again to find one.
pub(crate) fn locate(text: &str, path: &str) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let mut range = 0..lines.len();
    let mut found = None;
    for (n, part) in path.split('.').enumerate() {
        let (key, index) = match part.split_once('[') {
            Some((key, rest)) => (key, Some(rest.trim_end_matches(']').parse::<usize>().ok()?)),
            None => (part, None),
        };
        // A path starts at a top-level key: `region` is not `associations[0].region`.
        let (at, indent) = if n == 0 {
            let mut start = range.start;
            loop {
                let (at, indent) = find_key(&lines, start..range.end, key)?;
                if indent == 0 {
                    break (at, indent);
                }
                start = at + 1;
            }
        } else {
            find_key(&lines, range.clone(), key)?
        };
        let end = (at + 1..range.end)
            .find(|&i| {
                let (depth, content) = split_indent(lines[i]);
                !content.is_empty()
                    && !content.starts_with('#')
                    && (depth < indent || (depth == indent && !content.starts_with('-')))
            })
            .unwrap_or(range.end);
        found = Some(at);
        range = at..end;
        if let Some(index) = index {
            let items = list_items(&lines, at + 1..end);
            let start = *items.get(index)?;
            found = Some(start);
            range = start..items.get(index + 1).copied().unwrap_or(end);
        }
    }
    found.map(|i| i + 1)
}

/// The first line in `range` that holds `key:` (a comment never does), and the column where
/// the key starts, which is the indentation of the key's block.
fn find_key(lines: &[&str], range: std::ops::Range<usize>, key: &str) -> Option<(usize, usize)> {
    let wanted = format!("{key}:");
    range.into_iter().find_map(|i| {
        let (depth, content) = split_indent(lines[i]);
        if content.starts_with('#') {
            return None;
        }
        let unlisted = content.trim_start_matches(['-', ' ']);
        if unlisted.starts_with(&wanted) {
            return Some((i, depth + content.len() - unlisted.len()));
        }
        // A flow mapping: `{ key: Status, value: "" }`.
        [
            format!("{{{wanted}"),
            format!("{{ {wanted}"),
            format!(", {wanted}"),
            format!(",{wanted}"),
        ]
        .iter()
        .any(|p| content.contains(p.as_str()))
        .then_some((i, depth))
    })
}

/// Lines in `range` that start a list item, at the outermost list's indentation.
fn list_items(lines: &[&str], range: std::ops::Range<usize>) -> Vec<usize> {
    let dashes: Vec<(usize, usize)> = range
        .filter_map(|i| {
            let (depth, content) = split_indent(lines[i]);
            (content == "-" || content.starts_with("- ")).then_some((i, depth))
        })
        .collect();
    let outer = dashes.iter().map(|(_, d)| *d).min().unwrap_or(0);
    dashes
        .into_iter()
        .filter(|(_, d)| *d == outer)
        .map(|(i, _)| i)
        .collect()
}

fn split_indent(line: &str) -> (usize, &str) {
    let content = line.trim_start_matches(' ');
    (line.len() - content.len(), content.trim_end())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::parse;

    #[test]
    fn flow_nesting_is_bounded_in_linear_time() {
        let deep = format!("associations: {}\n", "[".repeat(100_000));
        let started = std::time::Instant::now();
        assert_eq!(
            parse(&deep).map_err(|e| e.to_string()),
            Err("flow collections ([ and {) nest deeper than 32 levels at line 1".to_owned())
        );
        // Block nesting is serde_yaml's to refuse, and it does so as quickly.
        let block = format!("associations:\n{}x\n", "- ".repeat(100_000));
        assert_eq!(
            from_yaml::<serde_yaml::Value>(&block)
                .map(|_| ())
                .map_err(|e| e.to_string()),
            Err("recursion limit exceeded at line 2 column 255".to_owned())
        );
        let elapsed = started.elapsed();
        assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
        // Brackets in quoted scalars, comments and plain scalars do not nest.
        let many = "[".repeat(40);
        for text in [
            format!("discovery:\n  name_prefix: \"{many}\"\n"),
            format!("discovery:\n  name_prefix: '{many}'\n"),
            format!("discovery:\n  name_prefix: 'it''s {many}'\n"),
            format!("# {many}\ndiscovery:\n  name_prefix: x # {many}\n"),
            format!("discovery:\n  name_prefix: a{many}\n"),
            format!("discovery: {{ name_prefix: \"a\\\"{many}\" }}\n"),
        ] {
            assert!(parse(&text).is_ok(), "{text}");
        }
        let nested = format!(
            "discovery: {{name_prefix: x}}\nassociations: {}{}\n",
            "[".repeat(32),
            "]".repeat(32)
        );
        assert_eq!(from_yaml::<serde_yaml::Value>(&nested).map(|_| ()), Ok(()));
    }
}
