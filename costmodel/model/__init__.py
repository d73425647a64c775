"""The symbolic model: residency, costs, policies, outputs (sympy) and break-even analysis."""

from .display import equations, to_latex
from .outputs import BREAKDOWN, OUTPUT_BY_NAME, OUTPUT_DECLARATIONS, OUTPUTS, Output, model_hash, output_names, policy_outputs
from .policies import CANDIDATES, POLICIES, Policy
from .residency import expected_occupancy, residency, residency_by_definition

__all__ = ["BREAKDOWN", "CANDIDATES", "OUTPUT_BY_NAME", "OUTPUT_DECLARATIONS", "OUTPUTS", "Output", "POLICIES", "Policy", "expected_occupancy", "model_hash",
           "output_names", "policy_outputs", "residency", "residency_by_definition", "equations", "to_latex"]
