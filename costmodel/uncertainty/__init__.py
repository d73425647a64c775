"""How sure is the verdict? Parameter intervals, their propagation to every output, and what
would flip the cheapest policy.

Intervals
---------
:func:`uncertain_parameters` gives every numeric parameter of a point its interval, or none:

* the parameter file's ``ci_low .. ci_high`` where the file has one and the point still holds the
  file's value (``measured``: a bootstrap confidence interval; ``published``: the published range;
  ``assumed``: the range the assumption is meant to cover);
* a parameter the file reports as measured without an interval is taken as exact;
* otherwise :func:`costmodel.registry.default_interval`: the declared plausible range and its
  basis, or a factor ``PRIOR_FACTOR`` either way of the value for a machine cost; nothing for a
  workload parameter, which describes the scenario and stays fixed unless it is widened on
  purpose (``vary={name: (low, high)}``, the commands' ``--vary-range NAME=LO:HI``).

Categorical choices (``gap_model``, ``shootdown_model``, ...) stay fixed and are listed as such.

Distributions
-------------
A file's or the registry's interval is read as a 95% interval around the point's value: a
*two-piece normal* with its median at the value and its 2.5% and 97.5% quantiles at the ends
(a normal of its own width either side, so an asymmetric interval keeps its asymmetry). Where the
interval is positive and spans a factor :data:`LOG_RATIO` or more (and the parameter is not a
probability), this is done in log space (a two-piece log-normal: costs known to a factor). A range given with ``vary`` is read as "anywhere
in it": uniform, or log-uniform under the same rule. Every draw is an inverse-CDF transform of a
uniform restricted to the quantiles of the registry bounds, so draws are truncated at the bounds
without piling up on them; integer parameters are rounded (a range given for one reaches half a
unit past its ends, so each whole number in it is equally likely). Parameters are independent, except
those a fit record says were identified only as a sum (``identifiable``: ``a + b``): they were
split from one measurement in a fixed ratio, so they share one uniform (move together). A draw
that breaks a rule between parameters (:data:`costmodel.registry.CONSTRAINTS`) is drawn again.

Seeds
-----
Draws come in blocks of :data:`DRAW_BLOCK`; block ``i`` comes from
``PCG64(SeedSequence(seed, spawn_key=(i,)))``, so the first ``n`` draws of a seed are the same
whatever ``n``, and a grid cut into chunks (here, or on a Dask cluster) uses the same draws in
every chunk and gives the same numbers wherever each chunk ran.

Outputs
-------
:func:`propagate` evaluates the compiled model (:func:`costmodel.evaluate.evaluate_arrays`) at
every draw: each output's median and 95% interval, and for each candidate policy the probability
that it is the cheapest (ties within :data:`TIE_RTOL` split evenly). :func:`propagate_grid` does
the same over many points at once (sweeps, bands, the probability map). :func:`sensitivity`
gives elasticities from the sympy model, the values at which each parameter alone flips the
cheapest candidate (:func:`costmodel.breakeven.breakeven`), and how much knowing each parameter
exactly would be expected to raise the probability of the verdict: the ranking of what to
measure next.

Modules
-------
One job each; this package's face hands their public names on, so ``uncertainty.propagate`` and
the rest read as before:

* :mod:`~costmodel.uncertainty.draws`: each parameter's interval and distribution, the draws;
* :mod:`~costmodel.uncertainty.propagate`: the draws through the model at one point;
* :mod:`~costmodel.uncertainty.grid`: the same at many points, in chunks, optionally on Dask;
* :mod:`~costmodel.uncertainty.gradients`: elasticities from the sympy model;
* :mod:`~costmodel.uncertainty.flips`: where one parameter alone flips the cheapest candidate;
* :mod:`~costmodel.uncertainty.sensitivity`: the ranking of what to measure next.
"""

from .draws import (ASSUMED, DRAW_BLOCK, DRAWS, FIXED, LOG_RATIO, LOG_TWO_PIECE, LOG_UNIFORM, MEASURED, PUBLISHED,
                    TWO_PIECE, UNIFORM, VARIED, UncertainParameter, draw, measured_targets, parameter_table,
                    parse_vary_ranges, split_sums, sum_groups, uncertain_parameters)
from .flips import Flip, flip_values, rival_margin
from .gradients import elasticities
from .grid import GridUncertainty, propagate_grid
from .propagate import CONFIDENCE, TIE_RTOL, Propagation, cheapest_shares, propagate
from .sensitivity import Sensitivity, sensitivity

__all__ = [
    "ASSUMED", "CONFIDENCE", "DRAW_BLOCK", "DRAWS", "FIXED", "LOG_RATIO", "LOG_TWO_PIECE", "LOG_UNIFORM", "MEASURED",
    "PUBLISHED", "TIE_RTOL", "TWO_PIECE", "UNIFORM", "VARIED",
    "Flip", "GridUncertainty", "Propagation", "Sensitivity", "UncertainParameter",
    "cheapest_shares", "draw", "elasticities", "flip_values", "measured_targets", "parameter_table",
    "parse_vary_ranges", "propagate", "propagate_grid", "rival_margin", "sensitivity", "split_sums", "sum_groups",
    "uncertain_parameters",
]
