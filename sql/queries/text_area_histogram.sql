-- Question: How much of the captioned frames is covered by text (the text detector's share, 0-1, in bins of 0.05)?
-- Tables: captions
-- Chart: bar label=text_area value=captions
SELECT bin AS text_area, count(*) AS captions
FROM (SELECT floor(text_area * 20) / 20 AS bin FROM captions WHERE text_area IS NOT NULL) AS binned
GROUP BY bin
ORDER BY bin;
