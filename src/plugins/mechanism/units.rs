//! Units of a mechanism file: Cantera's `units:` section and `value unit` strings, converted to the
//! one unit system stiffx computes in.
//!
//! **stiffx's unit system.** Time in seconds; activation energies in J/kmol (with Cantera's
//! `R = 8314.46261815324 J/(kmol·K)`); concentrations in the file's own concentration unit
//! `quantity / length³` (Cantera's default `kmol/m³` when the file has no `units:` section), because
//! the states a user writes in `stiffx: initial` and `test-states`, and the states a model is trained
//! on, are in that unit. So a rate constant of a reaction of total order `o` is stored as
//!
//! ```text
//! k [ (file concentration)^(1 − o) / s ] = A · t_f^(−1)                        (plain number A)
//! k                                      = v · f(unit) / c_f^(1 − o)            (A given as "v unit")
//! ```
//!
//! where `t_f` is the file's time unit in seconds, `c_f` its concentration unit in kmol/m³ and `f`
//! the SI factor of the unit string, whose dimension must be `concentration^(1 − o) / time` (checked).
//! The `stiffx: horizon` is in the file's time unit and stored in seconds.
//!
//! **Unit strings** follow Cantera: products of factors `unit^power` joined by `*`, `/` (each `/`
//! divides the next factor) or spaces, e.g. `cm^3/mol/s`, `kcal/mol`, `1/s`. Known units: length
//! `m cm mm um nm km`, volume `L` (litre), quantity `kmol mol molec`, time `s ms us ns min h`, energy
//! `J kJ cal kcal eV erg`, temperature `K` (an activation energy in `K` is `Ea/R`, in `eV` per
//! particle). Anything else is refused with the list of known units.

use std::collections::BTreeMap;

/// The gas constant in J/(kmol·K): Cantera's `GasConstant`, `Avogadro · Boltzmann`
/// = 6.02214076e26 · 1.380649e-23 (exact in SI since 2019).
pub const GAS_CONSTANT: f64 = 8314.46261815324;
/// Avogadro's number per kmol (Cantera's `Avogadro`).
pub const AVOGADRO: f64 = 6.02214076e26;

/// A physical dimension: exponents of (length, quantity, time, energy, temperature).
pub type Dim = [i32; 5];
const LENGTH: Dim = [1, 0, 0, 0, 0];
const QUANTITY: Dim = [0, 1, 0, 0, 0];
const TIME: Dim = [0, 0, 1, 0, 0];
const ENERGY: Dim = [0, 0, 0, 1, 0];
const TEMPERATURE: Dim = [0, 0, 0, 0, 1];

/// Names of every unit a file may use (for error messages).
pub const KNOWN: &str =
    "m, cm, mm, um, nm, km, L, kmol, mol, molec, s, ms, us, ns, min, h, J, kJ, cal, kcal, eV, erg, K";

/// One named unit: its SI factor (SI here: m, kmol, s, J, K) and dimension.
fn unit(name: &str) -> Option<(f64, Dim)> {
    let (f, d) = match name {
        "m" => (1.0, LENGTH),
        "cm" => (1e-2, LENGTH),
        "mm" => (1e-3, LENGTH),
        "um" => (1e-6, LENGTH),
        "nm" => (1e-9, LENGTH),
        "km" => (1e3, LENGTH),
        "L" => (1e-3, [3, 0, 0, 0, 0]),
        "kmol" => (1.0, QUANTITY),
        "mol" => (1e-3, QUANTITY),
        "molec" => (1.0 / AVOGADRO, QUANTITY),
        "s" => (1.0, TIME),
        "ms" => (1e-3, TIME),
        "us" => (1e-6, TIME),
        "ns" => (1e-9, TIME),
        "min" => (60.0, TIME),
        "h" => (3600.0, TIME),
        "J" => (1.0, ENERGY),
        "kJ" => (1e3, ENERGY),
        "cal" => (4.184, ENERGY),
        "kcal" => (4184.0, ENERGY),
        "eV" => (1.602176634e-19, ENERGY),
        "erg" => (1e-7, ENERGY),
        "K" => (1.0, TEMPERATURE),
        _ => return None,
    };
    Some((f, d))
}

