//! Code fingerprints: a stage's cache key changes when the code that could change its output
//! changes.
//!
//! The fingerprint of a stage binary `B` is blake3 over the sorted (path, content) pairs of
//! `Cargo.toml`, `build.rs` and every file under `src/` of the crate `crates/B` and, transitively,
//! of every workspace crate it depends on (`[dependencies]`, `[build-dependencies]` and
//! target-specific dependencies that are path dependencies, directly or through the root
//! `[workspace.dependencies]`). Tests, benches and dev-dependencies are not part of it: they do
//! not end up in the binary.
//!
//! A `.rs` file's content is its token stream (comments, doc comments and layout left out: they
//! cannot change what the binary computes), so fixing a comment or running `cargo fmt` on a
//! crate whose layout already follows rustfmt leaves every key, including the training runs'; any
//! other file's content is its bytes. (rustfmt can also reorder imports and add braces or
//! commas, which do change tokens: keep the tree formatted, as CI checks.)
//!
//! Not part of it, on purpose: `Cargo.lock` and the root `Cargo.toml`. Both change whenever any
//! crate adds or bumps an external dependency, and including them would invalidate every cached
//! training run for edits that cannot affect most stages. The price: upgrading an external crate
//! whose numerics matter (candle, gemm) does not invalidate results by itself; bump
//! `key::KEY_SCHEME` or delete the affected records (`icl gc` after removing the stage) then.

use anyhow::{bail, Context};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

/// Fingerprints for the crates of one workspace, memoized per binary.
pub struct Fingerprinter {
    workspace: PathBuf,
    /// `[workspace.dependencies]` entries that are path dependencies: name -> crate folder.
    ws_paths: BTreeMap<String, PathBuf>,
    cache: HashMap<String, String>,
}

impl Fingerprinter {
    pub fn new(workspace: &Path) -> anyhow::Result<Self> {
        let workspace = &canon(workspace);
        let root_toml = workspace.join("Cargo.toml");
        let text = std::fs::read_to_string(&root_toml).with_context(|| {
            format!("cannot read the workspace manifest {}", root_toml.display())
        })?;
        let doc: toml::Table = toml::from_str(&text)
            .with_context(|| format!("invalid TOML in {}", root_toml.display()))?;
        let mut ws_paths = BTreeMap::new();
        if let Some(deps) = doc
            .get("workspace")
            .and_then(|w| w.get("dependencies"))
            .and_then(|d| d.as_table())
        {
            for (name, spec) in deps {
                if let Some(p) = spec.get("path").and_then(|p| p.as_str()) {
                    ws_paths.insert(name.clone(), workspace.join(p));
                }
            }
        }
        Ok(Self {
            workspace: workspace.to_path_buf(),
            ws_paths,
            cache: HashMap::new(),
        })
    }

    pub fn workspace(&self) -> &Path {
        &self.workspace
    }

    /// The crate folder of a stage binary.
    pub fn crate_dir(&self, bin: &str) -> PathBuf {
        self.workspace.join("crates").join(bin)
    }

    /// Fingerprint of binary `bin` (crate `crates/<bin>` plus its workspace dependencies).
    pub fn fingerprint(&mut self, bin: &str) -> anyhow::Result<String> {
        if let Some(h) = self.cache.get(bin) {
            return Ok(h.clone());
        }
        let dir = self.crate_dir(bin);
        if !dir.join("Cargo.toml").is_file() {
            bail!(
                "no crate for binary `{bin}`: {} does not exist",
                dir.join("Cargo.toml").display()
            );
        }
        let crates = self.closure(&dir)?;
        let mut files: Vec<(String, PathBuf)> = Vec::new();
        for c in &crates {
            for f in crate_files(c)? {
                let rel = f.strip_prefix(&self.workspace).unwrap_or(&f);
                let rel = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/");
                files.push((rel, f));
            }
        }
        files.sort();
        let mut h = blake3::Hasher::new();
        for (rel, path) in &files {
            let bytes =
                std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
            let bytes = code_content(path, bytes);
            // Length-prefixed so that no two different file sets hash the same stream.
            h.update(&(rel.len() as u64).to_le_bytes());
            h.update(rel.as_bytes());
            h.update(&(bytes.len() as u64).to_le_bytes());
            h.update(&bytes);
        }
        let hex = h.finalize().to_hex().to_string();
        self.cache.insert(bin.to_string(), hex.clone());
        Ok(hex)
    }

