-- Observations per osquery table (an event counts for every table its row came from), with
-- the queries that read it and on how many hosts; however the fleet named its queries.
-- Parameters: the first and last hour, yyyy/MM/dd/HH (UTC).
SELECT
  u.table_name,
  count(*) AS observations,
  count(DISTINCT e.query) AS queries,
  count(DISTINCT e.host) AS hosts
FROM "${database}"."normalized" AS e
CROSS JOIN UNNEST(e.tables) AS u (table_name)
WHERE e.dt BETWEEN ? AND ?
GROUP BY 1
ORDER BY observations DESC, table_name
