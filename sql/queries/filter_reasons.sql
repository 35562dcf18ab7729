-- Question: Why were clips not kept? Clips by status and filter (the part of filter_reason before the colon), with one example reason each.
-- Tables: clips
-- Chart: bar label=filter value=clips series=status
SELECT status, filter, count(*) AS clips, min(filter_reason) AS example
FROM (SELECT status, split_part(filter_reason, ':', 1) AS filter, filter_reason FROM clips WHERE status <> 'ok') AS reasons
GROUP BY status, filter
ORDER BY clips DESC, status, filter;
