//! Built-in stiff systems, one file each. `build.rs` lists every `*.rs` file of this folder (except
//! this one) and each becomes a public module here, so adding a system is adding a file: it registers
//! itself with [`register!`](crate::register)`(system, …)`.
//!
//! Only module names come from the build script (`for_each_system!`); the `mod` items are written
//! here, so rustc finds the files next to this one, in whichever checkout is being compiled.

include!(concat!(env!("OUT_DIR"), "/systems_list.rs"));

macro_rules! declare_systems {
    ($($name:ident),* $(,)?) => {
        $(pub mod $name;)*
    };
}

for_each_system!(declare_systems);
