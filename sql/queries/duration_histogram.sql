-- Question: How long are the kept clips? Counts in half-second bins of duration.
-- Tables: clips
-- Chart: bar label=duration_s value=clips
SELECT bin AS duration_s, count(*) AS clips
FROM (SELECT floor(duration_s * 2) / 2 AS bin FROM clips WHERE status = 'ok') AS binned
GROUP BY bin
ORDER BY bin;
