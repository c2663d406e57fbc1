//! The plugin registry: every [`StiffSystem`], [`TargetTransform`], [`Sampler`] and [`Labeller`]
//! implementation submits one entry with [`inventory`], wherever it lives (this crate, `systems/`, a test
//! file or a downstream crate). The registry is built once into sorted maps (inventory gives no order);
//! a duplicate name panics at start-up, and an unknown name is a typed [`Error::Unknown`] listing the
//! known ones.
//!
//! A plugin's name is written once, in its `#[typetag::serde(name = "...")]` attribute: an entry carries
//! only a constructor and a description, and the registry reads each entry's name from the `type` tag
//! of the default instance it builds (see [`name_of`]), so the registry name and the config name
//! cannot disagree. Names are kebab-case.
//!
//! Register with [`register!`](crate::register) next to the implementation (the type must implement
//! `Default`); the first argument is the kind, one of `system`, `transform`, `sampler`, `labeller`:
//! ```ignore
//! #[typetag::serde(name = "davis-skodje")]
//! impl StiffSystem for DavisSkodje { /* ... */ }
//!
//! stiffx::register!(system, DavisSkodje, "y' = -y, z' = -(z - y/(1+y))/eps");
//! ```

use std::collections::BTreeMap;
use std::sync::OnceLock;

use crate::error::{Error, Result};
use crate::plugins::labeller::Labeller;
use crate::plugins::sampler::Sampler;
use crate::plugins::system::StiffSystem;
use crate::plugins::transform::TargetTransform;

macro_rules! plugin_kind {
    ($entry:ident, $tr:ident, $kind:literal, $map:ident, $make:ident, $names:ident) => {
        #[doc = concat!("Registry entry for a `", stringify!($tr), "` implementation, submitted by ")]
        #[doc = concat!("[`register!`](crate::register)`(", $kind, ", …)`. Its name is the `type` tag of `(make)()`.")]
        pub struct $entry {
            /// One line shown by `stiffx list`.
            pub description: &'static str,
            /// Builds the default-configured instance.
            pub make: fn() -> Box<dyn $tr>,
            /// `file:line` of the registration, for the duplicate-name message.
            pub location: &'static str,
        }
        inventory::collect!($entry);

        fn $map() -> &'static BTreeMap<String, &'static $entry> {
            static MAP: OnceLock<BTreeMap<String, &'static $entry>> = OnceLock::new();
            MAP.get_or_init(|| {
                index(
                    $kind,
                    inventory::iter::<$entry>
                        .into_iter()
                        .map(|e| (tag_of(&*(e.make)(), $kind, e.location), e.location, e)),
                )
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
            $map().keys().cloned().collect()
        }
    };
}

plugin_kind!(SystemEntry, StiffSystem, "system", systems_map, system, system_names);
plugin_kind!(TransformEntry, TargetTransform, "transform", transforms_map, transform, transform_names);
plugin_kind!(SamplerEntry, Sampler, "sampler", samplers_map, sampler, sampler_names);
plugin_kind!(LabellerEntry, Labeller, "labeller", labellers_map, labeller, labeller_names);

/// Sorts registry entries `(name, location, entry)` by name; panics on a duplicate name, naming both
/// registrations.
fn index<E: ?Sized>(
    kind: &str,
    entries: impl IntoIterator<Item = (String, &'static str, &'static E)>,
) -> BTreeMap<String, &'static E> {
    let mut map = BTreeMap::new();
    let mut at: BTreeMap<String, &'static str> = BTreeMap::new();
    for (name, location, e) in entries {
        if let Some(first) = at.insert(name.clone(), location) {
            panic!(
                "two {kind}s are registered under the name `{name}` (at {first} and at {location}); \
                 typetag names must be unique"
            );
        }
        map.insert(name, e);
    }
    map
}

/// The typetag name of a freshly registered plugin; panics (at start-up, when the registry is first
/// used) when the instance does not serialise to an object with a string `type` tag.
fn tag_of<T: serde::Serialize + ?Sized>(plugin: &T, kind: &str, location: &str) -> String {
    match serde_json::to_value(plugin) {
        Ok(v) => match v.get("type").and_then(|t| t.as_str()) {
            Some(name) => name.to_string(),
            None => panic!(
                "the {kind} registered at {location} serialises to {v} without a `type` tag: \
                 is its impl annotated `#[typetag::serde(name = \"...\")]`?"
            ),
        },
        Err(e) => panic!("the {kind} registered at {location} does not serialise: {e}"),
    }
}

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
    /// Registered (= typetag) name.
    pub name: String,
    /// One-line description.
    pub description: &'static str,
}

