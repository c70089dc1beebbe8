-- Activity of one access key: every call signed with it (userIdentity.accessKeyId,
-- a long-term AKIA… key or a temporary ASIA… one), oldest first: who used it, from
-- where, on what. Use it to scope a leaked key.
--
-- Parameters to edit:
--   the key: 'AKIAIOSFODNN7EXAMPLE' below;
--   the window: eventday >= (today - 30 days), as YYYYMMDD (partition pruning).
SELECT
  time_dt,
  accountid,
  region,
  actor."user".uid AS principal,
  api.service.name AS service,
  api.operation AS operation,
  status,
  api.response.error AS error,
  coalesce(src_endpoint.ip, src_endpoint.domain) AS source,
  http_request.user_agent AS user_agent,
  metadata.uid AS event_id
FROM cloudtrail
WHERE eventday >= to_char(current_date - INTERVAL '30' DAY, '%Y%m%d')
  AND actor."user".credential_uid = 'AKIAIOSFODNN7EXAMPLE'
ORDER BY time_dt, event_id;
