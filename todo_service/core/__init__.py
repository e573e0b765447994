"""What every feature builds on: settings, the error type, the request context, shared types."""
