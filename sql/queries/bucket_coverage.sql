-- Question: How do the training buckets fill? Samples by kind, status and bucket, with the frames they hold.
-- Tables: samples
-- Chart: bar label=bucket value=samples series=kind
SELECT kind, status, bucket, count(*) AS samples, sum(frames) AS frames
FROM samples
GROUP BY kind, status, bucket
ORDER BY kind, status, samples DESC, bucket;
