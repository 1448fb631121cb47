//! The repository stands alone: every Markdown document that README.md, ARCHITECTURE.md and
//! docs/ name (`docs/DOMAIN.md`, `SECURITY.md`, `docs/MICROSOFT.md#batch`, …) is in the repo, with
//! the heading an anchor names, and none is named by a URL elsewhere.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// GitHub's anchor for a heading: lower case, spaces to `-`, other punctuation dropped.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

fn anchors(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| l.starts_with('#'))
        .map(|l| slug(l.trim_start_matches('#')))
        .collect()
}

/// Each word of `text` that names a Markdown document, with its anchor if any.
fn references(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || "_./#:-".contains(c)))
        .filter(|w| w.contains(".md"))
        .map(|w| w.trim_end_matches(['.', ':']).to_owned())
        .filter(|w| w.contains(".md"))
        .collect()
}

/// What is wrong with the references in `text` (a document at `dir`), as sentences.
fn problems(root: &Path, name: &str, text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for r in references(text) {
        if r.contains("://") {
            out.push(format!("{name}: `{r}` points outside the repo"));
            continue;
        }
        let (file, anchor) = r
            .split_once('#')
            .map_or((r.as_str(), None), |(f, a)| (f, Some(a)));
        let candidates = [root.join(file), root.join("docs").join(file)];
        let Some(path) = candidates.iter().find(|p| p.is_file()) else {
            out.push(format!("{name}: `{r}` is not in the repo"));
            continue;
        };
        if let Some(anchor) = anchor {
            let target = std::fs::read_to_string(path).expect("readable");
            if !anchors(&target).contains(anchor) {
                out.push(format!("{name}: `{r}` names no heading of {file}"));
            }
        }
    }
    out
}

#[test]
fn the_docs_name_only_documents_in_the_repo() {
    let root = root();
    let mut files = vec![root.join("README.md"), root.join("ARCHITECTURE.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .expect("docs/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    docs.sort();
    assert!(docs.len() >= 5, "{docs:?}");
    files.extend(docs);
    let mut all = Vec::new();
    let mut named = 0;
    for f in &files {
        let text = std::fs::read_to_string(f).expect("readable");
        named += references(&text).len();
        all.extend(problems(&root, &f.display().to_string(), &text));
    }
    assert!(all.is_empty(), "{}", all.join("\n"));
    assert!(named > 20, "the scan finds the references ({named})");
}

#[test]
fn the_check_finds_a_missing_document_a_missing_heading_and_a_url() {
    let root = root();
    let text = "See `DESIGN.md` and docs/DOMAIN.md#no-such-heading, \
                https://example.com/brief/SPEC.md; docs/DOMAIN.md#demo-world is fine.";
    let found = problems(&root, "t", text);
    assert_eq!(found.len(), 3, "{found:?}");
    assert!(
        found[0].contains("`DESIGN.md` is not in the repo"),
        "{found:?}"
    );
    assert!(found[1].contains("names no heading"), "{found:?}");
    assert!(found[2].contains("points outside the repo"), "{found:?}");
}
