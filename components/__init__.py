"""Pure factories: data in, Dash components and Plotly figures out. No I/O, no SQL.

Widgets with their own behaviour (the scope bar, the shell's navigation) carry their callbacks with them, as
All-in-One components with namespaced ids; those callbacks compute URLs only.
"""