    /// The crate and every workspace crate it depends on, transitively (sorted, canonical paths).
    fn closure(&self, start: &Path) -> anyhow::Result<BTreeSet<PathBuf>> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![canon(start)];
        while let Some(dir) = todo.pop() {
            if !seen.insert(dir.clone()) {
                continue;
            }
            for dep in self.workspace_deps(&dir)? {
                todo.push(canon(&dep));
            }
        }
        Ok(seen)
    }

    fn workspace_deps(&self, crate_dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
        let manifest = crate_dir.join("Cargo.toml");
        let text = std::fs::read_to_string(&manifest)
            .with_context(|| format!("cannot read {}", manifest.display()))?;
        let doc: toml::Table = toml::from_str(&text)
            .with_context(|| format!("invalid TOML in {}", manifest.display()))?;
        let mut tables: Vec<&toml::Table> = Vec::new();
        for key in ["dependencies", "build-dependencies"] {
            if let Some(t) = doc.get(key).and_then(|t| t.as_table()) {
                tables.push(t);
            }
        }
        if let Some(targets) = doc.get("target").and_then(|t| t.as_table()) {
            for (_, spec) in targets {
                for key in ["dependencies", "build-dependencies"] {
                    if let Some(t) = spec.get(key).and_then(|t| t.as_table()) {
                        tables.push(t);
                    }
                }
            }
        }
        let mut out = Vec::new();
        for t in tables {
            for (name, spec) in t {
                if let Some(p) = spec.get("path").and_then(|p| p.as_str()) {
                    out.push(crate_dir.join(p));
                } else if spec.get("workspace").and_then(|w| w.as_bool()) == Some(true) {
                    // A renamed dependency (`x = { package = "y", workspace = true }`) is keyed by x.
                    if let Some(p) = self.ws_paths.get(name) {
                        out.push(p.clone());
                    }
                }
            }
        }
        Ok(out)
    }
}

fn canon(p: &Path) -> PathBuf {
    p.canonicalize().unwrap_or_else(|_| p.to_path_buf())
}

/// `Cargo.toml`, `build.rs` and `src/**` of one crate.
fn crate_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for f in ["Cargo.toml", "build.rs"] {
        let p = dir.join(f);
        if p.is_file() {
            out.push(p);
        }
    }
    out.extend(icl_store::store::list_files(&dir.join("src"))?);
    Ok(out)
}

/// What a file contributes to a fingerprint: a `.rs` file that parses, its tokens without
/// comments and doc attributes, written one canonical way; anything else, its bytes.
fn code_content(path: &Path, bytes: Vec<u8>) -> Vec<u8> {
    if path.extension().is_some_and(|e| e == "rs") {
        if let Some(ts) = std::str::from_utf8(&bytes)
            .ok()
            .and_then(|t| t.parse::<proc_macro2::TokenStream>().ok())
        {
            let mut out = String::new();
            write_tokens(ts, &mut out);
            return out.into_bytes();
        }
    }
    bytes
}

/// Tokens with their spacing (`a && b` and `a & &b` differ), one space after each word.
fn write_tokens(ts: proc_macro2::TokenStream, out: &mut String) {
    use proc_macro2::{Delimiter, Spacing, TokenTree};
    let toks: Vec<TokenTree> = ts.into_iter().collect();
    let mut i = 0;
    while i < toks.len() {
        if let Some(n) = doc_attribute_len(&toks[i..]) {
            i += n;
            continue;
        }
        match &toks[i] {
            TokenTree::Group(g) => {
                let (open, close) = match g.delimiter() {
                    Delimiter::Parenthesis => ("(", ")"),
                    Delimiter::Brace => ("{", "}"),
                    Delimiter::Bracket => ("[", "]"),
                    Delimiter::None => ("", ""),
                };
                out.push_str(open);
                write_tokens(g.stream(), out);
                out.push_str(close);
            }
            TokenTree::Punct(p) => {
                out.push(p.as_char());
                if p.spacing() == Spacing::Alone {
                    out.push(' ');
                }
            }
            TokenTree::Ident(x) => {
                out.push_str(&x.to_string());
                out.push(' ');
            }
            TokenTree::Literal(l) => {
                out.push_str(&l.to_string());
                out.push(' ');
            }
        }
        i += 1;
    }
}

