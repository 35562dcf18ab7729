-- Question: How sharp are the clips? Every clip in powers-of-two bins of the luma Laplacian's variance (a bin of 64 holds 64 up to 128), split by status.
-- Tables: clips
-- Chart: bar label=sharpness value=clips series=status
SELECT bin AS sharpness, status, count(*) AS clips
FROM (SELECT pow(2, floor(log2(sharpness + 1))) AS bin, status FROM clips) AS binned
GROUP BY bin, status
ORDER BY bin, status;
