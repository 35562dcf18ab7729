-- Question: Which aspect ratios (width / height, rounded to 0.01) do the kept clips have?
-- Tables: clips
-- Chart: bar label=aspect value=clips
SELECT aspect, count(*) AS clips
FROM (SELECT round(aspect, 2) AS aspect FROM clips WHERE status = 'ok') AS rounded
GROUP BY aspect
ORDER BY aspect;
