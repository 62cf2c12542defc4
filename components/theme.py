"""Colours and figure templates in one place: a Bootstrap 5.3 desk theme and its dark variant for screens.

Status colours follow the Okabe–Ito palette (distinguishable with the common colour-vision deficiencies); every
status is also drawn with a shape and a label (format.STATUS_SHAPES), never by colour alone.
"""
from __future__ import annotations

import plotly.graph_objects as go
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
BASE_TEMPLATES = {"light": "bootstrap", "dark": "bootstrap_dark"}
TEMPLATES = {"light": "cockpit", "dark": "cockpit_dark"}
# What the cockpit's figures use of a template: 2-D cartesian and polar layouts, and these trace types. The
# full Bootstrap templates also style 20 other trace types, geo, 3-D scenes and ternary plots; every figure
# carries its template in its JSON and plotly deep-copies it on each build, so the unused parts cost ~7 KB and
# ~15 ms per figure (measured on the overview: 4 figures, 0.44 s of a 1.3 s warm callback).
TRACE_TYPES = ("bar", "scatter", "heatmap", "scatterpolar", "barpolar")
LAYOUT_KEYS = ("annotationdefaults", "autotypenumbers", "coloraxis", "colorscale", "colorway", "font", "hoverlabel",
               "hovermode", "paper_bgcolor", "plot_bgcolor", "polar", "shapedefaults", "title", "xaxis", "yaxis",
               "legend")


def _lean(name: str) -> go.layout.Template:
    full = pio.templates[name].to_plotly_json()
    data = {k: v for k, v in full.get("data", {}).items() if k in TRACE_TYPES}
    layout = {k: v for k, v in full.get("layout", {}).items() if k in LAYOUT_KEYS}
    return go.layout.Template(data=data, layout=layout)


load_figure_template(list(BASE_TEMPLATES.values()))
for _kind, _name in TEMPLATES.items():
    pio.templates[_name] = _lean(BASE_TEMPLATES[_kind])
pio.templates.default = TEMPLATES["light"]


def template(dark: bool = False) -> str:
    return TEMPLATES["dark" if dark else "light"]
