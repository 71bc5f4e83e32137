-- Payload search (issue 20). A body is bytes; these functions read it as
-- JSON or as UTF-8 text and answer NULL (never an error) when it is not,
-- so a body that is not JSON never matches a `json=` filter and never
-- breaks a query or an insert. They are IMMUTABLE so that indexes can be
-- built on them: `events_body_words` serves `q=` (words of the body, the
-- 'simple' configuration: lower-cased, no stemming), and the pointers
-- configured in a source's `index` get expression indexes on
-- `hookgate_json_value(body, path)` at start-up. The functions that catch
-- errors open a subtransaction, which parallel workers cannot: they are
-- PARALLEL RESTRICTED (evaluated by the leader only).

CREATE FUNCTION hookgate_body_json(body bytea) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL RESTRICTED AS $$
BEGIN
    RETURN convert_from(body, 'UTF8')::jsonb;
EXCEPTION WHEN others THEN
    RETURN NULL;
END
$$;

-- The scalar at `path` as text: a string's content, a number's or boolean's
-- JSON spelling; NULL for objects, arrays, null and absent values.
CREATE FUNCTION hookgate_json_value(body bytea, path text[]) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL RESTRICTED AS $$
DECLARE
    found jsonb := hookgate_body_json(body) #> path;
BEGIN
    IF found IS NULL OR jsonb_typeof(found) IN ('object', 'array', 'null') THEN
        RETURN NULL;
    END IF;
    RETURN found #>> '{}';
END
$$;

-- Words are runs of letters and digits, as SQLite's FTS5 `unicode61` sees
-- them: everything else separates words (PostgreSQL's parser alone would
-- keep `acme/api` or `a@b.example` as one token). A tsvector holds at most
-- 1 MB of positions: a body beyond what it can take has no words (q= does
-- not find it) rather than failing its insert.
CREATE FUNCTION hookgate_words(text text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN regexp_replace(text, '[^[:alnum:]]+', ' ', 'g');

CREATE FUNCTION hookgate_body_words(body bytea) RETURNS tsvector
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL RESTRICTED AS $$
BEGIN
    RETURN to_tsvector('simple'::regconfig, hookgate_words(convert_from(body, 'UTF8')));
EXCEPTION WHEN others THEN
    RETURN NULL;
END
$$;

CREATE INDEX events_body_words ON events USING gin (hookgate_body_words(body));
