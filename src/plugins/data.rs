//! Trajectory data as the dataset: the `data` sampler reads trajectories from a CSV file or a NumPy NPZ
//! archive (a simulator's output or measurements; the formats: [`crate::plugins::columns`]) instead of integrating the system, so that with the `finite-difference`
//! labeller no analytic RHS is used anywhere in training.
//!
//! # File format
//! One row per state (NPZ: one 1-D array per column, all of one length), the columns named (any order):
//! - `trajectory`: an id (any text); the rows of one trajectory need not be adjacent;
//! - `t`: the time, strictly increasing within a trajectory (in file order);
//! - `eps` (the system's stiffness parameter name is accepted too): optional; without it every
//!   trajectory belongs to `sampler.eps`, or to the system's only training value;
//! - one column per state component, named as the system names them (`stiffx list`, or the species of
//!   a mechanism file), every one present, no other columns.
//!
//! Every value must be a finite number; an error gives the file, the line and column, the column's
//! name and what is allowed. Each trajectory needs at least `3` points (the finite-difference stencil).
//!
//! # What is sampled
//! Every point of every trajectory whose stiffness value is in the training grid, as a
//! [`Trajectory`] with [`Origin::Trajectory`] points, exactly as the `trajectory` sampler stores its
//! own integrations: the `finite-difference` labeller then differentiates along them
//! ([`fd_stencil`](crate::plugins::labeller::fd_stencil)); a value of the grid without data, or data at
//! a value outside it, is an error (put held-out data in another file). A system named in `[system]`
//! gives the state names, the stiffness grid and the evaluation's reference; without `[system]` the
//! file itself is the system (`plugins::data_system`: no reference).

use std::collections::BTreeMap;
use std::path::PathBuf;

use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::io::sha256_hex;
use crate::plugins::columns::{Format, Table};
use crate::plugins::sampler::{Origin, SampleSet, Sampler, Trajectory};
use crate::plugins::system::StiffSystem;

/// Trajectories read from a CSV file (see the module docs for the format).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSampler {
    /// The CSV or NPZ file (relative to the working directory).
    pub path: String,
    /// The stiffness value of every trajectory when the file has no `eps` column (`None`: the
    /// system's training grid must then have exactly one value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eps: Option<f64>,
}

/// The trajectories of a data file, in order of first appearance.
#[derive(Debug, Clone, PartialEq)]
pub struct DataFile {
    /// The trajectories' ids as written in the file.
    pub ids: Vec<String>,
    /// The trajectories (states in the system's component order).
    pub trajectories: Vec<Trajectory>,
}

impl DataFile {
    /// Sets the stiffness value of every trajectory that has none (a file without an `eps` column) to
    /// `default`; `None` is an error naming `path` (held-out data must then say its value).
    pub fn resolve_eps(&mut self, default: Option<f64>, path: &std::path::Path) -> Result<()> {
        for (id, t) in self.ids.iter().zip(self.trajectories.iter_mut()).filter(|(_, t)| t.eps.is_nan()) {
            t.eps = default.ok_or_else(|| Error::Data {
                path: path.to_path_buf(),
                message: format!(
                    "trajectory `{id}`: no `eps` column, and the training data have several eps values: held-out data must say its stiffness value"
                ),
            })?;
        }
        Ok(())
    }

    /// Each state component's range (max − min) over every point of every trajectory.
    pub fn ranges(&self, d: usize) -> Vec<f64> {
        state_ranges(self.trajectories.iter().flat_map(|t| t.states.chunks(d)), d)
    }

    /// Every point of every trajectory as a [`SampleSet`] of `d`-dimensional [`Origin::Trajectory`]
    /// points (the trajectories' `eps` must be set).
    pub fn into_set(self, d: usize) -> SampleSet {
        let mut set = SampleSet { dim: d, ..Default::default() };
        for (k, tr) in self.trajectories.iter().enumerate() {
            for (j, x) in tr.states.chunks(d).enumerate() {
                set.push(x, tr.eps, Origin::Trajectory { traj: k as u32, index: j as u32 });
            }
        }
        set.trajectories = self.trajectories;
        set
    }
}

