//! The plugin registry: every [`StiffSystem`], [`TargetTransform`], [`Sampler`] and [`Labeller`]
//! implementation submits one entry with [`inventory`], wherever it lives (this crate, `systems/`, a test
//! file or a downstream crate). The registry is built once into sorted maps (inventory gives no order);
//! a duplicate name panics at start-up, and an unknown name is a typed [`Error::Unknown`] listing the
//! known ones. Registry names are kebab-case and equal the `typetag` names used in configs.
//!
//! Register with the `register_*!` macros next to the implementation:
//! ```ignore
//! stiffx::register_system!(DavisSkodje, "davis-skodje", "y' = -y, z' = -(z - y/(1+y))/eps");
//! ```

use std::collections::BTreeMap;
use std::sync::OnceLock;

use crate::error::{Error, Result};
use crate::labeller::Labeller;
use crate::sampler::Sampler;
use crate::system::StiffSystem;
use crate::transform::TargetTransform;

macro_rules! plugin_kind {
    ($entry:ident, $tr:ident, $kind:literal, $map:ident, $make:ident, $names:ident) => {
        #[doc = concat!("Registry entry for a `", stringify!($tr), "` implementation.")]
        pub struct $entry {
            /// Kebab-case name, equal to the typetag name.
            pub name: &'static str,
            /// One line shown by `stiffx list`.
            pub description: &'static str,
            /// Builds the default-configured instance.
            pub make: fn() -> Box<dyn $tr>,
        }
        inventory::collect!($entry);

        fn $map() -> &'static BTreeMap<&'static str, &'static $entry> {
            static MAP: OnceLock<BTreeMap<&'static str, &'static $entry>> = OnceLock::new();
            MAP.get_or_init(|| {
                let mut map = BTreeMap::new();
                for e in inventory::iter::<$entry> {
                    if map.insert(e.name, e).is_some() {
                        panic!("two {}s are registered under the name `{}`", $kind, e.name);
                    }
                }
                map
            })
        }

        #[doc = concat!("Builds the default `", $kind, "` registered under `name`.")]
        pub fn $make(name: &str) -> Result<Box<dyn $tr>> {
            $map().get(name).map(|e| (e.make)()).ok_or_else(|| Error::Unknown {
                kind: $kind,
                name: name.to_string(),
                known: $names(),
            })
        }

        #[doc = concat!("Every registered `", $kind, "` name, sorted.")]
        pub fn $names() -> Vec<String> {
            $map().keys().map(|s| s.to_string()).collect()
        }
    };
}

plugin_kind!(SystemEntry, StiffSystem, "system", systems_map, system, system_names);
plugin_kind!(TransformEntry, TargetTransform, "transform", transforms_map, transform, transform_names);
plugin_kind!(SamplerEntry, Sampler, "sampler", samplers_map, sampler, sampler_names);
plugin_kind!(LabellerEntry, Labeller, "labeller", labellers_map, labeller, labeller_names);

/// The registry (= typetag) name of a plugin instance, read from its serialised `type` tag.
pub fn name_of<T: serde::Serialize + ?Sized>(plugin: &T) -> String {
    serde_json::to_value(plugin)
        .ok()
        .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(String::from))
        .unwrap_or_else(|| "?".into())
}

/// One row of `stiffx list`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Listing {
    /// Plugin kind.
    pub kind: &'static str,
    /// Registered name.
    pub name: &'static str,
    /// One-line description.
    pub description: &'static str,
}

/// Every registered plugin, grouped by kind (systems, transforms, samplers, labellers), sorted by name.
pub fn list() -> Vec<Listing> {
    let mut out = Vec::new();
    for e in systems_map().values() {
        out.push(Listing { kind: "system", name: e.name, description: e.description });
    }
    for e in transforms_map().values() {
        out.push(Listing { kind: "transform", name: e.name, description: e.description });
    }
    for e in samplers_map().values() {
        out.push(Listing { kind: "sampler", name: e.name, description: e.description });
    }
    for e in labellers_map().values() {
        out.push(Listing { kind: "labeller", name: e.name, description: e.description });
    }
    out
}

/// Registers a [`StiffSystem`] type (must implement `Default`) under a kebab-case name.
#[macro_export]
macro_rules! register_system {
    ($ty:ty, $name:literal, $desc:literal) => {
        $crate::inventory::submit! {
            $crate::registry::SystemEntry { name: $name, description: $desc, make: || ::std::boxed::Box::new(<$ty>::default()) }
        }
    };
}

/// Registers a [`TargetTransform`] type (must implement `Default`) under a kebab-case name.
#[macro_export]
macro_rules! register_transform {
    ($ty:ty, $name:literal, $desc:literal) => {
        $crate::inventory::submit! {
            $crate::registry::TransformEntry { name: $name, description: $desc, make: || ::std::boxed::Box::new(<$ty>::default()) }
        }
    };
}

/// Registers a [`Sampler`] type (must implement `Default`) under a kebab-case name.
#[macro_export]
macro_rules! register_sampler {
    ($ty:ty, $name:literal, $desc:literal) => {
        $crate::inventory::submit! {
            $crate::registry::SamplerEntry { name: $name, description: $desc, make: || ::std::boxed::Box::new(<$ty>::default()) }
        }
    };
}

/// Registers a [`Labeller`] type (must implement `Default`) under a kebab-case name.
#[macro_export]
macro_rules! register_labeller {
    ($ty:ty, $name:literal, $desc:literal) => {
        $crate::inventory::submit! {
            $crate::registry::LabellerEntry { name: $name, description: $desc, make: || ::std::boxed::Box::new(<$ty>::default()) }
        }
    };
}
