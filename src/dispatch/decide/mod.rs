//! The dispatcher's decisions, without I/O: what to send next, what an answer means for each
//! recipient, when to retry, pause or replay, and what to count. Plain functions and small
//! state machines over plain data: no tokio, no store, no metrics registry, no clients, no
//! clock (callers pass `now` and elapsed times in). Only `crate::domain` and `crate::wire` are
//! imported, and nothing from the async shell around it (`dispatch`), which calls in one way.

pub mod answers;
pub mod call;
pub mod gauges;
pub mod parts;
pub mod replay;
pub mod retry;
pub mod schedule;
pub mod texting;

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// The promise of this module's doc, checked on its source: no path into the shell, the
    /// runtime, the store, the metrics or the upstream clients. (Crate paths are written one
    /// module a line here, so a plain prefix check reads them all.)
    #[test]
    fn the_core_imports_only_the_domain_and_the_wire() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/dispatch/decide");
        let files: Vec<_> =
            std::fs::read_dir(&dir).expect("the decide folder").map(|e| e.expect("an entry").path()).collect();
        let stems: Vec<String> =
            files.iter().filter_map(|p| p.file_stem()).map(|s| s.to_string_lossy().into_owned()).collect();
        let prefix = ["crate", "::"].concat();
        // From a test module, `super::super::` is this folder; only its own files may follow.
        let up_two = ["super::", "super::"].concat();
        let mut checked = 0;
        for path in &files {
            let text = std::fs::read_to_string(path).expect("a readable source file");
            let code = text.lines().filter(|l| !l.trim_start().starts_with("//"));
            for line in code {
                for (at, _) in line.match_indices(prefix.as_str()) {
                    let rest = &line[at + prefix.len()..];
                    let allowed = rest.starts_with("domain") || rest.starts_with("wire");
                    assert!(allowed, "{} reaches beyond the domain and the wire: {line}", path.display());
                }
                for (at, _) in line.match_indices(up_two.as_str()) {
                    let rest = &line[at + up_two.len()..];
                    let inside = stems.iter().any(|s| rest.starts_with(s.as_str()));
                    assert!(inside, "{} reaches the shell: {line}", path.display());
                }
                for banned in [["tok", "io"].concat(), ["gover", "nor"].concat()] {
                    assert!(!line.contains(banned.as_str()), "{} uses {banned}: {line}", path.display());
                }
            }
            checked += 1;
        }
        assert!(checked >= 8, "every file of the core is read");
    }
}
