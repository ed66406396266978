"""Regressions: outcome sets from result files, scenario-by-scenario comparison, baselines and the gate."""
