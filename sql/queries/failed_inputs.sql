-- Question: Which inputs failed or were only partly usable, and why?
-- Tables: videos
SELECT source_uri, status, error_kind, error
FROM videos
WHERE status IN ('failed', 'partial')
ORDER BY error_kind, source_uri;