/// Each component's range (max − min) over `rows` of `d` components.
pub fn state_ranges<'a>(rows: impl Iterator<Item = &'a [f64]>, d: usize) -> Vec<f64> {
    let mut r = vec![[f64::INFINITY, f64::NEG_INFINITY]; d];
    for row in rows {
        for (b, v) in r.iter_mut().zip(row) {
            *b = [b[0].min(*v), b[1].max(*v)];
        }
    }
    r.iter().map(|b| b[1] - b[0]).collect()
}

/// Column roles after matching the header against the system.
enum Column {
    Id,
    Time,
    Eps,
    State(usize),
}

impl DataSampler {
    fn err(&self, message: String) -> Error {
        Error::Data { path: PathBuf::from(&self.path), message }
    }

    /// Reads and checks the file against `names` (the system's state names) and `param` (its
    /// stiffness parameter's name).
    pub fn read(&self, names: &[String], param: &str) -> Result<DataFile> {
        // A missing or unreadable data file is bad input (exit 2), named with its path.
        let text = std::fs::read(&self.path).map_err(|e| self.err(format!("cannot read it: {e}")))?;
        self.parse(&text, names, param)
    }

    /// The state columns of the file's header, in file order: every column but `trajectory`, `t` and
    /// `eps` (how `stiffx identify --data` and the `data` system learn the species of a file with no
    /// system named), and the file read over them: one read of the file.
    pub fn read_own_columns(&self) -> Result<(Vec<String>, DataFile)> {
        let bytes = std::fs::read(&self.path).map_err(|e| self.err(format!("cannot read it: {e}")))?;
        let table = Table::read(&bytes).map_err(|m| self.err(m))?;
        let names: Vec<String> =
            table.header.iter().filter(|h| !["trajectory", "t", "eps"].contains(&h.as_str())).cloned().collect();
        if names.is_empty() {
            return Err(self.err(format!(
                "{}: no state columns; the header must name `trajectory`, `t`, optionally `eps`, and one column per species",
                table.header_place()
            )));
        }
        if let Some(h) = names.iter().find(|h| h.is_empty()) {
            return Err(self.err(format!(
                "{}: an empty column name `{h}`; every species column needs a name",
                table.header_place()
            )));
        }
        let file = self.parse(&bytes, &names, "eps")?;
        Ok((names, file))
    }

