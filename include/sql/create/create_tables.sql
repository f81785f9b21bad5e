-- Creates the staging tables, the load record and the star schema if they do not exist (idempotent).
-- Rendered with `dialect`, the warehouse connection's type (WarehouseSQLOperator gives it).
{%- import 'macros/dialect.sql' as d with context %}
{{ d.ddl_lock() }}

{{ d.rebuild_batch_staging() }}

-- Raw events as the app writes them, one row per JSON line of the object version staged last
-- (object_key, under the source's base URI); batch_id is the run that staged it. Loads read
-- it by time (ts), whatever object holds an event.
CREATE TABLE IF NOT EXISTS staging_events (
    artist           VARCHAR(512),
    auth             VARCHAR(32),
    first_name       VARCHAR(256),
    gender           VARCHAR(16),
    item_in_session  INTEGER,
    last_name        VARCHAR(256),
    length           DOUBLE PRECISION,
    level            VARCHAR(16),
    location         VARCHAR(512),
    method           VARCHAR(16),
    page             VARCHAR(64),
    registration     DOUBLE PRECISION,
    session_id       INTEGER,
    song             VARCHAR(512),
    status           INTEGER,
    ts               BIGINT,
    user_agent       VARCHAR(1024),
    user_id          VARCHAR(64),
    object_key       VARCHAR(1024) NOT NULL,
    batch_id         VARCHAR(256) NOT NULL
){{ d.table_layout('EVEN', sortkey='ts') }};
{{ d.index('staging_events_ts_idx', 'staging_events', 'ts') }}

-- The song catalog as staged so far, one row per song file.
CREATE TABLE IF NOT EXISTS staging_songs (
    num_songs         INTEGER,
    artist_id         VARCHAR(32),
    artist_latitude   DOUBLE PRECISION,
    artist_longitude  DOUBLE PRECISION,
    artist_location   VARCHAR(512),
    artist_name       VARCHAR(512),
    song_id           VARCHAR(32),
    title             VARCHAR(512),
    duration          DOUBLE PRECISION,
    year              INTEGER,
    batch_id          VARCHAR(256) NOT NULL
){{ d.table_layout('ALL', sortkey='title') }};
{{ d.index('staging_songs_batch_idx', 'staging_songs', 'batch_id') }}
{{ d.index('staging_songs_title_idx', 'staging_songs', 'title, artist_name') }}

-- Every object version staged into a staging table: the version (ETag on S3, size and modification
-- time in a folder) decides whether a listed object must be staged again; row_count, first_ts and
-- last_ts (epoch ms) say which hours its rows cover, so a change restates them; used_at is the last
-- time a run listed it, so retention drops only objects no run has needed for a while. rejected_at
-- marks a version refused as bad (more bad records than max_errors), rejected_reason says why (the object
-- and its first bad line): runs skip it, or fail on it, until it changes.
CREATE TABLE IF NOT EXISTS staged_objects (
    table_name   VARCHAR(128)  NOT NULL,
    object_key   VARCHAR(1024) NOT NULL,
    version      VARCHAR(256)  NOT NULL,
    batch_id     VARCHAR(256)  NOT NULL,
    staged_at    TIMESTAMP     NOT NULL,
    used_at      TIMESTAMP     NOT NULL,
    row_count    BIGINT,
    first_ts     BIGINT,
    last_ts      BIGINT,
    rejected_at  TIMESTAMP,
    rejected_reason VARCHAR(1024),
    PRIMARY KEY (table_name, object_key)
){{ d.table_layout('ALL') }};
{{ d.add_column('staged_objects', 'rejected_reason', 'VARCHAR(1024)') }}

-- The intervals runs have loaded: an hour counts as loaded once a run whose interval holds it has staged
-- its events (recorded in that staging's transaction). A change to an object restates only hours loaded
-- before; an hour no run has asked for is left to its own run.
CREATE TABLE IF NOT EXISTS loaded_intervals (
    table_name      VARCHAR(128) NOT NULL,
    batch_id        VARCHAR(256) NOT NULL,
    interval_start  TIMESTAMP    NOT NULL,
    interval_end    TIMESTAMP    NOT NULL,
    recorded_at     TIMESTAMP    NOT NULL
){{ d.table_layout('ALL', sortkey='interval_start') }};
{{ d.index('loaded_intervals_start_idx', 'loaded_intervals', 'table_name, interval_start') }}

-- The hours a staging task found changed before its own interval (an object new, rewritten or gone
-- since it was staged), among those loaded before, with the object that caused it: the run's loads and
-- checks cover them too.
-- A retry of the run keeps them, so a run cleared after staging still restates what it found.
CREATE TABLE IF NOT EXISTS restatements (
    batch_id     VARCHAR(256)  NOT NULL,
    table_name   VARCHAR(128)  NOT NULL,
    object_uri   VARCHAR(1024) NOT NULL,
    change       VARCHAR(16)   NOT NULL,
    hours_start  TIMESTAMP     NOT NULL,
    hours_end    TIMESTAMP     NOT NULL,
    recorded_at  TIMESTAMP     NOT NULL
){{ d.table_layout('ALL', sortkey='recorded_at') }};
{{ d.index('restatements_batch_idx', 'restatements', 'batch_id') }}

-- Each full listing of a catalog that committed (stage_songs). With the notification queue set
-- (Variable sparkify_catalog_queue), a run lists the catalog again only once the last listing is
-- older than sparkify_catalog_reconcile_hours; found_by_listing_only counts the files a listing
-- staged that no notification named (lost or late ones), NULL when no queue is set.
CREATE TABLE IF NOT EXISTS catalog_listings (
    table_name             VARCHAR(128) NOT NULL,
    batch_id               VARCHAR(256) NOT NULL,
    listed_at              TIMESTAMP    NOT NULL,
    objects_listed         BIGINT       NOT NULL,
    objects_staged         BIGINT       NOT NULL,
    found_by_listing_only  BIGINT
){{ d.table_layout('ALL', sortkey='listed_at') }};

-- Records a staging task rejected (bad JSON, wrong type, too large…), kept with their object and
-- line so they can be fixed and reloaded; staging a new version of the object replaces them. raw_line is NULL on
-- Redshift, whose SYS_LOAD_ERROR_DETAIL names the object and line but does not keep the text.
CREATE TABLE IF NOT EXISTS quarantine (
    table_name   VARCHAR(128)   NOT NULL,
    batch_id     VARCHAR(256)   NOT NULL,
    object_uri   VARCHAR(1024)  NOT NULL,
    line_number  BIGINT         NOT NULL,
    error        VARCHAR(1024)  NOT NULL,
    raw_line     VARCHAR(65535),
    recorded_at  TIMESTAMP      NOT NULL
){{ d.table_layout('ALL', sortkey='recorded_at') }};
{{ d.index('quarantine_object_idx', 'quarantine', 'table_name, object_uri') }}

-- What each staging and load task did, per run and table, so a run can be reconciled later.
-- rows_written and rows_rejected are NULL where the warehouse does not report them to the client
-- (Redshift COPY; rejected counts through the Data API).
CREATE TABLE IF NOT EXISTS load_audit (
    batch_id        VARCHAR(256)   NOT NULL,
    task_id         VARCHAR(256)   NOT NULL,
    table_name      VARCHAR(128)   NOT NULL,
    interval_start  TIMESTAMP      NOT NULL,
    interval_end    TIMESTAMP      NOT NULL,
    rows_read       BIGINT,
    rows_written    BIGINT,
    rows_rejected   BIGINT,
    object_count    INTEGER        NOT NULL,
    source_objects  VARCHAR(65535),
    recorded_at     TIMESTAMP      NOT NULL
){{ d.table_layout('ALL', sortkey='interval_start') }};
{{ d.index('load_audit_batch_idx', 'load_audit', 'batch_id') }}

-- Fact: one row per NextSong event. songplay_id is the event's identity
-- (ts-sessionId-itemInSession-userId), so a re-run produces the same ids. Its ts is start_time, so
-- (start_time, songplay_id) is unique exactly when songplay_id is: on PostgreSQL the key is declared
-- that way, one index for the key and for the loads' and checks' reads by time (the macro says why).
-- Redshift layout: DISTKEY (start_time), shared with "time", its largest join partner (one time row
-- per play), so that join never moves rows. Millisecond timestamps hash evenly over the slices, so
-- an hour's rows still spread over all of them (unlike a DATE key). Not song_id: plays that match
-- no catalog song have a NULL song_id, and every NULL hashes to the same slice. SORTKEY (start_time):
-- each run deletes and reloads one interval, and most questions filter on time; zone maps skip the rest.
CREATE TABLE IF NOT EXISTS songplays (
    songplay_id  VARCHAR(128) NOT NULL,
    start_time   TIMESTAMP   NOT NULL,
    user_id      VARCHAR(64),
    level        VARCHAR(16),
    song_id      VARCHAR(32),
    artist_id    VARCHAR(32),
    session_id   INTEGER,
    location     VARCHAR(512),
    user_agent   VARCHAR(1024),
    {{ d.primary_key('songplay_id', leading='start_time') }}
){{ d.table_layout('KEY', distkey='start_time', sortkey='start_time') }};

-- last_seen_at is the ts of the event the row was taken from: it lets hours
-- load in any order and still keep each user's latest event.
-- Redshift layout: DISTSTYLE ALL, a small dimension (one row per user) copied to every node, so
-- joins from songplays on user_id never redistribute; SORTKEY (user_id) for the upsert by key.
CREATE TABLE IF NOT EXISTS users (
    user_id       VARCHAR(64) NOT NULL PRIMARY KEY,
    first_name    VARCHAR(256),
    last_name     VARCHAR(256),
    gender        VARCHAR(16),
    level         VARCHAR(16),
    last_seen_at  TIMESTAMP   NOT NULL
){{ d.table_layout('ALL', sortkey='user_id') }};

-- Redshift layout: the big dimension (the catalog, about a million songs, growing every hour) is
-- too large to copy to every node. DISTKEY (song_id) spreads it evenly on its unique key, and the
-- upsert's temporary table (CREATE TABLE ... LIKE songs) inherits that key, so its delete-by-key
-- join never moves rows; SORTKEY (song_id) for the same join.
CREATE TABLE IF NOT EXISTS songs (
    song_id    VARCHAR(32)  NOT NULL PRIMARY KEY,
    title      VARCHAR(512),
    artist_id  VARCHAR(32),
    year       INTEGER,
    duration   DOUBLE PRECISION
){{ d.table_layout('KEY', distkey='song_id', sortkey='song_id') }};

-- Redshift layout: DISTSTYLE ALL, fewer artists than songs and joined from both songs and
-- songplays on artist_id, which then never redistributes; SORTKEY (artist_id) for the upsert by key.
CREATE TABLE IF NOT EXISTS artists (
    artist_id  VARCHAR(32)  NOT NULL PRIMARY KEY,
    name       VARCHAR(512),
    location   VARCHAR(512),
    latitude   DOUBLE PRECISION,
    longitude  DOUBLE PRECISION
){{ d.table_layout('ALL', sortkey='artist_id') }};

-- Redshift layout: one row per distinct songplay start_time, so nearly as many rows as songplays:
-- too big for ALL. DISTKEY (start_time) puts each row on the slice of its songplays (see above);
-- SORTKEY (start_time) for the run's NOT EXISTS lookup of the interval's times.
CREATE TABLE IF NOT EXISTS "time" (
    start_time  TIMESTAMP NOT NULL PRIMARY KEY,
    hour        INTEGER,
    day         INTEGER,
    week        INTEGER,
    month       INTEGER,
    year        INTEGER,
    weekday     INTEGER
){{ d.table_layout('KEY', distkey='start_time', sortkey='start_time') }};
