"""SQL: every SQL file parsed for both warehouses, the exact statements sent on Redshift, the golden COPY
transactions, the least-privilege roles."""
