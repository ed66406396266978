"""regress: see the README's Layout."""
