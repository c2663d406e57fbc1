"""Mechanism files against Cantera's own kinetics: the same YAML read by both, the same rates.

Cantera (``pip install cantera``) evaluates the net production rates ``wdot = S r`` of a file in
kmol/m³/s at concentrations in kmol/m³; stiffx reads the same file (its Cantera subset plus the
``stiffx:`` section) and computes ``F(x, eps = 1)`` in the file's own units. The shipped Robertson and
POLLU files use Cantera's default units, so the numbers must agree directly; a file with a ``units:``
section, unit strings and Arrhenius temperature dependence checks the unit conversion. HIRES is not
compared: its zero-order source ``=> Y1`` is not a reaction Cantera can read.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import stiffx
from conftest import REPO

ct = pytest.importorskip("cantera", reason="Cantera is installed by scripts/python_tests.sh")


def cantera_at(gas, c: np.ndarray):
    """Cantera's net production rates and their Jacobian at concentrations ``c`` (kmol/m³)."""
    gas.concentrations = c
    ddc = gas.net_production_rates_ddCi  # dense, or scipy.sparse with `derivative_settings` sparse
    return gas.net_production_rates.copy(), np.asarray(ddc.toarray() if hasattr(ddc, "toarray") else ddc)


@pytest.mark.parametrize("name", ["robertson", "pollu"])
def test_shipped_mechanisms_agree_with_cantera(name: str) -> None:
    path = REPO / "mechanisms" / f"{name}.yaml"
    gas = ct.Solution(str(path))
    sys_ = stiffx.system({"type": "mechanism", "file": str(path)})
    assert sys_.state_names == gas.species_names
    rng = np.random.default_rng(7)
    worst_f = worst_j = 0.0
    for _ in range(20):
        # Concentrations over several decades, as in a stiff transient.
        c = 10.0 ** rng.uniform(-6, 0, gas.n_species)
        gas.TP = 300.0, ct.one_atm
        wdot, ddc = cantera_at(gas, c)
        c_back = gas.concentrations  # Cantera may round c through its density
        f = sys_.rhs(c_back, 1.0)
        j = sys_.jacobian(c_back, 1.0)
        worst_f = max(worst_f, np.linalg.norm(f - wdot) / np.linalg.norm(wdot))
        worst_j = max(worst_j, np.linalg.norm(j - ddc) / np.linalg.norm(ddc))
    print(f"{name}: max relative difference to Cantera: rhs {worst_f:.2e}, jacobian {worst_j:.2e}")
    assert worst_f < 1e-12, worst_f
    assert worst_j < 1e-12, worst_j


UNITS_FILE = """
description: hydrogen-oxygen steps in cgs units with Arrhenius temperature dependence
units: {length: cm, quantity: mol, activation-energy: cal/mol}
phases:
- name: gas
  thermo: ideal-gas
  elements: [H, O]
  species: all
  kinetics: gas
  state: {T: 1500.0, P: 1 atm}
species:
- {name: H2, composition: {H: 2}, thermo: {model: constant-cp}}
- {name: O2, composition: {O: 2}, thermo: {model: constant-cp}}
- {name: OH, composition: {H: 1, O: 1}, thermo: {model: constant-cp}}
- {name: H2O, composition: {H: 2, O: 1}, thermo: {model: constant-cp}}
- {name: H, composition: {H: 1}, thermo: {model: constant-cp}}
- {name: O, composition: {O: 1}, thermo: {model: constant-cp}}
- {name: H2O2, composition: {H: 2, O: 2}, thermo: {model: constant-cp}}
reactions:
- equation: H2 + O2 => 2 OH
  rate-constant: {A: 1.7e13, b: 0, Ea: 47780}
- equation: OH + H2 => H2O + H
  rate-constant: {A: 1.17e9, b: 1.3, Ea: 3626}
- equation: H + O2 => OH + O
  rate-constant: {A: 2.0e14 cm^3/mol/s, b: 0, Ea: 70.3 kJ/mol}
- equation: O + H2 => OH + H
  rate-constant: {A: 1.8e10, b: 1.0, Ea: 4440 K}
- equation: H2O2 => 2 OH
  rate-constant: {A: 6.0e15 1/min, b: 0, Ea: 48400}
- equation: 2 OH => H2O2
  rate-constant: [7.4e13, -0.37, 0]
stiffx:
  temperature: 1500.0
  train-eps: [1.0]
  unseen-eps: [1.0]
  initial: {H2: [0, 1.0e-5], O2: [0, 1.0e-5]}
  test-states: [{H2: 5.0e-6, O2: 2.5e-6}]
  horizon: 1.0e-3
"""


def test_units_and_arrhenius_agree_with_cantera(tmp_path: Path) -> None:
    path = tmp_path / "h2o2_cgs.yaml"
    path.write_text(UNITS_FILE)
    gas = ct.Solution(str(path))
    sys_ = stiffx.system({"type": "mechanism", "file": str(path)})
    mol_per_cm3 = 1e3  # kmol/m³ per mol/cm³: stiffx computes in the file's concentration unit
    rng = np.random.default_rng(3)
    worst_f = worst_j = 0.0
    for _ in range(20):
        gas.TPX = 1500.0, ct.one_atm, rng.uniform(0.01, 1.0, gas.n_species)
        wdot, ddc = cantera_at(gas, gas.concentrations)
        x = gas.concentrations / mol_per_cm3
        f = sys_.rhs(x, 1.0) * mol_per_cm3
        j = sys_.jacobian(x, 1.0)  # (mol/cm³/s)/(mol/cm³) = 1/s, the same as Cantera's ddC
        worst_f = max(worst_f, np.linalg.norm(f - wdot) / np.linalg.norm(wdot))
        worst_j = max(worst_j, np.linalg.norm(j - ddc) / np.linalg.norm(ddc))
    print(f"cgs + Arrhenius: max relative difference to Cantera: rhs {worst_f:.2e}, jacobian {worst_j:.2e}")
    assert worst_f < 1e-12, worst_f
    assert worst_j < 1e-12, worst_j


def test_a_wrong_unit_dimension_is_a_named_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(UNITS_FILE.replace("2.0e14 cm^3/mol/s", "2.0e14 1/s"))
    with pytest.raises(stiffx.StiffxError, match=r"bad.yaml:\d+:\d+: reaction 3 .*order 2"):
        stiffx.system({"type": "mechanism", "file": str(path)})
