"""Recommendation models, split by subdomain and re-exported here."""
