"""HTTP concerns: headers, trusted hosts, strict input, the OpenAPI document and its docs pages."""
