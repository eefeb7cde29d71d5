-- Process network connections: rows of process_open_sockets (often joined with processes)
-- and socket_events, newest first. A column the row's table lacks is null.
-- Parameters: the first and last hour, yyyy/MM/dd/HH (UTC).
SELECT
  e."time",
  e.host,
  element_at(e.columns, 'name') AS process,
  element_at(e.columns, 'path') AS path,
  element_at(e.columns, 'pid') AS pid,
  element_at(e.columns, 'protocol') AS protocol,
  element_at(e.columns, 'local_address') AS local_address,
  element_at(e.columns, 'local_port') AS local_port,
  element_at(e.columns, 'remote_address') AS remote_address,
  element_at(e.columns, 'remote_port') AS remote_port,
  element_at(e.columns, 'cmdline') AS cmdline,
  e.query
FROM "${database}"."normalized" AS e
WHERE e.dt BETWEEN ? AND ?
  AND (contains(e.tables, 'process_open_sockets') OR contains(e.tables, 'socket_events'))
ORDER BY e."time" DESC, e.host
LIMIT 1000
