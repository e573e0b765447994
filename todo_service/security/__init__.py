"""Who is calling and what they may do: access tokens, passwords, login sessions, lockout, the permission guard.

Every feature builds on this package; the ``auth`` feature (the ``/auth`` routes) is one of them.
"""
