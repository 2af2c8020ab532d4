//! The README's map of the code cannot go stale (issue 23, item 8; issue 22): every path and
//! identifier named in backticks in "Where a change goes" exists in `src/`, the source tree
//! under "Development" lists exactly the entries of `src/`, the binaries it names are exactly
//! Cargo.toml's, and the test count it states ("over N") is one the code exceeds.

use std::collections::BTreeSet;
use std::path::Path;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn readme() -> String {
    std::fs::read_to_string(root().join("README.md")).unwrap()
}

/// The text from the line starting with `start` to the next line starting with `#`.
fn section(text: &str, start: &str) -> String {
    let from = text.find(start).unwrap_or_else(|| panic!("README has no `{start}`"));
    let rest = &text[from..];
    let end = rest.find("\n#").unwrap_or(rest.len());
    rest[..end].to_owned()
}

/// Every `backticked` token of `text`.
fn backticked(text: &str) -> Vec<String> {
    text.split('`').skip(1).step_by(2).map(str::to_owned).collect()
}

/// All of `src/`'s Rust text, one string.
fn source() -> String {
    fn walk(dir: &Path, out: &mut String) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push_str(&std::fs::read_to_string(&path).unwrap());
                out.push('\n');
            }
        }
    }
    let mut out = String::new();
    walk(&root().join("src"), &mut out);
    out
}

fn is_identifier(word: &str) -> bool {
    let mut chars = word.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Whether `name` is declared in `source`: an item, a module, or an enum variant (a line that
/// starts with it).
fn declared(source: &str, name: &str) -> bool {
    let items = ["fn", "struct", "enum", "trait", "const", "type", "mod", "static"];
    source.lines().any(|line| {
        let line = line.trim_start();
        let line = line
            .strip_prefix("pub(crate) ")
            .or_else(|| line.strip_prefix("pub "))
            .unwrap_or(line);
        let line = line.strip_prefix("async ").unwrap_or(line);
        let item = items.iter().any(|kind| {
            line.strip_prefix(kind)
                .and_then(|rest| rest.strip_prefix(' '))
                .is_some_and(|rest| {
                    rest.starts_with(name) && !rest[name.len()..].starts_with(|c: char| c.is_alphanumeric() || c == '_')
                })
        });
        let variant = line.starts_with(name)
            && line[name.len()..].starts_with(['(', ',', ' ', '{'])
            && name.starts_with(|c: char| c.is_ascii_uppercase());
        item || variant
    })
}

/// Why `token` is not on the map, or `None` when it is (or is not a code reference at all).
fn missing(token: &str, source: &str) -> Option<String> {
    if token.starts_with("src/") {
        return (!root().join(token.trim_end_matches('/')).exists()).then(|| format!("no file `{token}`"));
    }
    let segments: Vec<&str> = token.split("::").collect();
    if !segments.iter().all(|s| is_identifier(s)) {
        return None;
    }
    let absent: Vec<&str> = segments.iter().copied().filter(|s| !declared(source, s)).collect();
    (!absent.is_empty()).then(|| format!("`{token}`: {} not declared in src/", absent.join(", ")))
}

#[test]
fn every_backticked_name_in_where_a_change_goes_exists() {
    let map = section(&readme(), "**Where a change goes.**");
    let source = source();
    let tokens = backticked(&map);
    assert!(tokens.len() >= 15, "the section names the code it maps: {tokens:?}");
    let stale: Vec<String> = tokens.iter().filter_map(|t| missing(t, &source)).collect();
    assert!(
        stale.is_empty(),
        "README's \"Where a change goes\" is stale:\n{}",
        stale.join("\n")
    );
}

#[test]
fn the_development_tree_lists_exactly_what_src_holds() {
    let development = section(&readme(), "## Development");
    let block = development.split("```").nth(1).expect("a code block with the tree");
    // Top-level entries of the tree's `src/` part: lines indented by two spaces.
    let listed: BTreeSet<String> = block
        .lines()
        .skip_while(|line| !line.starts_with("src/"))
        .skip(1)
        .take_while(|line| line.starts_with(' '))
        .filter(|line| line.starts_with("  ") && !line.starts_with("   "))
        .flat_map(|line| line.split_whitespace().next())
        .map(|name| name.trim_end_matches('/').to_owned())
        .collect();
    let present: BTreeSet<String> = std::fs::read_dir(root().join("src"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let unlisted: Vec<&String> = present.difference(&listed).collect();
    let gone: Vec<&String> = listed.difference(&present).collect();
    assert!(
        unlisted.is_empty() && gone.is_empty(),
        "README's source tree is stale: in src/ but not listed {unlisted:?}; listed but not in src/ {gone:?}"
    );
}

/// The sentence naming the binaries names exactly Cargo.toml's `[[bin]]` targets, in words and
/// in backticks.
#[test]
fn the_binaries_named_are_exactly_cargos() {
    let readme = readme();
    let from = readme.find("thin binaries").expect("README names its thin binaries");
    let sentence = &readme[from..from + readme[from..].find('.').unwrap()];
    let named: BTreeSet<String> = backticked(sentence).into_iter().collect();
    let manifest = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    let built: BTreeSet<String> = manifest
        .split("[[bin]]")
        .skip(1)
        .filter_map(|table| table.lines().find_map(|l| l.strip_prefix("name = ")))
        .map(|name| name.trim_matches('"').to_owned())
        .collect();
    assert_eq!(named, built, "README: {sentence}");
    let words = ["one", "two", "three", "four", "five", "six"];
    let before = &readme[..from];
    let count = before.split_whitespace().last().unwrap_or_default();
    assert_eq!(
        words.iter().position(|w| *w == count).map(|i| i + 1),
        Some(built.len()),
        "\"{count} thin binaries\""
    );
}

/// Test functions in `dir`'s Rust files: `#[test]` and `#[tokio::test]` attributes.
fn test_functions(dir: &Path) -> usize {
    let mut count = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            count += test_functions(&path);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            count += text
                .lines()
                .map(str::trim_start)
                .filter(|line| line.starts_with("#[test]") || line.starts_with("#[tokio::test"))
                .count();
        }
    }
    count
}

/// "The suite has over N tests": the code holds more than N test functions, a lower bound of
/// what `cargo test` runs (generated cases and doc tests add to them), and not twice N, so the
/// number is raised as the suite grows.
#[test]
fn the_stated_test_count_is_one_the_code_exceeds() {
    let readme = readme();
    let stated = readme
        .split("The suite has over ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse::<usize>().ok())
        .expect("README states \"The suite has over N tests\"");
    let counted = test_functions(&root().join("src")) + test_functions(&root().join("tests"));
    assert!(
        counted > stated,
        "README says over {stated} tests; the code holds {counted}"
    );
    assert!(
        counted < stated * 2,
        "README's \"over {stated}\" is far below {counted}: raise it"
    );
}

#[test]
fn the_checks_themselves_catch_a_stale_name() {
    let source = "pub(crate) fn process() {}\nenum Plan {\n    Send(Target),\n}\nmod segment;\n";
    assert_eq!(missing("Plan::Send", source), None);
    assert_eq!(missing("segment::process", source), None);
    assert!(missing("select", source).is_some());
    assert!(missing("Plan::Hold", source).is_some());
    assert!(missing("src/no_such_file.rs", source).is_some());
    assert_eq!(missing("/v1/batch", source), None, "not a code reference");
}
