"""Colours and figure templates in one place: a Bootstrap 5.3 desk theme and its dark variant for screens.

Status colours follow the Okabe–Ito palette (distinguishable with the common colour-vision deficiencies); every
status is also drawn with a shape and a label (format.STATUS_SHAPES), never by colour alone.
"""
from __future__ import annotations

import plotly.io as pio
from dash_bootstrap_templates import load_figure_template

STATUS_COLORS = {
    "green": "#009E73",
    "amber": "#E69F00",
    "red": "#D55E00",
    "none": "#0072B2",
    "nodata": "#999999",
    "suppressed": "#999999",
}
ACCENT = "#0072B2"
# Okabe–Ito colours for series that carry no status (a school against its peers' median, P75 and best), and the
# grey of reference lines. Sequential scales (levels, heatmaps) use plotly's named "Blues".
SERIES_COLORS = ("#0072B2", "#CC79A7", "#56B4E9", "#009E73", "#E69F00", "#D55E00", "#000000")
NEUTRAL = "#7F7F7F"
TEMPLATES = {"light": "bootstrap", "dark": "bootstrap_dark"}

load_figure_template(list(TEMPLATES.values()))
pio.templates.default = TEMPLATES["light"]


def template(dark: bool = False) -> str:
    return TEMPLATES["dark" if dark else "light"]
