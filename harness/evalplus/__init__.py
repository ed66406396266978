"""evalplus: see the README's Layout."""
