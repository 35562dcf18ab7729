-- Question: How bright are the clips? Every clip in bins of 16 units of mean luma (0-255), split by status.
-- Tables: clips
-- Chart: bar label=brightness value=clips series=status
SELECT bin AS brightness, status, count(*) AS clips
FROM (SELECT floor(brightness / 16) * 16 AS bin, status FROM clips) AS binned
GROUP BY bin, status
ORDER BY bin, status;