    /// [`read`](Self::read) on the file's bytes (CSV text or an NPZ archive, see [`Table`]).
    pub fn parse(&self, bytes: &[u8], names: &[String], param: &str) -> Result<DataFile> {
        let mut table = Table::read(bytes).map_err(|m| self.err(m))?;
        let allowed = || {
            format!(
                "`trajectory`, `t`, optionally `eps` (or `{param}`), and one column per state: {}",
                names.join(", ")
            )
        };
        let mut cols = Vec::new();
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        for (c, h) in table.header.iter().enumerate() {
            let role = match h.as_str() {
                "trajectory" => Column::Id,
                "t" => Column::Time,
                "eps" => Column::Eps,
                h if h == param => Column::Eps,
                h => match names.iter().position(|n| n == h) {
                    Some(k) => Column::State(k),
                    None => {
                        return Err(self.err(format!(
                            "{}: unknown column `{h}`; allowed: {}",
                            table.column_place(c),
                            allowed()
                        )));
                    }
                },
            };
            let key = match role {
                Column::Eps => "eps".to_string(),
                _ => h.to_string(),
            };
            if let Some(first) = seen.insert(key, c) {
                let at = match table.format {
                    Format::Csv => format!("line 1, columns {} and {}", first + 1, c + 1),
                    Format::Npz => format!("arrays `{}` and `{h}`", table.header[first]),
                };
                return Err(self.err(format!("{at}: `{h}` given twice")));
            }
            cols.push(role);
        }
        let missing: Vec<&str> = ["trajectory", "t"]
            .into_iter()
            .chain(names.iter().map(String::as_str))
            .filter(|n| !seen.contains_key(*n))
            .collect();
        if !missing.is_empty() {
            return Err(self.err(format!(
                "{}: missing column(s) {}; the header must name {}",
                table.header_place(),
                missing.join(", "),
                allowed()
            )));
        }
        let has_eps = seen.contains_key("eps");
        let d = names.len();
        let mut ids: Vec<String> = Vec::new();
        let mut index: BTreeMap<String, usize> = BTreeMap::new();
        let mut trajectories: Vec<Trajectory> = Vec::new();
        let rows = std::mem::replace(&mut table.rows, Box::new(std::iter::empty()));
        for row in rows {
            let row = row.map_err(|m| self.err(m))?;
            let line = &row.place;
            if row.fields.len() != cols.len() {
                return Err(self.err(format!("{line}: {} fields, the header has {}", row.fields.len(), cols.len())));
            }
            let (mut id, mut t, mut eps) = ("", f64::NAN, self.eps.unwrap_or(f64::NAN));
            let mut x = vec![f64::NAN; d];
            for (c, (role, field)) in cols.iter().zip(&row.fields).enumerate() {
                let number = || -> Result<f64> {
                    match field.parse::<f64>() {
                        Ok(v) if v.is_finite() => Ok(v),
                        _ => Err(self.err(format!("{}: `{field}` is not a finite number", table.cell_place(&row, c)))),
                    }
                };
                match role {
                    Column::Id => id = field,
                    Column::Time => t = number()?,
                    Column::Eps => {
                        eps = number()?;
                        if eps <= 0.0 {
                            return Err(self.err(format!(
                                "{}: {eps} is not an admissible stiffness value (> 0)",
                                table.cell_place(&row, c)
                            )));
                        }
                    }
                    Column::State(k) => x[*k] = number()?,
                }
            }
            let k = *index.entry(id.to_string()).or_insert_with(|| {
                ids.push(id.to_string());
                trajectories.push(Trajectory { eps, times: Vec::new(), states: Vec::new() });
                trajectories.len() - 1
            });
            let tr = &mut trajectories[k];
            if has_eps && tr.eps != eps {
                return Err(self.err(format!(
                    "{line} (`eps`): {eps}, but trajectory `{id}` started at eps = {}: one value per trajectory",
                    tr.eps
                )));
            }
            if let Some(&last) = tr.times.last()
                && t <= last
            {
                return Err(self.err(format!(
                    "{line} (`t`): {t} after {last} in trajectory `{id}`: times must increase strictly within a trajectory"
                )));
            }
            tr.times.push(t);
            tr.states.extend_from_slice(&x);
        }
        if trajectories.is_empty() {
            return Err(self.err("no data rows after the header".into()));
        }
        if let Some((id, tr)) = ids.iter().zip(&trajectories).find(|(_, tr)| tr.times.len() < 3) {
            return Err(self.err(format!(
                "trajectory `{id}` has {} point(s); at least 3 are needed for the finite-difference labels",
                tr.times.len()
            )));
        }
        Ok(DataFile { ids, trajectories })
    }
}

/// Most rows of an initial-states file ([`read_states`]).
pub const MAX_STATES: usize = 100_000;

/// Test initial states from a CSV file (`eval.initial_states`): a header naming every state component
/// of `names` once (any order, no other column), then one row per state of finite numbers; at most
/// [`MAX_STATES`] rows. Errors give the file, line and column and what is allowed.
pub fn read_states(path: &str, names: &[String]) -> Result<Vec<Vec<f64>>> {
    let err = |message: String| Error::Data { path: PathBuf::from(path), message };
    let bytes = std::fs::read(path).map_err(|e| err(format!("cannot read it (eval.initial_states): {e}")))?;
    let mut rdr = csv::ReaderBuilder::new().has_headers(true).trim(csv::Trim::All).from_reader(bytes.as_slice());
    let header = rdr.headers().map_err(|e| err(format!("cannot read the header: {e}")))?.clone();
    let mut col = Vec::new();
    for (c, h) in header.iter().enumerate() {
        match names.iter().position(|n| n == h) {
            Some(k) if !col.contains(&k) => col.push(k),
            Some(_) => return Err(err(format!("line 1, column {}: `{h}` given twice", c + 1))),
            None => {
                return Err(err(format!(
                    "line 1, column {}: unknown column `{h}`; the header names each state once: {}",
                    c + 1,
                    names.join(", ")
                )));
            }
        }
    }
    if col.len() != names.len() {
        let missing: Vec<&str> =
            names.iter().enumerate().filter(|(k, _)| !col.contains(k)).map(|(_, n)| n.as_str()).collect();
        return Err(err(format!("line 1: missing column(s) {}", missing.join(", "))));
    }
    let mut states = Vec::new();
    for rec in rdr.records() {
        let rec = rec.map_err(|e| err(e.to_string()))?;
        let line = rec.position().map_or(0, |p| p.line());
        if states.len() == MAX_STATES {
            return Err(err(format!("line {line}: more than {MAX_STATES} states")));
        }
        let mut x = vec![0.0; names.len()];
        for (c, (field, &k)) in rec.iter().zip(&col).enumerate() {
            x[k] = match field.parse::<f64>() {
                Ok(v) if v.is_finite() => v,
                _ => {
                    return Err(err(format!(
                        "line {line}, column {} (`{}`): `{field}` is not a finite number",
                        c + 1,
                        names[k]
                    )));
                }
            };
        }
        states.push(x);
    }
    if states.is_empty() {
        return Err(err("no states after the header".into()));
    }
    Ok(states)
}

