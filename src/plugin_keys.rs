//! Which key of a plugin table a config error is about. Plugin tables (`[system]`, `[sampler]`,
//! `[sampler.base]`, `[labeller]`, `[transform]`) are deserialised through typetag, which buffers the
//! table before it knows the concrete type, so a wrong value inside one is reported by the TOML parser
//! at the table's header only (`line 8: [sampler] invalid type: string, expected i64`). This finds the
//! key: the table alone is deserialised again as its plugin type, and again with one key left out at a
//! time (every plugin's fields have defaults); the key whose removal makes it parse is the culprit. A
//! culprit that is itself a plugin table (`sampler.base`) is searched in turn.

use serde::de::DeserializeOwned;
use toml::{Table, Value};

use crate::plugins::labeller::Labeller;
use crate::plugins::sampler::Sampler;
use crate::plugins::system::StiffSystem;
use crate::plugins::transform::TargetTransform;

/// The full path and line of the key at fault in the config `text` (`sampler.base.dt`, line 14), when
/// a plugin table holds one; `None` when no plugin table is at fault or the key cannot be singled out.
pub fn culprit(text: &str) -> Option<(String, Option<usize>)> {
    let doc: Table = toml::from_str(text).ok()?;
    let path = find(&doc, "system", parses::<Box<dyn StiffSystem>>)
        .or_else(|| find(&doc, "sampler", parses::<Box<dyn Sampler>>))
        .or_else(|| find(&doc, "labeller", parses::<Box<dyn Labeller>>))
        .or_else(|| find(&doc, "transform", parses::<Box<dyn TargetTransform>>))?;
    let line = line_of(text, &path);
    Some((path, line))
}

fn parses<T: DeserializeOwned>(t: &Table) -> bool {
    T::deserialize(Value::Table(t.clone())).is_ok()
}

/// The culprit key under `doc[name]`, as a dotted path from the top.
fn find(doc: &Table, name: &str, ok: fn(&Table) -> bool) -> Option<String> {
    let table = doc.get(name)?.as_table()?;
    culprit_in(table, name, ok)
}

fn culprit_in(table: &Table, path: &str, ok: fn(&Table) -> bool) -> Option<String> {
    if ok(table) {
        return None;
    }
    for key in table.keys().filter(|k| *k != "type") {
        let mut rest = table.clone();
        let value = rest.remove(key)?;
        if ok(&rest) {
            let here = format!("{path}.{key}");
            // A nested sampler (the cloud's `base`) names its own bad key.
            if let Value::Table(inner) = &value
                && inner.contains_key("type")
                && let Some(deeper) = culprit_in(inner, &here, parses::<Box<dyn Sampler>>)
            {
                return Some(deeper);
            }
            // An array of samplers (the union's `parts`): the first that does not parse, then its key.
            if let Value::Array(items) = &value {
                for (i, item) in items.iter().enumerate() {
                    if let Value::Table(inner) = item
                        && inner.contains_key("type")
                        && !parses::<Box<dyn Sampler>>(inner)
                    {
                        let at = format!("{here}[{i}]");
                        return Some(culprit_in(inner, &at, parses::<Box<dyn Sampler>>).unwrap_or(at));
                    }
                }
            }
            return Some(here);
        }
    }
    None
}

/// The 1-based line of `path` (`sampler.base.dt`) in `text`: the first `dt = …` in the table that
/// path names, before the next header. Headers are resolved as TOML reads them: the n-th
/// `[[sampler.parts]]` opens `sampler.parts[n]`, and a later `[sampler.parts.base]` is the `base`
/// of that element (`sampler.parts[n].base`). `None` when the key is not on a line of its own (an
/// inline table): the key is still named.
fn line_of(text: &str, path: &str) -> Option<usize> {
    let (table, key) = path.rsplit_once('.')?;
    // Arrays of tables seen so far (their resolved paths) and how many elements each has.
    let mut counts: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let mut current: Option<String> = None;
    for (i, line) in text.lines().enumerate() {
        let l = line.trim();
        if l.starts_with('[') {
            let header = l.split('#').next().map(str::trim).unwrap_or_default();
            current = if let Some(name) = header.strip_prefix("[[").and_then(|h| h.strip_suffix("]]")) {
                let array = resolve(name, &counts);
                let n = counts.entry(array.clone()).or_insert(0);
                *n += 1;
                Some(format!("{array}[{}]", *n - 1))
            } else {
                header.strip_prefix('[').and_then(|h| h.strip_suffix(']')).map(|name| resolve(name, &counts))
            };
        } else if current.as_deref() == Some(table)
            && l.split('=').next().map(str::trim) == Some(key)
            && l.contains('=')
        {
            return Some(i + 1);
        }
    }
    None
}

