"""serving: see the README's Layout."""
