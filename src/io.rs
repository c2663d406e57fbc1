//! Output files written atomically: every file goes to a temporary file in the same directory and is
//! renamed into place, so a run that is killed never leaves a half-written result or checkpoint, and a
//! previous complete file survives until the new one is whole.

use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};

/// Writes `bytes` to `path` atomically (temp file + fsync + rename), creating parent directories.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path, bytes, || ())
}

/// [`write_atomic`], calling `before_rename` when the temporary file is whole but not yet in place
/// (where kill-and-resume tests kill a save, `crate::interrupt::kill_point`).
pub fn write_atomic_with(path: &Path, bytes: &[u8], before_rename: impl FnOnce()) -> Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| Error::io(dir, e))?;
    tmp.write_all(bytes).map_err(|e| Error::io(path, e))?;
    // tempfile creates 0600 files; results are ordinary files (0644 before the umask).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file().set_permissions(std::fs::Permissions::from_mode(0o644)).map_err(|e| Error::io(path, e))?;
    }
    tmp.as_file().sync_all().map_err(|e| Error::io(path, e))?;
    before_rename();
    tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
    Ok(())
}

/// Serialises `value` as pretty JSON to `path`, atomically.
pub fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<()> {
    let s = serde_json::to_string_pretty(value).map_err(|e| Error::io(path, std::io::Error::other(e)))?;
    write_atomic(path, s.as_bytes())
}

/// Writes rows of records as CSV (header from the first record's field names), atomically.
pub fn write_csv<T: serde::Serialize>(path: &Path, rows: &[T]) -> Result<()> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for r in rows {
        w.serialize(r).map_err(|e| Error::io(path, std::io::Error::other(e)))?;
    }
    let bytes = w.into_inner().map_err(|e| Error::io(path, std::io::Error::other(e.to_string())))?;
    write_atomic(path, &bytes)
}

/// Serde for `f64` values that may be non-finite (a diverged rollout's error is `inf`): JSON has no
/// `inf`/`NaN`, and serde_json would write `null` and then refuse to read it back. Finite values are
/// written as numbers, others as the strings `"inf"`, `"-inf"`, `"NaN"`; reading accepts numbers, those
/// strings and `null` (as NaN). Use with `#[serde(with = "crate::io::float")]`.
pub mod float {
    use serde::de::{self, Visitor};
    use serde::{Deserializer, Serializer};

    /// Writes a number, or `"inf"`/`"-inf"`/`"NaN"`.
    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        if v.is_finite() {
            s.serialize_f64(*v)
        } else if v.is_nan() {
            s.serialize_str("NaN")
        } else if *v > 0.0 {
            s.serialize_str("inf")
        } else {
            s.serialize_str("-inf")
        }
    }

    struct F;
    impl<'de> Visitor<'de> for F {
        type Value = f64;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a number, \"inf\", \"-inf\", \"NaN\", null or an empty field")
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<f64, E> {
            Ok(v)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<f64, E> {
            Ok(v as f64)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<f64, E> {
            Ok(v as f64)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<f64, E> {
            // An empty CSV field is what `float_opt` writes for `None` (and csv hands it over as "").
            if v.trim().is_empty() {
                return Ok(f64::NAN);
            }
            v.trim().parse::<f64>().map_err(|_| E::invalid_value(de::Unexpected::Str(v), &self))
        }
        fn visit_unit<E: de::Error>(self) -> Result<f64, E> {
            Ok(f64::NAN)
        }
        fn visit_none<E: de::Error>(self) -> Result<f64, E> {
            Ok(f64::NAN)
        }
    }

    /// Reads what [`serialize`] writes (and `null` as NaN).
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        d.deserialize_any(F)
    }
}

/// [`float`] for an optional number: `None` is written as `null` (an empty field in CSV), and `null`,
/// a missing field (with `#[serde(default)]`) or `"NaN"` read back as `None`.
pub mod float_opt {
    use serde::{Deserializer, Serializer};

