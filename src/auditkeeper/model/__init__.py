"""Model layer: the audit tables, their column types, value encoding and DDL."""
