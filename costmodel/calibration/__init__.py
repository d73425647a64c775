"""Calibration: generic robust fitting (:mod:`.fitting`), the fit recipes through the model's own
expressions (:mod:`.recipes`), and the adapters from a measurement directory to a parameter set
with its posterior-predictive check (:mod:`.adapters`). The public entry points are re-exported by
:mod:`costmodel.calibrate`."""