/// Every registered plugin, grouped by kind (systems, transforms, samplers, labellers), sorted by name.
pub fn list() -> Vec<Listing> {
    fn rows<E>(
        kind: &'static str,
        map: &BTreeMap<String, &'static E>,
        description: impl Fn(&E) -> &'static str,
    ) -> impl Iterator<Item = Listing> {
        map.iter().map(move |(name, e)| Listing { kind, name: name.clone(), description: description(e) })
    }
    rows("system", systems_map(), |e| e.description)
        .chain(rows("transform", transforms_map(), |e| e.description))
        .chain(rows("sampler", samplers_map(), |e| e.description))
        .chain(rows("labeller", labellers_map(), |e| e.description))
        .collect()
}

/// Registers a plugin type under its typetag name: `register!(kind, Type, "description")`, with `kind`
/// one of `system` ([`StiffSystem`]), `transform` ([`TargetTransform`]), `sampler` ([`Sampler`]) or
/// `labeller` ([`Labeller`]). The type must implement `Default`; the name is not repeated here, it is
/// the one in the type's `#[typetag::serde(name = "...")]`.
///
/// ```ignore
/// stiffx::register!(system, MySystem, "one line for `stiffx list`");
/// ```
#[macro_export]
macro_rules! register {
    (system, $ty:ty, $desc:literal $(,)?) => {
        $crate::register!(@entry SystemEntry, $ty, $desc);
    };
    (transform, $ty:ty, $desc:literal $(,)?) => {
        $crate::register!(@entry TransformEntry, $ty, $desc);
    };
    (sampler, $ty:ty, $desc:literal $(,)?) => {
        $crate::register!(@entry SamplerEntry, $ty, $desc);
    };
    (labeller, $ty:ty, $desc:literal $(,)?) => {
        $crate::register!(@entry LabellerEntry, $ty, $desc);
    };
    (@entry $entry:ident, $ty:ty, $desc:literal) => {
        $crate::inventory::submit! {
            $crate::plugins::registry::$entry {
                description: $desc,
                make: || ::std::boxed::Box::new(<$ty as ::std::default::Default>::default()),
                location: ::std::concat!(::std::file!(), ":", ::std::line!()),
            }
        }
    };
    ($kind:ident, $($rest:tt)*) => {
        ::std::compile_error!(::std::concat!(
            "stiffx::register!: unknown plugin kind `",
            ::std::stringify!($kind),
            "`; expected `system`, `transform`, `sampler` or `labeller`, as in ",
            "`register!(system, MySystem, \"description\")`"
        ));
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[should_panic(expected = "two systems are registered under the name `twin` (at a.rs:1 and at b.rs:2)")]
    fn a_duplicate_name_panics_naming_both_registrations() {
        static ENTRY: u8 = 0;
        index("system", [("twin".to_string(), "a.rs:1", &ENTRY), ("twin".to_string(), "b.rs:2", &ENTRY)]);
    }

    #[test]
    fn entries_are_sorted_by_name() {
        static ENTRY: u8 = 0;
        let map = index("system", ["b", "c", "a"].map(|n| (n.to_string(), "x.rs:1", &ENTRY)));
        assert_eq!(map.keys().collect::<Vec<_>>(), ["a", "b", "c"]);
    }

    #[test]
    #[should_panic(expected = "the transform registered at x.rs:1 serialises to 3 without a `type` tag")]
    fn a_plugin_without_a_type_tag_panics() {
        tag_of(&3, "transform", "x.rs:1");
    }
}
