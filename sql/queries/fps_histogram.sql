-- Question: At which frame rates were the kept clips recorded (rounded to 0.01 fps)?
-- Tables: clips
-- Chart: bar label=fps value=clips
SELECT fps, count(*) AS clips
FROM (SELECT round(fps, 2) AS fps FROM clips WHERE status = 'ok') AS rounded
GROUP BY fps
ORDER BY fps;