/// Parses a unit expression (`cm^3/mol/s`) into its SI factor and dimension.
pub fn parse_expr(expr: &str) -> Result<(f64, Dim), String> {
    let mut factor = 1.0;
    let mut dim = [0; 5];
    let mut divide = false;
    let spaced = expr.replace('/', " / ").replace('*', " * ");
    let mut any = false;
    for tok in spaced.split_whitespace() {
        match tok {
            "/" => divide = true,
            "*" => {}
            "1" if !any => any = true,
            _ => {
                let (name, power) = match tok.split_once('^') {
                    Some((n, p)) => (n, p.parse::<i32>().map_err(|_| format!("`{tok}`: the power is not an integer"))?),
                    None => (tok, 1),
                };
                let (f, d) = unit(name).ok_or_else(|| format!("unknown unit `{name}` (known: {KNOWN})"))?;
                let p = if divide { -power } else { power };
                factor *= f.powi(p);
                for (a, b) in dim.iter_mut().zip(d) {
                    *a += b * p;
                }
                divide = false;
                any = true;
            }
        }
    }
    if !any || divide {
        return Err(format!("`{expr}` is not a unit expression"));
    }
    Ok((factor, dim))
}

/// Splits `"1.5e13 cm^3/mol/s"` into its number and unit expression (`None`: a plain number).
pub fn split_value(s: &str) -> Result<(f64, Option<&str>), String> {
    let s = s.trim();
    let (num, rest) = s.split_once(char::is_whitespace).unwrap_or((s, ""));
    let v = num.parse::<f64>().map_err(|_| format!("`{s}` is not a number followed by units"))?;
    let rest = rest.trim();
    Ok((v, (!rest.is_empty()).then_some(rest)))
}

/// The file's default units (its `units:` section), as factors to stiffx's system.
#[derive(Debug, Clone, Copy)]
pub struct FileUnits {
    /// Length unit in m.
    pub length: f64,
    /// Quantity unit in kmol.
    pub quantity: f64,
    /// Time unit in s.
    pub time: f64,
    /// Activation-energy unit in J/kmol.
    pub activation_energy: f64,
}

impl Default for FileUnits {
    /// Cantera's defaults: m, kmol, s, J/kmol.
    fn default() -> Self {
        FileUnits { length: 1.0, quantity: 1.0, time: 1.0, activation_energy: 1.0 }
    }
}

/// The keys a `units:` section may hold (Cantera's); `pressure`, `mass` and `energy` are accepted for
/// Cantera's thermodynamics and unused by mass-action kinetics at fixed temperature.
pub const SECTION_KEYS: &[&str] =
    &["length", "quantity", "time", "activation-energy", "energy", "pressure", "mass", "temperature"];

/// `J/kmol` factor of an activation-energy unit: `energy/quantity`, `energy` per particle (`eV`),
/// or a temperature (`K`, meaning `Ea/R`).
pub fn activation_energy_factor(expr: &str) -> Result<f64, String> {
    let (f, d) = parse_expr(expr)?;
    match d {
        [0, -1, 0, 1, 0] => Ok(f),
        [0, 0, 0, 1, 0] => Ok(f * AVOGADRO),
        [0, 0, 0, 0, 1] => Ok(f * GAS_CONSTANT),
        _ => Err(format!("`{expr}` is not an activation-energy unit (energy/quantity, eV or K)")),
    }
}

impl FileUnits {
    /// Reads a `units:` section (key → unit string); errors name the key and the allowed values.
    pub fn from_section(section: &BTreeMap<String, String>) -> Result<Self, String> {
        let mut u = FileUnits::default();
        for (key, value) in section {
            let want = |dim: Dim, what: &str| -> Result<f64, String> {
                let (f, d) = parse_expr(value).map_err(|e| format!("units: {key}: {e}"))?;
                if d != dim {
                    return Err(format!("units: {key}: `{value}` is not a {what} unit"));
                }
                Ok(f)
            };
            match key.as_str() {
                "length" => u.length = want(LENGTH, "length")?,
                "quantity" => u.quantity = want(QUANTITY, "quantity")?,
                "time" => u.time = want(TIME, "time")?,
                "activation-energy" => {
                    u.activation_energy = activation_energy_factor(value).map_err(|e| format!("units: {key}: {e}"))?
                }
                "energy" => {
                    want(ENERGY, "energy")?;
                }
                "temperature" => {
                    if value != "K" {
                        return Err(format!("units: temperature: `{value}`: only `K` is supported"));
                    }
                }
                "pressure" | "mass" => {}
                other => {
                    return Err(format!("units: unknown key `{other}` (allowed: {})", SECTION_KEYS.join(", ")));
                }
            }
        }
        Ok(u)
    }

    /// The file's concentration unit in kmol/m³.
    pub fn concentration(&self) -> f64 {
        self.quantity / self.length.powi(3)
    }

