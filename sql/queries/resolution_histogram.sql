-- Question: Which display resolutions do the kept clips have?
-- Tables: clips
-- Chart: bar label=resolution value=clips
SELECT concat(CAST(width AS VARCHAR), 'x', CAST(height AS VARCHAR)) AS resolution, count(*) AS clips
FROM clips
WHERE status = 'ok'
GROUP BY width, height
ORDER BY clips DESC, resolution;
