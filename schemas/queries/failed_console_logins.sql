-- Failed console sign-ins: every ConsoleLogin whose outcome is Failure
-- (responseElements.ConsoleLogin = "Failure"), newest first, with the user named
-- (IAM user name, or "HIDDEN_DUE_TO_SECURITY_REASONS" for unknown user names),
-- the source address and the reason (errorMessage, e.g. "Failed authentication").
-- Many failures for one user or from one address suggest password guessing.
--
-- Parameters to edit:
--   the window: eventday >= (today - 30 days), as YYYYMMDD (partition pruning);
--   add `AND accountid = '123456789012'` to narrow.
SELECT
  time_dt,
  accountid,
  region,
  actor."user".type AS user_type,
  actor."user".name AS user_name,
  actor."user".uid AS user_arn,
  src_endpoint.ip AS source_ip,
  http_request.user_agent AS user_agent,
  api.response.message AS reason,
  metadata.uid AS event_id
FROM authentication
WHERE eventday >= to_char(current_date - INTERVAL '30' DAY, '%Y%m%d')
  AND api.service.name = 'signin.amazonaws.com'
  AND api.operation = 'ConsoleLogin'
  AND status = 'Failure'
ORDER BY time_dt DESC, event_id;
