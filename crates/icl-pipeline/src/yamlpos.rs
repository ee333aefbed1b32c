//! Find the line of a key path in YAML text, so that errors found after parsing (semantic checks,
//! a stage binary's `check`) can point at the line the value came from.
//!
//! serde_yaml keeps no spans, so this is a small indentation-aware scanner: block mappings are
//! followed by indentation, and once a key's value is an inline flow mapping (`{a: 1, b: 2}`) the
//! remaining keys are looked up on that same line. When a key cannot be found, the deepest
//! ancestor that was found is returned (still the right neighbourhood).

/// 1-based line and column.
pub type Pos = (usize, usize);

pub struct YamlText<'a> {
    lines: Vec<&'a str>,
}

impl<'a> YamlText<'a> {
    pub fn new(text: &'a str) -> Self {
        Self {
            lines: text.lines().collect(),
        }
    }

    /// Position of the deepest key of `path` that exists (`(1, 1)` if none does).
    pub fn locate<S: AsRef<str>>(&self, path: &[S]) -> Pos {
        let mut best: Pos = (1, 1);
        let (mut lo, mut hi) = (0usize, self.lines.len());
        let mut parent_indent: isize = -1;
        for (depth, seg) in path.iter().enumerate() {
            let seg = seg.as_ref();
            let mut child_indent: Option<usize> = None;
            let mut found = None;
            for i in lo..hi {
                let line = self.lines[i];
                let content = line.trim_start();
                if content.is_empty() || content.starts_with('#') {
                    continue;
                }
                let ind = line.len() - content.len();
                if (ind as isize) <= parent_indent {
                    break;
                }
                let ci = *child_indent.get_or_insert(ind);
                if ind == ci {
                    if let Some(after) = key_match(content, seg) {
                        found = Some((i, ind, ind + content.len() - after.len()));
                        break;
                    }
                }
            }
            let Some((i, ind, value_col)) = found else {
                return best;
            };
            best = (i + 1, ind + 1);
            let rest = &self.lines[i][value_col..];
            let rest_trim = rest.trim_start();
            if !rest_trim.is_empty() && !rest_trim.starts_with('#') {
                // Inline value: look for the remaining keys in the flow text of this line.
                let mut from = value_col;
                for seg2 in &path[depth + 1..] {
                    match flow_key(self.lines[i], from, seg2.as_ref()) {
                        Some((col, next)) => {
                            best = (i + 1, col + 1);
                            from = next;
                        }
                        None => break,
                    }
                }
                return best;
            }
            // Block value: the child block runs until the next line indented <= this key.
            lo = i + 1;
            hi = (lo..self.lines.len())
                .find(|&j| {
                    let l = self.lines[j];
                    let c = l.trim_start();
                    !c.is_empty() && !c.starts_with('#') && l.len() - c.len() <= ind
                })
                .unwrap_or(self.lines.len());
            parent_indent = ind as isize;
        }
        best
    }
}

/// If `content` starts with the mapping key `seg` (plain or quoted) followed by `:`, return the
/// text after the colon.
fn key_match<'b>(content: &'b str, seg: &str) -> Option<&'b str> {
    for (open, close) in [("", ""), ("\"", "\""), ("'", "'")] {
        let Some(rest) = content.strip_prefix(open) else {
            continue;
        };
        let Some(rest) = rest.strip_prefix(seg) else {
            continue;
        };
        let Some(rest) = rest.strip_prefix(close) else {
            continue;
        };
        let rest = rest.trim_start_matches(' ');
        if let Some(after) = rest.strip_prefix(':') {
            if after.is_empty() || after.starts_with(' ') || after.starts_with('\t') {
                return Some(after);
            }
        }
    }
    None
}

/// Find `seg:` as a flow-mapping key in `line` at or after byte `from` (preceded by `{`, `,` or
/// whitespace). Returns the key's column (0-based) and the byte offset after its colon.
fn flow_key(line: &str, from: usize, seg: &str) -> Option<(usize, usize)> {
    let bytes = line.as_bytes();
    let mut start = from;
    while let Some(off) = line.get(start..)?.find(seg) {
        let at = start + off;
        let before_ok = at == 0 || matches!(bytes[at - 1], b'{' | b',' | b' ' | b'"' | b'\'');
        let after = &line[at + seg.len()..];
        let after_trim = after
            .trim_start_matches(['"', '\''])
            .trim_start_matches(' ');
        if before_ok && after_trim.starts_with(':') {
            let colon = line.len() - after_trim.len();
            return Some((at, colon + 1));
        }
        start = at + seg.len();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const Y: &str = "version: 1
stages:
  items:
    bin: icl-datagen   # comment
    params: {D: 63, data_seed: 1}
    matrix:
      K: [1000, 2000]
  train:
    bin: icl-train
    params:
      lr: 0.01
      model: {width: 512, depth: 2}
profiles:
  ci:
    stages:
      train: {params: {lr: -1}}
";

    #[test]
    fn block_and_flow_keys() {
        let y = YamlText::new(Y);
        assert_eq!(y.locate(&["version"]), (1, 1));
        assert_eq!(y.locate(&["stages", "items", "bin"]), (4, 5));
        assert_eq!(
            y.locate(&["stages", "items", "params", "data_seed"]),
            (5, 21)
        );
        assert_eq!(y.locate(&["stages", "items", "params", "D"]), (5, 14));
        assert_eq!(y.locate(&["stages", "items", "matrix", "K"]), (7, 7));
        assert_eq!(y.locate(&["stages", "train", "params", "lr"]), (11, 7));
        assert_eq!(
            y.locate(&["stages", "train", "params", "model", "depth"]),
            (12, 27)
        );
        assert_eq!(
            y.locate(&["profiles", "ci", "stages", "train", "params", "lr"]),
            (16, 24)
        );
    }

    #[test]
    fn missing_keys_fall_back_to_the_deepest_ancestor() {
        let y = YamlText::new(Y);
        assert_eq!(y.locate(&["stages", "train", "params", "nope"]), (10, 5));
        assert_eq!(y.locate(&["stages", "nope", "x"]), (2, 1));
        // `bin` of train must not be found inside items.
        assert_eq!(y.locate(&["stages", "train", "bin"]), (9, 5));
        assert_eq!(y.locate(&["nothing"]), (1, 1));
    }
}
