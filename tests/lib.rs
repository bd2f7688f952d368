//! Shared set-up for the end-to-end tests: see `testbed` for the stack.