/// A header's dotted name with the current element's index after every array of tables it passes
/// through (`sampler.parts.base` → `sampler.parts[1].base` after two `[[sampler.parts]]`); the last
/// segment gets none (a new element's index is the caller's).
fn resolve(name: &str, counts: &std::collections::HashMap<String, usize>) -> String {
    let segments: Vec<&str> = name.split('.').map(str::trim).collect();
    let mut out = String::new();
    for (k, seg) in segments.iter().enumerate() {
        if k > 0 {
            out.push('.');
        }
        out.push_str(seg);
        if k + 1 < segments.len()
            && let Some(&n) = counts.get(&out)
        {
            out.push_str(&format!("[{}]", n - 1));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_key_and_its_line_in_nested_plugin_tables() {
        let text = "seed = 1\n[system]\ntype = \"davis-skodje\"\n[sampler]\ntype = \"cloud\"\nk = 2\n[sampler.base]\ntype = \"trajectory\"\ndt = \"small\"\n";
        assert_eq!(culprit(text), Some(("sampler.base.dt".into(), Some(9))));
        let text = "[system]\ntype = \"davis-skodje\"\ny0_min = [1]\n[sampler]\ntype = \"cloud\"\nk = 2\n";
        assert_eq!(culprit(text), Some(("system.y0_min".into(), Some(3))));
        let text = "[transform]\ntype = \"asinh\"\nquantile = \"half\"\n";
        assert_eq!(culprit(text), Some(("transform.quantile".into(), Some(3))));
        assert_eq!(culprit("[system]\ntype = \"davis-skodje\"\n"), None);
        // The second part of a union inside a cloud: the part's index and the key's line.
        let text = "[sampler]\ntype = \"cloud\"\n[sampler.base]\ntype = \"union\"\n[[sampler.base.parts]]\ntype = \"trajectory\"\ndt = 0.1\n[[sampler.base.parts]]\ntype = \"trajectory\"\ndt = \"small\"\n";
        assert_eq!(culprit(text), Some(("sampler.base.parts[1].dt".into(), Some(10))));
        let text = "[sampler]\ntype = \"union\"\n[[sampler.parts]]\ntype = \"trajectory\"\nper_eps = 2\nhorizon = []\n";
        assert_eq!(culprit(text), Some(("sampler.parts[0].horizon".into(), Some(6))));
        // A table inside an array element: a cloud as a union's second part, its base's key.
        let text = "[sampler]\ntype = \"union\"\n[[sampler.parts]]\ntype = \"cloud\"\nk = 2\n[sampler.parts.base]\ntype = \"trajectory\"\ndt = 0.2\n[[sampler.parts]]\ntype = \"cloud\"\n[sampler.parts.base]\ntype = \"trajectory\"\ndt = \"small\"\n";
        assert_eq!(culprit(text), Some(("sampler.parts[1].base.dt".into(), Some(13))));
        assert_eq!(line_of(text, "sampler.parts[0].base.dt"), Some(8));
        assert_eq!(line_of(text, "sampler.parts[0].k"), Some(5));
        // An inline table has no line of its own for the key.
        let text = "[sampler]\ntype = \"cloud\"\nbase = { type = \"trajectory\", dt = \"small\" }\n";
        assert_eq!(culprit(text), Some(("sampler.base.dt".into(), None)));
    }
}
