-- Listing by source and type together: without it a page of a rare type
-- walks events_by_source newest first and filters out every other type of
-- the source. This index answers the pair, newest first, as a range scan of
-- exactly one page (the same index as on PostgreSQL).
CREATE INDEX events_by_source_type ON events (source, event_type, received_at DESC, id DESC);