/// Whether the data's stiffness value `data` is the grid's `grid` (to 1e-12 relative: the file's decimal
/// text and the config's may round differently).
fn same_eps(grid: f64, data: f64) -> bool {
    (grid - data).abs() <= 1e-12 * grid.abs()
}

#[typetag::serde(name = "data")]
impl Sampler for DataSampler {
    fn validate(&self) -> Result<()> {
        if self.path.is_empty() {
            return Err(Error::invalid("sampler.path", "\"\"", "the path of a CSV or NPZ file of trajectories"));
        }
        if let Some(e) = self.eps
            && !(e.is_finite() && e > 0.0)
        {
            return Err(Error::invalid("sampler.eps", e, "a finite stiffness value > 0"));
        }
        Ok(())
    }

    fn sample(&self, system: &dyn StiffSystem, eps_grid: &[f64], _rng: &mut StdRng) -> Result<SampleSet> {
        let param = system.param_name();
        let mut file = self.read(&system.state_names(), &param)?;
        let grid = |v: &[f64]| v.iter().map(|e| format!("{e}")).collect::<Vec<_>>().join(", ");
        for (id, tr) in file.ids.iter().zip(file.trajectories.iter_mut()) {
            if tr.eps.is_nan() {
                // No eps column: `sampler.eps`, or the grid's only value.
                match eps_grid {
                    [e] => tr.eps = *e,
                    _ => {
                        return Err(Error::invalid(
                            "sampler.eps",
                            "(not set)",
                            format!(
                                "the stiffness value of the data in {} (no `eps` column in the file; the training grid has {} values: {})",
                                self.path,
                                eps_grid.len(),
                                grid(eps_grid)
                            ),
                        ));
                    }
                }
            }
            if !eps_grid.iter().any(|&e| same_eps(e, tr.eps)) {
                return Err(self.err(format!(
                    "trajectory `{id}` is at {param} = {}, which is not in the training grid ({}); put held-out data in another file",
                    tr.eps,
                    grid(eps_grid)
                )));
            }
        }
        if let Some(e) = eps_grid.iter().find(|&&e| !file.trajectories.iter().any(|t| same_eps(e, t.eps))) {
            return Err(self.err(format!(
                "no trajectory at {param} = {e} of the training grid ({}); give data at every value, or set the grid (system.train_eps, or the mechanism's stiffx.train-eps)",
                grid(eps_grid)
            )));
        }
        Ok(file.into_set(system.dim()))
    }

    fn describe(&self) -> String {
        format!("data: trajectories from {}", self.path)
    }

    /// The file's data rows (its lines after the header, or an NPZ archive's array length), counted
    /// without parsing: the memory
    /// estimate's sample count. `None` when the file cannot be read (sampling then names the error).
    fn expected_len(&self, _n_eps: usize) -> Option<usize> {
        use std::io::Read;
        let mut f = std::fs::File::open(&self.path).ok()?;
        if let Some(n) = crate::plugins::columns::npz_rows(&mut f) {
            return Some(n);
        }
        let (mut buf, mut lines, mut last) = (vec![0u8; 1 << 16], 0usize, b'\n');
        loop {
            let n = f.read(&mut buf).ok()?;
            if n == 0 {
                break;
            }
            lines += buf[..n].iter().filter(|&&b| b == b'\n').count();
            last = buf[n - 1];
        }
        // A last line without its newline still counts; the header does not.
        Some((lines + usize::from(last != b'\n')).saturating_sub(1))
    }

