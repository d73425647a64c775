"""Calibration: generic robust fitting (:mod:`.fitting`), the fit recipes through the model's own
expressions (:mod:`.recipes`), the adapters from a measurement directory to a parameter set
(:mod:`.adapters`), and the posterior-predictive check of a calibrated set (:mod:`.check`).
The public entry points are re-exported by :mod:`costmodel.calibrate`."""
