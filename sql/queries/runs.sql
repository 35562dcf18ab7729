-- Question: Which runs wrote this output, when, and with what result?
-- Tables: runs
SELECT started_at, status, inputs, inputs_resumed, videos_ok, videos_failed, clips, wall_s, version
FROM runs
ORDER BY started_at;