/// Tokens taken by a doc attribute at the start of `t` (`///` and `//!` comments arrive as
/// `#[doc = "..."]` and `#![doc = "..."]`): 2 or 3, or None.
fn doc_attribute_len(t: &[proc_macro2::TokenTree]) -> Option<usize> {
    use proc_macro2::{Delimiter, TokenTree};
    let TokenTree::Punct(hash) = t.first()? else {
        return None;
    };
    if hash.as_char() != '#' {
        return None;
    }
    let k = match t.get(1)? {
        TokenTree::Punct(b) if b.as_char() == '!' => 2,
        _ => 1,
    };
    let TokenTree::Group(g) = t.get(k)? else {
        return None;
    };
    let is_doc = g.delimiter() == Delimiter::Bracket
        && matches!(g.stream().into_iter().next(), Some(TokenTree::Ident(id)) if id == "doc");
    is_doc.then_some(k + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn write(p: &Path, s: &str) {
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, s).unwrap();
    }

    fn ws() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        write(&r.join("Cargo.toml"), "[workspace]\nmembers = [\"crates/*\"]\n[workspace.dependencies]\nlib-a = { path = \"crates/lib-a\" }\nserde = \"1\"\n");
        write(&r.join("crates/bin-x/Cargo.toml"), "[package]\nname = \"bin-x\"\n[dependencies]\nlib-a.workspace = true\nserde.workspace = true\n[dev-dependencies]\nlib-t = { path = \"../lib-t\" }\n");
        write(&r.join("crates/bin-x/src/main.rs"), "fn main() {}\n");
        write(&r.join("crates/bin-x/tests/t.rs"), "// test\n");
        write(
            &r.join("crates/lib-a/Cargo.toml"),
            "[package]\nname = \"lib-a\"\n[dependencies]\nlib-b = { path = \"../lib-b\" }\n",
        );
        write(&r.join("crates/lib-a/src/lib.rs"), "pub fn a() {}\n");
        write(
            &r.join("crates/lib-b/Cargo.toml"),
            "[package]\nname = \"lib-b\"\n",
        );
        write(&r.join("crates/lib-b/src/deep/mod.rs"), "pub fn b() {}\n");
        write(
            &r.join("crates/lib-t/Cargo.toml"),
            "[package]\nname = \"lib-t\"\n",
        );
        write(&r.join("crates/lib-t/src/lib.rs"), "\n");
        write(
            &r.join("crates/other/Cargo.toml"),
            "[package]\nname = \"other\"\n",
        );
        d
    }

    fn fp(r: &Path) -> String {
        Fingerprinter::new(r).unwrap().fingerprint("bin-x").unwrap()
    }

    #[test]
    fn transitive_workspace_sources_count_and_nothing_else() {
        let d = ws();
        let r = d.path();
        let base = fp(r);
        assert_eq!(base, fp(r));
        // Unrelated files: tests, dev-dependencies, other crates, the lock file, the root manifest.
        write(&r.join("crates/bin-x/tests/t.rs"), "// changed\n");
        write(&r.join("crates/lib-t/src/lib.rs"), "// changed\n");
        write(&r.join("crates/other/src/lib.rs"), "// new\n");
        write(&r.join("Cargo.lock"), "# lock\n");
        assert_eq!(fp(r), base);
        // A transitive dependency's nested source file does count.
        write(
            &r.join("crates/lib-b/src/deep/mod.rs"),
            "pub fn b() -> u8 { 0 }\n",
        );
        let b2 = fp(r);
        assert_ne!(b2, base);
        write(&r.join("crates/lib-b/src/deep/new.rs"), "\n");
        assert_ne!(fp(r), b2);
        write(&r.join("crates/bin-x/build.rs"), "fn main() {}\n");
        assert_ne!(fp(r), b2);
        assert!(Fingerprinter::new(r).unwrap().fingerprint("nope").is_err());
    }

    /// Copy the real workspace's manifests and `src/` trees (what fingerprints read).
    fn copy_workspace(to: &Path) {
        // Read at run time: cargo reuses a workspace member's test binary across clones that
        // share one target dir, so a path baked in at compile time can name another clone.
        let manifest = std::env::var_os("CARGO_MANIFEST_DIR")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into());
        let root = manifest.join("../..");
        fs::copy(root.join("Cargo.toml"), to.join("Cargo.toml")).unwrap();
        fn copy_dir(from: &Path, to: &Path) {
            fs::create_dir_all(to).unwrap();
            for e in fs::read_dir(from).unwrap() {
                let e = e.unwrap();
                if e.file_type().unwrap().is_dir() {
                    copy_dir(&e.path(), &to.join(e.file_name()));
                } else {
                    fs::copy(e.path(), to.join(e.file_name())).unwrap();
                }
            }
        }
        for e in fs::read_dir(root.join("crates")).unwrap() {
            let dir = e.unwrap().path();
            let to = to.join("crates").join(dir.file_name().unwrap());
            fs::create_dir_all(&to).unwrap();
            fs::copy(dir.join("Cargo.toml"), to.join("Cargo.toml")).unwrap();
            copy_dir(&dir.join("src"), &to.join("src"));
        }
    }

    /// The claim crates are leaves over `icl-claim`: editing a transition claim (C1, in
    /// icl-eval) changes only icl-eval's fingerprint, so the theory (icl-fit-nu) and transience
    /// (icl-transience) claim tasks stay cached, and so do training and the report. Editing the
    /// claim library reruns every claim.
    #[test]
    fn editing_a_transition_claim_leaves_the_other_claim_families_cached() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        copy_workspace(r);
        let bins = [
            "icl-eval",
            "icl-fit-nu",
            "icl-transience",
            "icl-report",
            "icl-train",
            "icl-datagen",
        ];
        let all = |r: &Path| -> Vec<String> {
            let mut f = Fingerprinter::new(r).unwrap();
            bins.iter().map(|b| f.fingerprint(b).unwrap()).collect()
        };
        let before = all(r);
        let c1 = r.join("crates/icl-eval/src/c1.rs");
        let text = fs::read_to_string(&c1).unwrap();
        fs::write(&c1, format!("{text}\nconst _AN_EDIT_TO_C1: u8 = 0;\n")).unwrap();
        let after = all(r);
        assert_ne!(after[0], before[0], "icl-eval (C1, C2, C7, C8, C9) reruns");
        for i in 1..bins.len() {
            assert_eq!(after[i], before[i], "{} must stay cached", bins[i]);
        }
        let lib = r.join("crates/icl-claim/src/stats.rs");
        let text = fs::read_to_string(&lib).unwrap();
        fs::write(
            &lib,
            format!("{text}\nconst _AN_EDIT_TO_THE_LIBRARY: u8 = 0;\n"),
        )
        .unwrap();
        let lib_edit = all(r);
        for i in 0..3 {
            assert_ne!(lib_edit[i], after[i], "{} reads icl-claim", bins[i]);
        }
        assert_eq!(
            lib_edit[4..],
            after[4..],
            "training and data generation do not"
        );
        // A comment (or doc comment) fixed in the training code reruns nothing.
        let train = r.join("crates/icl-train/src/lib.rs");
        let text = fs::read_to_string(&train).unwrap();
        fs::write(
            &train,
            format!("//! A corrected doc line.\n{text}\n// and a note\n"),
        )
        .unwrap();
        assert_eq!(all(r), lib_edit, "comments are not code");
    }

    #[test]
    fn comments_and_layout_do_not_count_code_does() {
        let c = |s: &str| code_content(Path::new("x.rs"), s.as_bytes().to_vec());
        let base = c("//! Crate docs.\nfn f(a: u32) -> u32 { a && b }\n");
        // Comments, doc comments (inner and outer), blank lines, indentation, line breaks.
        let same = "//! Other docs.\n\n/// f.\n#[doc = \"more\"]\nfn f(\n    a: u32, // why\n) -> u32 {\n    /* block */ a && b\n}\n";
        assert_ne!(base, c(same), "a trailing comma is a token");
        let same = "//! Other docs.\n\n/// f.\n#[doc = \"more\"]\nfn f(\n    a: u32 // why\n) -> u32 {\n    /* block */ a && b\n}\n";
        assert_eq!(base, c(same));
        // Code: an operator's spacing, a literal, a name, an attribute other than doc.
        for other in [
            "fn f(a: u32) -> u32 { a & &b }",
            "fn f(a: u32) -> u32 { a && c }",
            "fn f(a: u64) -> u32 { a && b }",
            "#[inline] fn f(a: u32) -> u32 { a && b }",
            "fn f(a: u32) -> u32 { a && b; }",
        ] {
            assert_ne!(base, c(other), "{other}");
        }
        // A string literal keeps its exact text, and non-Rust files count byte for byte.
        assert_ne!(c(r#"fn f() { g("a  b") }"#), c(r#"fn f() { g("a b") }"#));
        let toml = |s: &str| code_content(Path::new("Cargo.toml"), s.as_bytes().to_vec());
        assert_ne!(toml("a = 1\n"), toml("a = 1 # c\n"));
    }
}
