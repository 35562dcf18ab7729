-- Question: How much do the clips move? Every clip (kept or not) in bins of 2 units of mean absolute luma difference (0-255), split by status.
-- Tables: clips
-- Chart: bar label=motion value=clips series=status
SELECT bin AS motion, status, count(*) AS clips
FROM (SELECT floor(motion / 2) * 2 AS bin, status FROM clips) AS binned
GROUP BY bin, status
ORDER BY bin, status;
