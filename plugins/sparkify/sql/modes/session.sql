-- Settings for the transaction a load runs in (PostgreSQL only): room for the sorts and hashes of a
-- big interval in memory, instead of spilling them to disk.
{%- import 'macros/dialect.sql' as d with context %}
{{ d.load_settings() }}
