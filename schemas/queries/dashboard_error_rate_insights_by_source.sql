-- Dashboard "API error rate insights by event source": which services had unusual
-- numbers of failing calls.
--
-- Parameters to edit: add `AND eventday BETWEEN '20240301' AND '20240331'`.
SELECT
  api.service.name AS event_source,
  count(*) AS insights
FROM cloud_trail_insights_detection_finding
WHERE activity_id = 1 AND finding_info.analytic.name = 'ApiErrorRateInsight'
GROUP BY api.service.name
ORDER BY insights DESC, event_source;
