"""Authentication: registration, login, logout, tokens and who may do what."""
