-- Alerts by rule and severity: how many alerts, how many matches they counted, on how many
-- distinct hosts, and when, most severe first.
-- Parameters: the first and last day the alerts were written, yyyy/MM/dd (UTC).
SELECT
  a.rule.name AS rule,
  a.severity,
  count(*) AS alerts,
  sum(a."count") AS matches,
  cardinality(array_distinct(flatten(array_agg(a.hosts)))) AS hosts,
  min(a.first_seen) AS first_seen,
  max(a.last_seen) AS last_seen
FROM "${database}"."alerts" AS a
WHERE a.dt BETWEEN ? AND ?
GROUP BY 1, 2
ORDER BY
  CASE a.severity WHEN 'critical' THEN 0 WHEN 'high' THEN 1 WHEN 'medium' THEN 2 WHEN 'low' THEN 3 ELSE 4 END,
  alerts DESC,
  rule
