-- The word index of `q=` becomes optional (`query.text_index`, off by
-- default): maintaining it cost about 60-80 us of the indexer's write per
-- 1 KiB event, more than the table and every other index together, which
-- kept the indexer far below the rate ingest publishes at. Start-up creates
-- it again when the configuration asks for it; without it `q=` still works,
-- by reading each candidate body.
DROP INDEX IF EXISTS events_body_words;
