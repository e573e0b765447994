"""System: liveness and readiness probes."""
