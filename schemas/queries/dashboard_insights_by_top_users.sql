-- Dashboard "Insights by top users": the principals that drove the most insights (the
-- top userIdentityArn attribution of each insight window), top 10.
--
-- Parameters to edit: add `AND eventday BETWEEN '20240301' AND '20240331'`; LIMIT.
SELECT
  evidences[1]['actor']['user']['uid'] AS user_arn,
  count(*) AS insights
FROM cloud_trail_insights_detection_finding
WHERE activity_id = 1 AND evidences[1]['actor']['user']['uid'] IS NOT NULL
GROUP BY evidences[1]['actor']['user']['uid']
ORDER BY insights DESC, user_arn
LIMIT 10;
