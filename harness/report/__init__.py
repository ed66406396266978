"""report: see the README's Layout."""
