//! Embed every file under `package/` (the marketing models) into the binary: writes
//! `$OUT_DIR/package_files.rs`, a list of (path relative to `package/`, `include_str!`).

use std::path::Path;

fn walk(dir: &Path, root: &Path, out: &mut Vec<String>) {
    let mut entries: Vec<_> =
        std::fs::read_dir(dir).expect("package/ is readable").map(|e| e.expect("entry").path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            walk(&path, root, out);
        } else {
            let rel = path.strip_prefix(root).expect("under package/").to_string_lossy().replace('\\', "/");
            out.push(format!("    ({rel:?}, include_str!({:?})),\n", path.display().to_string()));
        }
    }
}

fn main() {
    // Read when the script runs (not baked in when it compiles): a target directory shared between
    // checkouts must embed the package of the checkout being built.
    let root = Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR")).join("package");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut files = Vec::new();
    walk(&root, &root, &mut files);
    let code = format!("/// The package's files: path relative to the package root, contents.\npub const FILES: &[(&str, &str)] = &[\n{}];\n", files.concat());
    let out = Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("package_files.rs");
    std::fs::write(out, code).expect("write package_files.rs");
}
