-- API calls by source address: which addresses call the most, for how many
-- principals and accounts, how many calls failed, first and last seen. The source
-- is sourceIPAddress: an IP, or a service name ("ec2.amazonaws.com", "AWS Internal")
-- when a service made the call. An unknown address with many principals or many
-- failures deserves a look.
--
-- Parameters to edit:
--   the window: eventday >= (today - 30 days), as YYYYMMDD (partition pruning);
--   add `AND src_endpoint.ip IS NOT NULL` to keep IP addresses only; LIMIT 50.
SELECT
  coalesce(src_endpoint.ip, src_endpoint.domain) AS source,
  count(*) AS calls,
  count(DISTINCT actor."user".uid) AS principals,
  count(DISTINCT accountid) AS accounts,
  sum(CASE WHEN status = 'Failure' THEN 1 ELSE 0 END) AS failures,
  min(time_dt) AS first_seen,
  max(time_dt) AS last_seen
FROM cloudtrail
WHERE eventday >= to_char(current_date - INTERVAL '30' DAY, '%Y%m%d')
  AND coalesce(src_endpoint.ip, src_endpoint.domain) IS NOT NULL
GROUP BY coalesce(src_endpoint.ip, src_endpoint.domain)
ORDER BY calls DESC, source
LIMIT 50;
