-- PostgreSQL: where a COPY pass starts, so a row the server rejects costs one more pass, not the run.
SAVEPOINT staging_copy;
