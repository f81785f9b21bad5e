-- PostgreSQL: undoes a COPY pass the server stopped on a bad row, keeping the rest of the transaction.
ROLLBACK TO SAVEPOINT staging_copy;
