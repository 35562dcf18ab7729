-- Question: What is in this dataset? Inputs by outcome, clips kept and filtered, and the hours and frames of kept footage.
-- Tables: videos, clips
WITH v AS (
    SELECT
        count(*) AS inputs,
        sum(CASE WHEN status IN ('ok', 'partial') THEN 1 ELSE 0 END) AS videos_used,
        sum(CASE WHEN status = 'skipped' THEN 1 ELSE 0 END) AS videos_skipped,
        sum(CASE WHEN status = 'duplicate' THEN 1 ELSE 0 END) AS videos_duplicate,
        sum(CASE WHEN status = 'failed' THEN 1 ELSE 0 END) AS videos_failed
    FROM videos
),
c AS (
    SELECT
        count(*) AS clips,
        sum(CASE WHEN status = 'ok' THEN 1 ELSE 0 END) AS clips_ok,
        sum(CASE WHEN status = 'filtered' THEN 1 ELSE 0 END) AS clips_filtered,
        sum(CASE WHEN status = 'failed' THEN 1 ELSE 0 END) AS clips_failed,
        sum(CASE WHEN status = 'ok' THEN duration_s ELSE 0 END) / 3600.0 AS hours_ok,
        sum(CASE WHEN status = 'ok' THEN num_frames ELSE 0 END) AS frames_ok
    FROM clips
)
SELECT * FROM v CROSS JOIN c;