    /// A rate coefficient of a reaction of total `order` in stiffx's system: a plain number is in the
    /// file's units; `v unit` is checked to be `concentration^(1 − order) / time`.
    pub fn rate_coefficient(&self, v: f64, unit: Option<&str>, order: f64) -> Result<f64, String> {
        match unit {
            None => Ok(v / self.time),
            Some(expr) if order != order.round() => Err(format!(
                "`{v} {expr}`: a reaction of non-integer total order {order} takes its rate constant as a plain \
                 number in the file's units"
            )),
            Some(expr) => {
                let order = order as u32;
                let e = 1 - order as i32;
                let (f, d) = parse_expr(expr)?;
                let want: Dim = [-3 * e, e, -1, 0, 0];
                if d != want {
                    return Err(format!(
                        "`{v} {expr}` has the wrong dimension for a reaction of order {order}: expected \
                         (quantity/length^3)^{e}/time, e.g. `{}`",
                        match order {
                            0 => "kmol/m^3/s".to_string(),
                            1 => "1/s".to_string(),
                            o => format!("m^{}/kmol^{}/s", 3 * (o - 1), o - 1),
                        }
                    ));
                }
                Ok(v * f / self.concentration().powi(e))
            }
        }
    }

    /// An activation energy in J/kmol: a plain number is in the file's `activation-energy` unit.
    pub fn activation_energy(&self, v: f64, unit: Option<&str>) -> Result<f64, String> {
        match unit {
            None => Ok(v * self.activation_energy),
            Some(expr) => Ok(v * activation_energy_factor(expr)?),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-14 * b.abs()
    }

    /// Unit strings in Cantera's notation parse to the right SI factor and dimension; unknown units,
    /// bad powers and empty expressions are refused.
    #[test]
    fn unit_expressions() {
        let (f, d) = parse_expr("cm^3/mol/s").unwrap();
        assert!(close(f, 1e-6 / 1e-3) && d == [3, -1, -1, 0, 0]);
        assert_eq!(parse_expr("1/s").unwrap(), (1.0, [0, 0, -1, 0, 0]));
        let (f, d) = parse_expr("m^6 / kmol^2 / s").unwrap();
        assert!(close(f, 1.0) && d == [6, -2, -1, 0, 0]);
        assert!(close(parse_expr("kcal/mol").unwrap().0, 4.184e6));
        assert!(parse_expr("furlong").unwrap_err().contains("unknown unit `furlong`"));
        assert!(parse_expr("m^x").is_err() && parse_expr("").is_err() && parse_expr("m/").is_err());
    }

    /// A second-order rate in cm³/mol/s becomes the file's concentration unit; a plain number is in
    /// the file's units (time converted); a wrong dimension is named with the expected one.
    #[test]
    fn rate_coefficients_convert_to_the_file_concentration_and_seconds() {
        let si = FileUnits::default();
        // 1e13 cm^3/mol/s = 1e10 m^3/kmol/s.
        assert!(close(si.rate_coefficient(1e13, Some("cm^3/mol/s"), 2.0).unwrap(), 1e10));
        let mut sec = BTreeMap::new();
        sec.insert("length".to_string(), "cm".to_string());
        sec.insert("quantity".to_string(), "mol".to_string());
        sec.insert("time".to_string(), "min".to_string());
        let cgs = FileUnits::from_section(&sec).unwrap();
        assert!(close(cgs.rate_coefficient(1e13, Some("cm^3/mol/s"), 2.0).unwrap(), 1e13));
        assert!(close(cgs.rate_coefficient(60.0, None, 1.0).unwrap(), 1.0));
        assert!(close(cgs.rate_coefficient(2.0, Some("1/min"), 1.0).unwrap(), 2.0 / 60.0));
        let err = si.rate_coefficient(1.0, Some("1/s"), 2.0).unwrap_err();
        assert!(err.contains("order 2") && err.contains("m^3/kmol^1/s"), "{err}");
    }

    /// Activation energies: cal/mol, K (Ea/R) and eV (per particle) all land in J/kmol.
    #[test]
    fn activation_energies_in_j_per_kmol() {
        let si = FileUnits::default();
        assert!(close(si.activation_energy(1.0, Some("cal/mol")).unwrap(), 4184.0));
        assert!(close(si.activation_energy(1.0, Some("K")).unwrap(), GAS_CONSTANT));
        assert!(close(si.activation_energy(1.0, Some("eV")).unwrap(), 1.602176634e-19 * AVOGADRO));
        assert!(si.activation_energy(1.0, Some("s")).is_err());
        let mut sec = BTreeMap::new();
        sec.insert("activation-energy".to_string(), "kcal/mol".to_string());
        assert!(close(FileUnits::from_section(&sec).unwrap().activation_energy(2.0, None).unwrap(), 8.368e6));
        sec.insert("colour".to_string(), "red".to_string());
        assert!(FileUnits::from_section(&sec).unwrap_err().contains("allowed: length"));
    }
}
