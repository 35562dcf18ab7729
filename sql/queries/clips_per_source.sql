-- Question: How many kept clips and hours does each source video contribute, and how long are its clips?
-- Tables: clips
-- Chart: bar label=source_uri value=clips
SELECT
    source_uri,
    count(*) AS clips,
    sum(duration_s) / 3600.0 AS hours,
    avg(duration_s) AS mean_duration_s
FROM clips
WHERE status = 'ok'
GROUP BY source_uri
ORDER BY clips DESC, source_uri;
