-- Observations per ATT&CK tactic: events (by event id, so a Firehose replay counts once) with
-- a technique in the tactic, how many of its techniques were seen, on how many hosts.
-- Parameters: the first and last hour, yyyy/MM/dd/HH (UTC).
SELECT
  v.tactic,
  count(DISTINCT e.id) AS observations,
  count(DISTINCT u.technique) AS techniques,
  count(DISTINCT e.host) AS hosts
FROM "${database}"."normalized" AS e
CROSS JOIN UNNEST(transform(e.attack, t -> t.id)) WITH ORDINALITY AS u (technique, i)
CROSS JOIN UNNEST(e.attack[u.i].tactics) AS v (tactic)
WHERE e.dt BETWEEN ? AND ?
GROUP BY 1
ORDER BY observations DESC, tactic
