//! Property test of validation (issue 24): every numeric value of every shipped config, replaced by
//! hostile and by seeded random values, goes through parsing and [`Config::validate`] only; none may
//! panic or abort, NaN and infinities in a float field are always refused naming that field, and a
//! sample of the same edits through `stiffx run --check` exits 0 or 2 and writes nothing.
//!
//! The `proptest` crate is not available offline on the development machine, so the generator is a
//! seeded xorshift over a fixed list of edge values plus log-uniform values of both signs: the same
//! cases every run, a failure names the config, the field and the value.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use stiffx::config::Config;
use toml::Value;

/// A numeric leaf of a TOML document: its dotted path (`sampler.base.dt`, `system.train_eps[1]`)
/// and how to reach it.
#[derive(Clone, Debug)]
struct Leaf {
    path: String,
    steps: Vec<Step>,
    float: bool,
}

#[derive(Clone, Debug)]
enum Step {
    Key(String),
    Index(usize),
}

fn leaves(v: &Value, path: &str, steps: &mut Vec<Step>, out: &mut Vec<Leaf>) {
    match v {
        Value::Integer(_) | Value::Float(_) => {
            out.push(Leaf { path: path.to_string(), steps: steps.clone(), float: matches!(v, Value::Float(_)) })
        }
        Value::Table(t) => {
            for (k, x) in t {
                steps.push(Step::Key(k.clone()));
                let p = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                leaves(x, &p, steps, out);
                steps.pop();
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                steps.push(Step::Index(i));
                leaves(x, &format!("{path}[{i}]"), steps, out);
                steps.pop();
            }
        }
        _ => {}
    }
}

fn set(doc: &mut Value, steps: &[Step], to: Value) {
    let mut at = doc;
    for s in steps {
        at = match s {
            Step::Key(k) => at.get_mut(k.as_str()).unwrap(),
            Step::Index(i) => at.get_mut(*i).unwrap(),
        };
    }
    *at = to;
}

/// Values no field should choke on: edges of the number line and of the integer types.
fn edge_values() -> Vec<Value> {
    let mut v: Vec<Value> =
        [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 0.0, -0.0, -1.0, 1e-300, -1e-300, 1e300, -1e300]
            .into_iter()
            .map(Value::Float)
            .collect();
    v.extend([0, -1, 1, i64::MAX, i64::MIN, 1 << 40, u32::MAX as i64 + 1].map(Value::Integer));
    v
}

/// A seeded xorshift: random values of both signs, log-uniform over 1e-12 … 1e15, as float or integer.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn value(&mut self, float: bool) -> Value {
        let u = (self.next() % 1_000_000) as f64 / 1e6;
        let sign = if self.next().is_multiple_of(4) { -1.0 } else { 1.0 };
        let x = sign * 10f64.powf(-12.0 + 27.0 * u);
        if float { Value::Float(x) } else { Value::Integer(x.clamp(-9e18, 9e18) as i64) }
    }
}

/// Parses and validates `text`; `Err(message)` when it panicked.
fn check(text: &str) -> Result<stiffx::error::Result<()>, String> {
    catch_unwind(AssertUnwindSafe(|| Config::from_toml(text).and_then(|c| c.validate()))).map_err(|p| {
        p.downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default()
    })
}

fn shipped() -> Vec<(String, Value)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs");
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    files
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .filter_map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            // Experiment specs (compare, sweep grids) are not run configs; keep the run configs. Each
            // is written back out resolved, so that every field (defaults included) is there to edit.
            matches!(check(&text), Ok(Ok(()))).then(|| {
                let full = Config::from_toml(&text).unwrap().to_toml();
                (p.file_name().unwrap().to_string_lossy().into_owned(), Value::Table(toml::from_str(&full).unwrap()))
            })
        })
        .chain(std::iter::once((
            "(defaults)".to_string(),
            Value::Table(toml::from_str(&Config::default().to_toml()).unwrap()),
        )))
        .chain(std::iter::once(data_only()))
        .collect()
}

/// A config with a `data` sampler and no `[system]` (the file is the system), resolved from a small
/// generated file: the fields it resolves (species, grid, initial box, test states) are edited like
/// any other. The file is gone before the edits; a resolved config does not read it again.
fn data_only() -> (String, Value) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ds.csv");
    crate::write_small_csv(&path);
    let cfg = format!(
        "[sampler]\ntype = \"data\"\npath = \"{}\"\n[labeller]\ntype = \"finite-difference\"\n",
        path.display()
    );
    let full = Config::from_toml(&cfg).unwrap().to_toml();
    ("(data system)".to_string(), Value::Table(toml::from_str(&full).unwrap()))
}

