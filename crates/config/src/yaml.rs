//! Where things are in a scenario file's text: the dotted field path of a line, the line of a
//! field path, and serde-saphyr's messages made readable. Used to name file, line and field in
//! every error.

/// saphyr's message without its snippet (we print file:line ourselves).
pub(crate) fn first_line_of(msg: &str) -> String {
    msg.lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with("-->") && !l.starts_with('|'))
        .unwrap_or(msg)
        .trim_start_matches("error: ")
        .to_string()
}

/// saphyr's message without its own `line L column C: ` (we print file:line), followed by the
/// value written at that place, when there is one: `invalid u64 (got `-3`)`.
pub(crate) fn with_value(text: &str, line: u64, column: u64, message: &str) -> String {
    let message = match message.split_once(": ") {
        Some((pos, rest)) if pos.starts_with("line ") && pos.contains(" column ") => rest,
        _ => message,
    };
    let value = (line > 0 && column > 0)
        .then(|| text.lines().nth(line as usize - 1))
        .flatten()
        .map(|l| {
            let from: String = l.chars().skip(column as usize - 1).collect();
            let end = from
                .find([',', '}', ']'])
                .unwrap_or(from.len())
                .min(from.find(" #").unwrap_or(from.len()));
            from[..end].trim().to_string()
        })
        .unwrap_or_default();
    if value.is_empty()
        || value.chars().count() > 40
        || value.ends_with(':')
        || value.contains(": ")
        || message.contains(&format!("`{value}`"))
    {
        message.to_string()
    } else {
        format!("{message} (got `{value}`)")
    }
}

/// The dotted path of the key on `line` (1-based) of a block-style YAML text, e.g.
/// `scenarios[1].load.rate` (on a line with no key of its own: the innermost key or item open
/// there); empty for line 0 or past the end.
pub fn field_at(text: &str, line: u64) -> String {
    let mut found = String::new();
    walk_keys(text, |n, path| {
        if n as u64 == line {
            found = path.to_string();
        }
        (n as u64) < line
    });
    found
}

/// The first line (1-based) whose key has the dotted path `path` (as [`field_at`] names it),
/// for values whose line the parser does not keep; `None` when no line holds it (e.g. a key
/// inside a `{…}` flow mapping).
pub fn line_of(text: &str, path: &str) -> Option<u64> {
    let mut found = None;
    walk_keys(text, |n, p| {
        if p == path {
            found = Some(n as u64);
            return false;
        }
        true
    });
    found
}

/// Calls `f(line, path)` for every line (1-based), in order, until `f` returns false: `path`
/// is the key or sequence item the line opens, else the innermost one open before it.
fn walk_keys(text: &str, mut f: impl FnMut(usize, &str) -> bool) {
    // Walk the lines, keeping a stack of (indent, segment, item index): a segment is a key, or
    // a sequence item (`index` set).
    let mut stack: Vec<(usize, String, Option<usize>)> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let content = raw.split(" #").next().unwrap_or("");
        let trimmed = content.trim_start();
        if !(trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with("---")) {
            push_line(&mut stack, content.len() - trimmed.len(), trimmed);
        }
        let mut path = String::new();
        for (_, seg, _) in &stack {
            if !seg.starts_with('[') && !path.is_empty() {
                path.push('.');
            }
            path.push_str(seg);
        }
        if !f(i + 1, &path) {
            return;
        }
    }
}

/// Updates the stack of open keys and items with one non-blank line.
fn push_line(stack: &mut Vec<(usize, String, Option<usize>)>, mut indent: usize, trimmed: &str) {
    let mut rest = trimmed;
    // `- ` opens the next item of the sequence at this indent (item 0 of a new one).
    while let Some(after) = rest
        .strip_prefix("- ")
        .or_else(|| (rest == "-").then_some(""))
    {
        while stack.last().is_some_and(|(i, _, _)| *i > indent) {
            stack.pop();
        }
        let n = match stack.last() {
            Some((i, _, Some(n))) if *i == indent => {
                let n = n + 1;
                stack.pop();
                n
            }
            _ => 0,
        };
        stack.push((indent, format!("[{n}]"), Some(n)));
        let skipped = rest.len() - after.len();
        let after_trim = after.trim_start();
        indent += skipped + (after.len() - after_trim.len());
        rest = after_trim;
    }
    let Some((k, _)) = rest.split_once(':') else {
        return;
    };
    if k.is_empty() || k.starts_with('{') || k.starts_with('[') {
        return;
    }
    let k = k.trim().trim_matches('"').trim_matches('\'').to_string();
    while stack.last().is_some_and(|(i, _, _)| *i >= indent) {
        stack.pop();
    }
    stack.push((indent, k, None));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_paths_follow_indentation_and_sequences() {
        let text = "\
targets:
  - name: a
    url: http://x
scenarios:
  - name: one
    load:
      rate: 5
  - name: two
    load:
      stages:
        - duration: 1s
          rate: 3
        - duration: 2s
          rate: -1
    thresholds:
      - ttft.p95 < 1s
";
        assert_eq!(field_at(text, 2), "targets[0].name");
        assert_eq!(field_at(text, 3), "targets[0].url");
        assert_eq!(field_at(text, 7), "scenarios[0].load.rate");
        assert_eq!(field_at(text, 8), "scenarios[1].name");
        assert_eq!(field_at(text, 12), "scenarios[1].load.stages[0].rate");
        assert_eq!(field_at(text, 14), "scenarios[1].load.stages[1].rate");
        assert_eq!(field_at(text, 15), "scenarios[1].thresholds");
        assert_eq!(field_at(text, 16), "scenarios[1].thresholds[0]");
        assert_eq!(field_at(text, 0), "");
    }
}
