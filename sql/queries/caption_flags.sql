-- Question: How often did the captioner answer with a reserved flag (not_enough_information, single_image, no_movement), hit its token limit, or fail?
-- Tables: captions
-- Chart: bar label=flag value=captions
SELECT flag, captions FROM (
    SELECT flag, count(*) AS captions FROM (SELECT unnest(flags) AS flag FROM captions WHERE status = 'ok') AS flagged GROUP BY flag
    UNION ALL
    SELECT 'truncated' AS flag, count(*) AS captions FROM captions WHERE truncated
    UNION ALL
    SELECT 'failed' AS flag, count(*) AS captions FROM captions WHERE status = 'failed'
) AS counts
ORDER BY captions DESC, flag;
