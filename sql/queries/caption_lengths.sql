-- Question: How long are the captions? Captions by tokens generated, with their mean length in characters and how many hit the token limit.
-- Tables: captions
-- Chart: bar label=tokens value=captions
SELECT
    tokens,
    count(*) AS captions,
    avg(length(caption)) AS mean_chars,
    sum(CASE WHEN truncated THEN 1 ELSE 0 END) AS truncated
FROM captions
WHERE status = 'ok'
GROUP BY tokens
ORDER BY tokens;
