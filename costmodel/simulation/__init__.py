"""The event simulation, split by what it does: arrival processes (:mod:`.arrivals`), the seeded
chunk kernel and its runners (:mod:`.kernel`), pricing from the model (:mod:`.pricing`). The entry
point is :func:`costmodel.simulate.simulate`."""
