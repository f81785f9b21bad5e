"""The warehouse: connections and transactions on either driver or the Data API, SQL rendering and
quoting, the run's bound parameters and the audit records.
"""
