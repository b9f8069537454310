"""The seed's CRM, used by ``auditkeeper demo``, the docs and the tests."""
