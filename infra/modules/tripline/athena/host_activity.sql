-- One host's drill-down: each technique its events map to, by query and the osquery table
-- that explains the rows, with how often and when it was first and last seen.
-- Parameters: the host (as osquery names it, hostIdentifier), then the first and last hour,
-- yyyy/MM/dd/HH (UTC).
SELECT
  u.technique,
  e.attack[u.i].name AS technique_name,
  e.query,
  element_at(e.tables, 1) AS table_name,
  count(*) AS observations,
  min(e."time") AS first_seen,
  max(e."time") AS last_seen
FROM "${database}"."normalized" AS e
CROSS JOIN UNNEST(transform(e.attack, t -> t.id)) WITH ORDINALITY AS u (technique, i)
WHERE e.host = ? AND e.dt BETWEEN ? AND ?
GROUP BY 1, 2, 3, 4
ORDER BY last_seen DESC, technique
