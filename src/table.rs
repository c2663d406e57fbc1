//! The one table writer: a header and rows of text cells, rendered as a Markdown table (reports:
//! `table1.md`, `compare.md`, `report.md`, `eval.md`, `windows.md`, `diagnostics.md`) or as aligned
//! columns for the console, and the `mean ± std` cell every seed-averaged table uses.
//!
//! Cells are text: the caller formats numbers (each table has its own precision), and writes `\|` for
//! a literal pipe inside a Markdown cell (`\|Δλ_fast\|`).

/// A column of a summary table: its header and the value it takes from a row.
pub type Column<R> = (&'static str, fn(&R) -> f64);

/// A table of text cells.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
    left: Vec<usize>,
}

impl Table {
    /// A table with these column headers.
    pub fn new<S: Into<String>>(header: impl IntoIterator<Item = S>) -> Self {
        Self { header: header.into_iter().map(Into::into).collect(), rows: Vec::new(), left: vec![0] }
    }

    /// The columns [`console`](Self::console) aligns left (default: the first); the others go right.
    pub fn left_aligned(mut self, columns: &[usize]) -> Self {
        self.left = columns.to_vec();
        self
    }

    /// Appends a row (as many cells as the header has columns).
    pub fn row<S: Into<String>>(&mut self, cells: impl IntoIterator<Item = S>) -> &mut Self {
        let row: Vec<String> = cells.into_iter().map(Into::into).collect();
        debug_assert_eq!(
            row.len(),
            self.header.len(),
            "a row of {} cells in a table of {} columns",
            row.len(),
            self.header.len()
        );
        self.rows.push(row);
        self
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether the table has no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// GitHub Markdown: `| a | b |`, `|---|---|`, then one `| … |` line per row.
    pub fn markdown(&self) -> String {
        let line = |cells: &[String]| format!("| {} |\n", cells.join(" | "));
        let mut s = line(&self.header);
        s.push_str(&format!("|{}\n", "---|".repeat(self.header.len())));
        for r in &self.rows {
            s.push_str(&line(r));
        }
        s
    }

    /// Aligned columns for a terminal: the [`left_aligned`](Self::left_aligned) columns (default: the
    /// first) left, the others right, two spaces apart (widths in characters).
    pub fn console(&self) -> String {
        let n = self.header.len();
        let width = |i: usize| {
            std::iter::once(&self.header).chain(&self.rows).map(|r| r.get(i).map_or(0, |c| c.chars().count())).max()
        };
        let widths: Vec<usize> = (0..n).map(|i| width(i).unwrap_or(0)).collect();
        let line = |cells: &[String]| {
            let parts: Vec<String> = cells
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    if self.left.contains(&i) {
                        format!("{c:<w$}", w = widths[i])
                    } else {
                        format!("{c:>w$}", w = widths[i])
                    }
                })
                .collect();
            format!("{}\n", parts.join("  ").trim_end())
        };
        std::iter::once(&self.header).chain(&self.rows).map(|r| line(r)).collect()
    }
}

/// A `mean ± std` cell over the finite `values` (sample std), the mean with `digits` decimals in
/// scientific notation and the std with one; a single finite value stands alone (one value has no
/// spread to report); non-finite values are left out and counted, `1.23e-2 ± 4.0e-3 (1/3 diverged)`,
/// so a diverged run never enters a mean as a number; `—` when none is finite.
pub fn mean_std_cell(values: &[f64], digits: usize, not_finite: &str) -> String {
    let fin: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    let (m, s) = crate::stats::mean_std(&fin);
    let mut txt = match fin.len() {
        0 => "—".to_string(),
        1 => format!("{m:.digits$e}"),
        _ => format!("{m:.digits$e} ± {s:.1e}"),
    };
    if fin.len() < values.len() {
        txt.push_str(&format!(" ({}/{} {not_finite})", values.len() - fin.len(), values.len()));
    }
    txt
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_console_and_mean_std_cells() {
        let mut t = Table::new(["config", "seed", "\\|Δλ\\|"]);
        t.row(["tiny", "1", "1.0e0"]).row(["tiny_identity", "12", "2.5e-1"]);
        assert_eq!(
            t.markdown(),
            "| config | seed | \\|Δλ\\| |\n|---|---|---|\n| tiny | 1 | 1.0e0 |\n| tiny_identity | 12 | 2.5e-1 |\n"
        );
        assert_eq!(
            t.console(),
            "config         seed  \\|Δλ\\|\ntiny              1   1.0e0\ntiny_identity    12  2.5e-1\n"
        );
        assert_eq!(t.len(), 2);
        assert_eq!(mean_std_cell(&[1.0, 2.0, 3.0], 3, "diverged"), "2.000e0 ± 1.0e0");
        assert_eq!(mean_std_cell(&[1.0, f64::NAN, 3.0], 2, "diverged"), "2.00e0 ± 1.4e0 (1/3 diverged)");
        assert_eq!(mean_std_cell(&[f64::INFINITY], 2, "diverged"), "— (1/1 diverged)");
        assert_eq!(mean_std_cell(&[4.0], 2, "x"), "4.00e0");
    }
}
