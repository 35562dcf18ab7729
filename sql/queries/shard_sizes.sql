-- Question: How big are the shards and how well does zstd compress their samples?
-- Tables: shards
SELECT
    count(*) AS shards,
    sum(samples) AS samples,
    sum(bytes) AS bytes,
    min(bytes) AS min_bytes,
    avg(bytes) AS mean_bytes,
    max(bytes) AS max_bytes,
    sum(raw_bytes) * 1.0 / sum(bytes) AS compression_ratio,
    avg(index_bytes) AS mean_index_bytes
FROM shards;
