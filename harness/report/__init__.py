"""The report, built from a run directory alone (build) into a view model (model), rendered to markdown
and HTML (render)."""
