-- Quarantined records and objects by reason: a record's reason is a sentence, an object's a
-- code (gzip_corrupt, not_osquery, ...); how many entries, raw bytes and objects, and one
-- example of what was met.
-- Parameters: the first and last hour, yyyy/MM/dd/HH (UTC).
SELECT
  CASE WHEN q."object" IS NULL THEN 'record' ELSE 'object' END AS kind,
  q.reason,
  count(*) AS entries,
  sum(q.bytes) AS bytes,
  count(DISTINCT coalesce(element_at(q.source, 'key'), element_at(q.source, 'path'))) AS objects,
  arbitrary(coalesce(q."object".message, substr(q.raw, 1, 200))) AS example
FROM "${database}"."quarantine" AS q
WHERE q.dt BETWEEN ? AND ?
GROUP BY 1, 2
ORDER BY entries DESC, reason
