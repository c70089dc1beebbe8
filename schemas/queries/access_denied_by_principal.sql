-- AccessDenied and other authorization errors, by principal: who is being refused,
-- how often, on how many different APIs, and with which error codes. Covers
-- AccessDenied, AccessDeniedException, Client.UnauthorizedOperation,
-- UnauthorizedOperation, AuthorizationError(Exception), UnauthorizedAccess... : any
-- errorCode containing "AccessDenied", "Unauthorized" or "AuthorizationError".
-- A role counts once for all its sessions (named by its session issuer); a caller
-- without an ARN by its principalId.
--
-- Parameters to edit:
--   the window: eventday >= (today - 30 days), as YYYYMMDD (partition pruning);
--   add `AND accountid = '123456789012'` to narrow; LIMIT 50.
WITH denied AS (
  SELECT
    actor."user".type AS user_type,
    CASE
      WHEN actor."user".type = 'AssumedRole' AND actor.session.issuer IS NOT NULL
        THEN actor.session.issuer
      ELSE coalesce(actor."user".uid, actor."user".uid_alt)
    END AS principal,
    api.operation AS operation,
    api.response.error AS error,
    accountid
  FROM cloudtrail
  WHERE eventday >= to_char(current_date - INTERVAL '30' DAY, '%Y%m%d')
    AND (api.response.error LIKE '%AccessDenied%'
      OR api.response.error LIKE '%Unauthorized%'
      OR api.response.error LIKE '%AuthorizationError%')
)
SELECT
  user_type,
  principal,
  count(*) AS denied,
  count(DISTINCT operation) AS apis,
  count(DISTINCT accountid) AS accounts,
  array_to_string(array_sort(array_agg(DISTINCT error)), ',') AS errors
FROM denied
GROUP BY user_type, principal
ORDER BY denied DESC, principal, user_type
LIMIT 50;
