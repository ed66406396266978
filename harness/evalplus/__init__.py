"""HumanEval+/MBPP+: datasets, code generation on the host, and evaluation only inside the sandbox."""
