-- Appends the selected rows; the select itself leaves out rows the table already has.
{%- import 'macros/dialect.sql' as d %}
{{ d.lock(dialect, table) }};
INSERT INTO {{ table }}
{{ select }};
