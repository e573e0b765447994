"""Administration: users and the audit trail (``/api/v1/admin``), for admins only."""
