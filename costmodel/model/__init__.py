"""The symbolic model: residency, costs, policies, outputs (sympy) and break-even analysis."""

from .display import equations, to_latex
from .outputs import BREAKDOWN, OUTPUTS, model_hash, output_names, policy_outputs
from .policies import CANDIDATES, POLICIES, Policy
from .residency import expected_occupancy, residency, residency_by_definition

__all__ = ["BREAKDOWN", "CANDIDATES", "OUTPUTS", "POLICIES", "Policy", "expected_occupancy", "model_hash",
           "output_names", "policy_outputs", "residency", "residency_by_definition", "equations", "to_latex"]