    fn data_file(&self) -> Option<(String, Option<f64>)> {
        Some((self.path.clone(), self.eps))
    }

    fn fingerprint(&self) -> String {
        std::fs::read(&self.path).map_or_else(|e| format!("unreadable: {e}"), |b| sha256_hex(&b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        ["y1", "y2"].iter().map(|s| s.to_string()).collect()
    }

    fn parse(text: &str) -> Result<DataFile> {
        DataSampler { path: "d.csv".into(), eps: None }.parse(text.as_bytes(), &names(), "eps")
    }

    /// The memory estimate's row count: data lines after the header, with or without a final newline;
    /// an unreadable file has none (sampling reports it).
    #[test]
    fn expected_len_counts_the_data_rows() {
        let dir = tempfile::tempdir().unwrap();
        for (text, rows) in
            [("trajectory,t,y1,y2\na,0,1,2\na,1,1,2\n", 2), ("trajectory,t,y1,y2\na,0,1,2\na,1,1,2", 2), ("h\n", 0)]
        {
            let path = dir.path().join("d.csv");
            std::fs::write(&path, text).unwrap();
            let d = DataSampler { path: path.display().to_string(), eps: None };
            assert_eq!(d.expected_len(1), Some(rows), "{text:?}");
        }
        assert_eq!(DataSampler { path: "/nonexistent/d.csv".into(), eps: None }.expected_len(1), None);
    }

    /// Columns in any order, interleaved trajectories, states reordered into the system's order.
    #[test]
    fn reads_trajectories_in_any_column_order() {
        let f = parse(
            "y2,trajectory,t,y1,eps\n0.5,a,0,1,2\n0.1,b,0,3,1\n0.6,a,1,1.5,2\n0.7,a,2,2,2\n0.2,b,1,4,1\n0.3,b,3,5,1\n",
        )
        .unwrap();
        assert_eq!(f.ids, ["a", "b"]);
        assert_eq!(f.trajectories[0].times, [0.0, 1.0, 2.0]);
        assert_eq!(f.trajectories[0].states, [1.0, 0.5, 1.5, 0.6, 2.0, 0.7]);
        assert_eq!((f.trajectories[0].eps, f.trajectories[1].eps), (2.0, 1.0));
    }

    /// Every bad input names the file, the line and column or the field, and what is allowed.
    #[test]
    fn bad_files_are_named_errors() {
        let cases = [
            ("trajectory,t,y1\n", "missing column(s) y2"),
            ("trajectory,t,y1,y2,y3\n", "line 1, column 5: unknown column `y3`; allowed: `trajectory`, `t`"),
            ("trajectory,t,y1,y2,y1\n", "columns 3 and 5: `y1` given twice"),
            ("trajectory,t,y1,y2\na,0,1,x\n", "line 2, column 4 (`y2`): `x` is not a finite number"),
            ("trajectory,t,y1,y2\na,0,1,NaN\n", "line 2, column 4 (`y2`): `NaN` is not a finite number"),
            ("trajectory,t,y1,y2\na,0,1,2\na,0,1,2\n", "line 3 (`t`): 0 after 0 in trajectory `a`"),
            ("trajectory,t,y1,y2\na,0,1,2\na,1,1\n", "line 3: 3 fields, the header has 4"),
            ("trajectory,t,y1,y2\na,0,1,2\na,1,1,2\n", "trajectory `a` has 2 point(s); at least 3"),
            ("trajectory,t,eps,y1,y2\na,0,-1,1,2\n", "line 2, column 3 (`eps`): -1 is not an admissible"),
            (
                "trajectory,t,eps,y1,y2\na,0,1,1,2\na,1,2,1,2\n",
                "line 3 (`eps`): 2, but trajectory `a` started at eps = 1",
            ),
            ("trajectory,t,y1,y2\n", "no data rows"),
        ];
        for (text, want) in cases {
            let e = parse(text).unwrap_err().to_string();
            assert!(e.starts_with("invalid data file d.csv: ") && e.contains(want), "{text:?}: {e}");
        }
    }
}
