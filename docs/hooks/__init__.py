"""MkDocs hooks of the docs site (registered under ``hooks:`` in ``mkdocs.yml``; not pages)."""
