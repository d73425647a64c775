# The notebooks' static copies without a network (no require.js, MathJax or widget scripts from a
# CDN): jupyter nbconvert --config jupyter_nbconvert_config.py --to html --execute notebooks/NAME.ipynb
# (`make notebooks` does this for the three); see costmodel.notebook.OFFLINE_TEMPLATE.
from costmodel.notebook import configure_nbconvert

configure_nbconvert(c)  # noqa: F821  (c: the configuration nbconvert hands this file)
