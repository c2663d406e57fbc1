//! Built-in stiff systems, one file each. `build.rs` includes every `*.rs` file of this folder (except
//! this one), so adding a system is adding a file: it registers itself with
//! [`register_system!`](crate::register_system).

include!(concat!(env!("OUT_DIR"), "/systems_gen.rs"));
