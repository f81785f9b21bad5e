{#- The songplay identity, in one place for the fact's select and the late-song update: an event's
    ts, sessionId, itemInSession and userId. The id puts ts first, so ids sort by time and the key
    index grows at its end; the partition ranks the rows of one event (a duplicate, several matches). -#}

{% macro songplay_id(e) -%}
{{ e }}.ts::VARCHAR || '-' || COALESCE({{ e }}.session_id::VARCHAR, '') || '-' || COALESCE({{ e }}.item_in_session::VARCHAR, '') || '-' || COALESCE({{ e }}.user_id, '')
{%- endmacro %}

{#- A play's start_time: its event's ts (epoch milliseconds, UTC) as a timestamp. The songplays key on
    PostgreSQL leads with it (macros/dialect.sql, primary_key): a lookup by id gives it too. -#}
{% macro start_time(e) -%}
TIMESTAMP 'epoch' + {{ e }}.ts * INTERVAL '1 millisecond'
{%- endmacro %}

{% macro per_event(e) -%}
PARTITION BY {{ e }}.ts, {{ e }}.session_id, {{ e }}.item_in_session, {{ e }}.user_id
{%- endmacro %}

{#- A play matches a catalog song by title, artist name and a duration within the tolerance. -#}
{% macro matches_song(e, s) -%}
{{ s }}.title = {{ e }}.song AND {{ s }}.artist_name = {{ e }}.artist AND ABS({{ s }}.duration - {{ e }}.length) <= %(duration_tolerance)s
{%- endmacro %}
