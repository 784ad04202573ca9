//! Just enough YAML writing for a readable, commented Envoy bootstrap.

/// Builds a YAML document line by line; `depth` is the indentation in steps of two spaces.
#[derive(Default)]
pub struct Yaml {
    out: String,
}

impl Yaml {
    pub fn line(&mut self, depth: usize, text: impl AsRef<str>) {
        for _ in 0..depth {
            self.out.push_str("  ");
        }
        self.out.push_str(text.as_ref());
        self.out.push('\n');
    }

    /// One `# ...` line per line of `text`.
    pub fn comment(&mut self, depth: usize, text: impl AsRef<str>) {
        for line in text.as_ref().lines() {
            let line = comment_safe(line);
            if line.is_empty() {
                self.line(depth, "#");
            } else {
                self.line(depth, format!("# {line}"));
            }
        }
    }

    pub fn blank(&mut self) {
        self.out.push('\n');
    }

    pub fn finish(self) -> String {
        self.out
    }
}

/// A YAML double-quoted scalar. JSON string escaping is a subset of YAML's double-quoted
/// escapes, so the JSON encoding of a string is a valid YAML scalar with the same value.
pub fn quote(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

/// Keeps a comment on its line: control characters would end it or corrupt the file.
fn comment_safe(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect::<String>()
        .trim_end()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_scalars_escape_what_yaml_needs() {
        assert_eq!(quote("plain"), "\"plain\"");
        assert_eq!(quote("a\"b\\c\nd"), "\"a\\\"b\\\\c\\nd\"");
        assert_eq!(quote("{\"k\": 1}"), "\"{\\\"k\\\": 1}\"");
    }

    #[test]
    fn comments_cannot_break_out_of_their_line() {
        let mut y = Yaml::default();
        y.comment(1, "one\ntwo\u{7}three\n\nfour");
        assert_eq!(y.finish(), "  # one\n  # two?three\n  #\n  # four\n");
    }
}
