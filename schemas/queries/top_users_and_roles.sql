-- Top users and roles: which principals make the most calls, over every CloudTrail
-- class (view `cloudtrail`). A role counts once for all its sessions: an
-- AssumedRole caller is named by its session issuer (the role's ARN), anyone else by
-- userIdentity.arn. Callers without an ARN (AWS services) are left out.
--
-- Parameters to edit:
--   the window: eventday >= (today - 30 days), as YYYYMMDD (partition pruning);
--   add `AND accountid = '123456789012'` / `AND region = 'us-east-1'` to narrow;
--   LIMIT 25.
WITH calls AS (
  SELECT
    actor."user".type AS user_type,
    CASE
      WHEN actor."user".type = 'AssumedRole' AND actor.session.issuer IS NOT NULL
        THEN actor.session.issuer
      ELSE actor."user".uid
    END AS principal,
    status,
    accountid
  FROM cloudtrail
  WHERE eventday >= to_char(current_date - INTERVAL '30' DAY, '%Y%m%d')
)
SELECT
  user_type,
  principal,
  count(*) AS calls,
  sum(CASE WHEN status = 'Failure' THEN 1 ELSE 0 END) AS failures,
  count(DISTINCT accountid) AS accounts
FROM calls
WHERE principal IS NOT NULL
GROUP BY user_type, principal
ORDER BY calls DESC, principal, user_type
LIMIT 25;
