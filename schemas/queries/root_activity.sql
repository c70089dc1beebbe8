-- Root activity: calls made with the account's root user (userIdentity.type =
-- "Root"), as CIS AWS Foundations 3.3 / 4.3 alarms on: calls that an AWS service made
-- on the root's behalf (invokedBy) and AwsServiceEvent records are left out.
-- Newest first.
--
-- Parameters to edit:
--   the window: eventday >= (today - 30 days), as YYYYMMDD (partition pruning);
--   add `AND accountid = '123456789012'` to narrow.
SELECT
  time_dt,
  accountid,
  region,
  api.service.name AS service,
  api.operation AS operation,
  status,
  api.response.error AS error,
  coalesce(src_endpoint.ip, src_endpoint.domain) AS source,
  http_request.user_agent AS user_agent,
  metadata.uid AS event_id
FROM cloudtrail
WHERE eventday >= to_char(current_date - INTERVAL '30' DAY, '%Y%m%d')
  AND actor."user".type = 'Root'
  AND actor.invoked_by IS NULL
  AND coalesce(metadata.event_code, '') <> 'AwsServiceEvent'
ORDER BY time_dt DESC, event_id;