#[test]
fn no_numeric_value_in_any_config_panics_and_nan_is_always_named() {
    // A limit of its own, so the outcome does not depend on this machine's free memory; restored
    // however the test ends (other tests share the process).
    struct Limit;
    impl Drop for Limit {
        fn drop(&mut self) {
            stiffx::resources::set_max_memory(None);
        }
    }
    stiffx::resources::set_max_memory(Some(8 << 30));
    let _limit = Limit;
    let configs = shipped();
    assert!(configs.len() >= 19, "only {} shipped configs (and the defaults) validate as they are", configs.len());
    let (mut cases, mut refused, mut fields) = (0usize, 0usize, 0usize);
    let mut failures = Vec::new();
    let mut rng = Gen(0x5EED_1234_ABCD_0001);
    for (name, doc) in &configs {
        let mut found = Vec::new();
        leaves(doc, "", &mut Vec::new(), &mut found);
        fields += found.len();
        for leaf in &found {
            let mut values = edge_values();
            values.extend((0..6).map(|_| rng.value(leaf.float)));
            for v in values {
                let mut d = doc.clone();
                let shown = v.to_string();
                let non_finite = matches!(v, Value::Float(x) if !x.is_finite());
                set(&mut d, &leaf.steps, v);
                cases += 1;
                match check(&toml::to_string(&d).unwrap()) {
                    Err(p) => failures.push(format!("{name}: {} = {shown}: panicked: {p}", leaf.path)),
                    Ok(Ok(())) if non_finite && leaf.float => {
                        failures.push(format!("{name}: {} = {shown} was accepted", leaf.path))
                    }
                    Ok(Err(e)) => {
                        refused += 1;
                        let msg = e.to_string();
                        if non_finite && leaf.float && !msg.contains(&leaf.path) {
                            failures.push(format!("{name}: {} = {shown}: the error does not name it: {msg}", leaf.path))
                        }
                    }
                    Ok(Ok(())) => {}
                }
            }
        }
        // Several fields at once: interactions between neighbours (ranges, grids, counts).
        for _ in 0..40 {
            let mut d = doc.clone();
            let mut what = Vec::new();
            for _ in 0..3 {
                let leaf = &found[(rng.next() % found.len() as u64) as usize];
                let v = rng.value(leaf.float);
                what.push(format!("{} = {v}", leaf.path));
                set(&mut d, &leaf.steps, v);
            }
            cases += 1;
            match check(&toml::to_string(&d).unwrap()) {
                Err(p) => failures.push(format!("{name}: {}: panicked: {p}", what.join(", "))),
                Ok(Err(_)) => refused += 1,
                Ok(Ok(())) => {}
            }
        }
    }
    eprintln!(
        "validation property: {} configs, {fields} numeric fields, {cases} cases, {refused} refused, {} failures",
        configs.len(),
        failures.len()
    );
    assert!(failures.is_empty(), "{} of {cases} cases failed:\n{}", failures.len(), failures.join("\n"));
    assert!(refused > cases / 4, "only {refused} of {cases} hostile cases refused: the generator reaches nothing");
}

/// The same kind of edits through the command line (`stiffx run --check`): exit 0 or 2, a message
/// for 2, and the output directory never created.
#[test]
fn run_check_exits_0_or_2_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/tiny.toml")).unwrap();
    let doc = Value::Table(toml::from_str(&text).unwrap());
    let mut found = Vec::new();
    leaves(&doc, "", &mut Vec::new(), &mut found);
    let mut rng = Gen(0xC0FF_EE00_0000_0042);
    let (mut ok, mut refused) = (0, 0);
    for (i, leaf) in found.iter().enumerate() {
        let v = if i % 2 == 0 { Value::Float(f64::NAN) } else { rng.value(leaf.float) };
        let shown = v.to_string();
        let mut d = doc.clone();
        set(&mut d, &leaf.steps, v);
        let cfg = tmp.path().join(format!("c{i}.toml"));
        std::fs::write(&cfg, toml::to_string(&d).unwrap()).unwrap();
        let out = tmp.path().join(format!("out{i}"));
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_stiffx"))
            .args(["--max-memory", "4G", "run", "--check", "--config"])
            .arg(&cfg)
            .arg("--out")
            .arg(&out)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        match o.status.code() {
            Some(0) => ok += 1,
            Some(2) => {
                refused += 1;
                assert!(err.contains("error"), "{} = {shown}: exit 2 without a message", leaf.path);
            }
            c => panic!("{} = {shown}: exit {c:?}: {err}", leaf.path),
        }
        assert!(!err.contains("panicked"), "{} = {shown}: {err}", leaf.path);
        assert!(!out.exists(), "{} = {shown}: --check created {}", leaf.path, out.display());
    }
    assert!(ok > 0 && refused > 0, "{ok} accepted, {refused} refused: the edits never reach one side");
    // Nothing but the configs: no run directory, no working directory (`.outN.partial`), no lock.
    let stray: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".toml"))
        .collect();
    assert!(stray.is_empty(), "--check wrote {stray:?}");
}
