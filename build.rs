//! Includes every `systems/*.rs` file as a module of `stiffx::systems`, so that a new system is one
//! new file and nothing else.

use std::fs;
use std::path::Path;

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("systems");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut names: Vec<String> = fs::read_dir(&dir)
        .expect("systems/ exists")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".rs") && n != "mod.rs")
        .collect();
    names.sort();
    let mut out = String::new();
    for n in &names {
        let stem = n.trim_end_matches(".rs");
        println!("cargo:rerun-if-changed={}", dir.join(n).display());
        out.push_str(&format!("#[path = {:?}]\npub mod {};\n", dir.join(n).display().to_string(), stem));
    }
    let out_dir = std::env::var("OUT_DIR").expect("OUT_DIR is set by cargo");
    fs::write(Path::new(&out_dir).join("systems_gen.rs"), out).expect("OUT_DIR is writable");
}
