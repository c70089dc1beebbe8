-- Dashboard "API call rate insights by event source": which services had unusual
-- call volumes.
--
-- Parameters to edit: add `AND eventday BETWEEN '20240301' AND '20240331'`.
SELECT
  api.service.name AS event_source,
  count(*) AS insights
FROM cloud_trail_insights_detection_finding
WHERE activity_id = 1 AND finding_info.analytic.name = 'ApiCallRateInsight'
GROUP BY api.service.name
ORDER BY insights DESC, event_source;
