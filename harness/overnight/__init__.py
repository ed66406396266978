"""overnight: see the README's Layout."""
