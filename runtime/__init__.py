"""Tollgate: a sandboxed, multi-tenant runtime for login actions.

Tenants' JavaScript actions (the Auth0 Actions dialect) are compiled to
WebAssembly bytecode and run in a fresh wasmtime sandbox per execution.
"""

__version__ = "0.1.0"
