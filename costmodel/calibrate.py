"""Fit machine parameters to measurements: the public face of calibration.

What each probe identifies (``costmodel bench`` writes the tidy rows this module reads):

==============================  ================================================================
parameters                      from
==============================  ================================================================
``cold_fault_ns``               ``fault_cost`` op=reuse_first_after_fork (the first write after a
                                fork, timed alone) minus op=reuse_after_fork (rounds of 16 writes
                                after a fork, one of them cold): 15/16 of the cold-path cost
``fault_entry_ns + reuse_ns``   ``fault_cost`` op=reuse_after_fork less its cold share. Only the
                                **sum** is identifiable (the model's reuse fault is their sum); it
                                is split in the ratio of the registry defaults (assumed): each part
                                is marked a split, its interval 0 to the whole measured sum, and the
                                record's ``splits`` let uncertainty draw the sum and a uniform share
``copy_bandwidth_gbps``         ``copy_bandwidth`` op=copy_4k cache_state=cold (the copy step)
``alloc_ns + local_flush_ns     ``fault_cost`` op=copy_child_alive less what the two above fixed:
+ free_ns``                     the sum of the rest of the model's copy fault, split likewise
``shootdown_*``                 ``shootdown`` op=mprotect_ro: siblings spinning minus asleep, per
                                target count. With >= 3 target counts the shape (linear, log2,
                                broadcast) is chosen by an information criterion; with fewer the
                                published multi-CPU curve's shape and split are taken, anchored at
                                the measured point, the other shapes spanned by the interval
``drain_base_ns``,              ``drain_cost``: cost against the folios (>= 1) in the local batch,
``drain_per_folio_ns``          a straight line through the means (plain weighted least squares)
``batch_size``                  ``unnecessary_copy``, cross-CPU writes of small pages: binomial
                                likelihood of the copy fractions the model's residency gives,
                                profiled over integer B
``drain_all_base_ns``,          ``remote_drain``: fadvise on a mapped page (drain-all, no CPU
``remote_drain*_ns``            needing a drain) minus the same call on a hole; per remote CPU
                                state, the sealed memfd whose folio sits in the other CPU's batch
                                minus the seal whose folio the local drain frees, less that base
==============================  ================================================================

Every recipe goes through the model's own expressions (:mod:`costmodel.model.forward`): which
parameters a measurement identifies only as a sum is derived there, never written by hand. Costs
are taken as **means** where the measurement set has them (the model's expected cost is a mean;
heavy tails carry weight), as medians in sets written before the summary had means; each fit
record says which (``statistic``). Intervals are 95 % parametric bootstrap intervals with a fixed
seed; calibrating the same directory twice gives the same file, byte for byte. Parameters no probe
measures here (``drain_all_per_cpu_ns`` needs more than 2 CPUs) keep their registry defaults
marked ``assumed``. A fit that cannot be made stops with a message naming what is missing, or,
with ``allow_defaults``, leaves its parameters at the defaults marked ``assumed``.

A recording of several rounds (``costmodel bench --repeat N``) is calibrated pooled, and each
round on its own as well: the fit record ``rounds`` keeps every round's machine parameters (the
host's drift between rounds). The record ``model_check`` sets the model beside whole faults no fit
used (fault_cost's first copy after a fork, with and without a spinning sibling, and the reuse that
drains its one folio): the model's own error on faults like a workload's. ``costmodel predict``
widens its intervals by both.
:func:`posterior_predictive` checks a calibrated set against the measurements it came from.

The work is split by what it does: :mod:`costmodel.calibration.fitting` (generic robust fitting),
:mod:`costmodel.calibration.recipes` (the fits, through the model),
:mod:`costmodel.calibration.adapters` (from a measurement directory to a parameter set),
:mod:`costmodel.calibration.check` (the posterior-predictive check). Reference
sets built from published figures are not calibration: :mod:`costmodel.reference`.
"""

from .calibration.adapters import (FIT_GROUPS, GROUP_PROBES, STATISTICS, calibrate, calibrate_frame,
                                   calibrate_to_file, read_measurements, select, shootdown_from_will_it_scale,
                                   standard_errors)
from .calibration.check import posterior_predictive
from .calibration.fitting import (LEVEL, N_BOOT, SEED, CurveFit, Estimate, FitOutcome, assumed,
                                  bootstrap_curve, fit_curve, information_criterion, prior_interval)
from .calibration.recipes import (DRAIN_PARAMS, FAULT_AND_COPY_PARAMS, REMOTE_PARAMS, SHOOTDOWN_PARAMS,
                                  Obs, copy_fraction, fit_batch_size, fit_drain, fit_fault_and_copy,
                                  fit_remote_drain, fit_shootdown, published_shootdown_shape, shootdown_shape,
                                  shootdown_shapes, solve_measurement)

__all__ = ['FIT_GROUPS', 'GROUP_PROBES', 'STATISTICS', 'calibrate', 'calibrate_frame', 'calibrate_to_file', 'posterior_predictive', 'read_measurements', 'select', 'shootdown_from_will_it_scale', 'standard_errors', 'LEVEL', 'N_BOOT', 'SEED', 'CurveFit', 'Estimate', 'FitOutcome', 'assumed', 'bootstrap_curve', 'fit_curve', 'information_criterion', 'prior_interval', 'DRAIN_PARAMS', 'FAULT_AND_COPY_PARAMS', 'REMOTE_PARAMS', 'SHOOTDOWN_PARAMS', 'Obs', 'copy_fraction', 'fit_batch_size', 'fit_drain', 'fit_fault_and_copy', 'fit_remote_drain', 'fit_shootdown', 'published_shootdown_shape', 'shootdown_shape', 'shootdown_shapes', 'solve_measurement']
