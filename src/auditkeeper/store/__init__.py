"""Store layer: writing audit rows and keeping the catalogue of codes."""
