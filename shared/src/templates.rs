//! The built-in templates: every file under `shared/templates/`, embedded at
//! compile time (a new file needs no code; cargo does not see a new file by
//! itself, so `touch shared/src/templates.rs` or a clean build picks it up),
//! and the template ids a policy step may name without a `TEMPLATE_DIR`.

use include_dir::{include_dir, Dir, DirEntry};

static TEMPLATE_DIR: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/templates");

/// Template ids with a built-in copy in every locale.
pub const BUILT_IN_TEMPLATES: &[&str] = &[
    "pre_due",
    "due_today",
    "overdue",
    "final_notice",
    "promise_broken",
];

/// Every embedded template as (path under `templates/` with `/` separators, source).
pub fn sources() -> Vec<(String, &'static str)> {
    fn walk(dir: &'static Dir<'static>, out: &mut Vec<(String, &'static str)>) {
        for entry in dir.entries() {
            match entry {
                DirEntry::Dir(d) => walk(d, out),
                DirEntry::File(f) => {
                    if let Some(text) = f.contents_utf8() {
                        let name = f.path().to_string_lossy().replace('\\', "/");
                        out.push((name, text));
                    }
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(&TEMPLATE_DIR, &mut out);
    out.sort();
    out
}
