-- Observations per ATT&CK technique: events whose query maps to the technique (or, for a
-- query no mapping knows, whose osquery table does), on how many hosts, with its tactics.
-- Parameters: the first and last hour, yyyy/MM/dd/HH (UTC), e.g. '2026/11/22/00', '2026/11/22/23'.
SELECT
  u.technique,
  e.attack[u.i].name AS technique_name,
  array_join(e.attack[u.i].tactics, ', ') AS tactics,
  count(*) AS observations,
  count(DISTINCT e.host) AS hosts
FROM "${database}"."normalized" AS e
CROSS JOIN UNNEST(transform(e.attack, t -> t.id)) WITH ORDINALITY AS u (technique, i)
WHERE e.dt BETWEEN ? AND ?
GROUP BY 1, 2, 3
ORDER BY observations DESC, technique
