"""The command line: the parser and the one error boundary (main), and one module of verbs per concern."""
