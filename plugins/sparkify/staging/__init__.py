"""Staging: what a run stages (the plan, restatement, the song catalog's changes) and how each warehouse
stages it (the PostgreSQL engine: records into binary COPY; the Redshift engine: COPY from S3).
"""