    /// Writes `null`, a number, or `"inf"`/`"-inf"`.
    pub fn serialize<S: Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(x) => super::float::serialize(x, s),
            None => s.serialize_none(),
        }
    }

    /// Reads what [`serialize`] writes.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        let v = super::float::deserialize(d)?;
        Ok((!v.is_nan()).then_some(v))
    }
}

/// [`float`] for a pair `[a, b]` (a complex number `[re, im]`): a JSON array of two numbers or
/// non-finite strings.
pub mod float_pair {
    use serde::ser::SerializeTuple;
    use serde::{Deserialize, Deserializer, Serializer};

    #[derive(serde::Serialize, serde::Deserialize)]
    struct F(#[serde(with = "super::float")] f64);

    /// Writes `[a, b]`.
    pub fn serialize<S: Serializer>(v: &[f64; 2], s: S) -> Result<S::Ok, S::Error> {
        let mut t = s.serialize_tuple(2)?;
        t.serialize_element(&F(v[0]))?;
        t.serialize_element(&F(v[1]))?;
        t.end()
    }

    /// Reads what [`serialize`] writes.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[f64; 2], D::Error> {
        let [F(a), F(b)] = <[F; 2]>::deserialize(d)?;
        Ok([a, b])
    }
}

/// The SHA-256 of `bytes` as lower-case hex (64 digits): content hashes of configs, checkpoints and
/// dataset keys.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    #[derive(Debug, serde::Serialize, serde::Deserialize, PartialEq)]
    struct O {
        #[serde(default, with = "super::float_opt")]
        p: Option<f64>,
        #[serde(default, with = "super::float_opt")]
        q: Option<f64>,
    }

    #[test]
    fn optional_floats_round_trip_through_json() {
        for o in [O { p: None, q: Some(f64::INFINITY) }, O { p: Some(-2.5e-7), q: None }] {
            let j = serde_json::to_string(&o).unwrap();
            assert_eq!(serde_json::from_str::<O>(&j).unwrap(), o, "{j}");
        }
        assert_eq!(serde_json::from_str::<O>("{}").unwrap(), O { p: None, q: None });
        assert_eq!(serde_json::to_string(&O { p: None, q: Some(1.0) }).unwrap(), r#"{"p":null,"q":1.0}"#);
    }

    #[test]
    fn optional_floats_round_trip_through_csv() {
        let rows = vec![O { p: None, q: Some(f64::NEG_INFINITY) }, O { p: Some(3.5), q: None }];
        let mut w = csv::Writer::from_writer(Vec::new());
        for r in &rows {
            w.serialize(r).unwrap();
        }
        let text = String::from_utf8(w.into_inner().unwrap()).unwrap();
        assert_eq!(text, "p,q\n,-inf\n3.5,\n");
        let back: Vec<O> = csv::Reader::from_reader(text.as_bytes()).deserialize().map(|r| r.unwrap()).collect();
        assert_eq!(back, rows);
    }

    #[derive(Debug, serde::Serialize, serde::Deserialize, PartialEq)]
    struct T {
        #[serde(with = "super::float")]
        a: f64,
        #[serde(with = "super::float")]
        b: f64,
        #[serde(with = "super::float")]
        c: f64,
    }

    #[test]
    fn non_finite_floats_round_trip_through_json_and_csv() {
        let t = T { a: f64::INFINITY, b: -1.5e-300, c: f64::NEG_INFINITY };
        let j = serde_json::to_string(&t).unwrap();
        assert_eq!(serde_json::from_str::<T>(&j).unwrap(), t);
        let n: T = serde_json::from_str(r#"{"a": null, "b": 2, "c": "NaN"}"#).unwrap();
        assert!(n.a.is_nan() && n.b == 2.0 && n.c.is_nan());
        let mut w = csv::Writer::from_writer(Vec::new());
        w.serialize(&t).unwrap();
        let bytes = w.into_inner().unwrap();
        let back: T = csv::Reader::from_reader(bytes.as_slice()).deserialize().next().unwrap().unwrap();
        assert_eq!(back, t);
    }
}
