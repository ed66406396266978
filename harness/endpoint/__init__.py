"""endpoint: see the README's Layout."""
